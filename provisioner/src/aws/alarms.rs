//! CloudWatch metric alarms: the prompts queue's ApproximateAgeOfOldestMessage,
//! and the loss-and-failure alarms (the DLQ's depth, failed images, the
//! functions' errors and throttles, the API's 5xx).
//!
//! `PutMetricAlarm` replaces the whole definition, so an update re-puts every
//! field; tags only apply on creation through it and are updated separately.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm, Statistic, Tag};
use serde::{Deserialize, Serialize};

use super::{ARN, Aws, Done, NAME, aws_error, error_code, read_back, tags, with_arn};
use crate::engine::retry;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Fields, Live, Resource, ResourceError, Tagging, Tags, Text,
    TypedKind, Update, fields_of, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object, tag_list};
use crate::kind::{Access, Grant, own};

/// A metric alarm as declared (the fields `PutMetricAlarm` takes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmSpec {
    /// What it means when it fires, in the e-mail's first line.
    pub description: String,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
    pub statistic: String,
    pub comparison_operator: String,
    pub threshold: f64,
    pub period: u32,
    pub evaluation_periods: u32,
    pub treat_missing_data: String,
    pub actions_enabled: bool,
    pub alarm_actions: Vec<Text>,
    pub ok_actions: Vec<Text>,
    /// Live alarms are read without tags here; they are added by `read`.
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    pub name: String,
    pub value: Text,
}

pub struct MetricAlarmResource {
    declared: Declared,
    aws: Arc<Aws>,
}

// Attributes an alarm exports.
impl crate::kind::HasArn for MetricAlarmResource {}
impl crate::kind::HasName for MetricAlarmResource {}

impl MetricAlarmResource {
    pub fn new(address: &str, name: String, spec: &AlarmSpec, aws: Arc<Aws>) -> Self {
        let declared = Declared::of(address, name.clone(), spec).knowing(NAME, name);
        MetricAlarmResource { declared, aws }
    }
}

/// Live fields of a described alarm, in the declared shapes (tags apart).
pub fn normalise(a: &MetricAlarm) -> Fields {
    let texts = |v: &[String]| v.iter().map(|s| Text::literal(s.as_str())).collect();
    let mut f = fields_of(&AlarmSpec {
        description: a.alarm_description().unwrap_or_default().to_owned(),
        namespace: a.namespace().unwrap_or_default().to_owned(),
        metric_name: a.metric_name().unwrap_or_default().to_owned(),
        dimensions: a
            .dimensions()
            .iter()
            .map(|d| Dimension {
                name: d.name().unwrap_or_default().to_owned(),
                value: Text::literal(d.value().unwrap_or_default()),
            })
            .collect(),
        statistic: a
            .statistic()
            .map(|s| s.as_str())
            .unwrap_or_default()
            .to_owned(),
        comparison_operator: a
            .comparison_operator()
            .map(|c| c.as_str())
            .unwrap_or_default()
            .to_owned(),
        threshold: a.threshold().unwrap_or_default(),
        period: a
            .period()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_default(),
        evaluation_periods: a
            .evaluation_periods()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_default(),
        treat_missing_data: a.treat_missing_data().unwrap_or_default().to_owned(),
        actions_enabled: a.actions_enabled().unwrap_or_default(),
        alarm_actions: texts(a.alarm_actions()),
        ok_actions: texts(a.ok_actions()),
        tags: Tags::new(),
    });
    f.remove(tags::FIELD);
    f
}

fn cw_tags(tags: Tags) -> Vec<Tag> {
    tags.into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

impl MetricAlarmResource {
    async fn put(&self, spec: &AlarmSpec, with_tags: bool) -> Result<(), ResourceError> {
        let dims = spec
            .dimensions
            .iter()
            .map(|d| {
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name(&d.name)
                    .value(d.value.as_str())
                    .build()
            })
            .collect::<Vec<_>>();
        let int = |v: u32| i32::try_from(v).ok();
        let strings = |v: &[Text]| v.iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>();
        let mut req = self
            .aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&self.declared.name)
            .alarm_description(&spec.description)
            .namespace(&spec.namespace)
            .metric_name(&spec.metric_name)
            .set_dimensions(Some(dims))
            .statistic(Statistic::from(spec.statistic.as_str()))
            .comparison_operator(ComparisonOperator::from(spec.comparison_operator.as_str()))
            .threshold(spec.threshold)
            .set_period(int(spec.period))
            .set_evaluation_periods(int(spec.evaluation_periods))
            .treat_missing_data(&spec.treat_missing_data)
            .actions_enabled(spec.actions_enabled)
            .set_alarm_actions(Some(strings(&spec.alarm_actions)))
            .set_ok_actions(Some(strings(&spec.ok_actions)));
        if with_tags {
            req = req.set_tags(Some(cw_tags(spec.tags.clone())));
        }
        retry::call(|| async {
            req.clone()
                .send()
                .await
                .done(&format!("cloudwatch:PutMetricAlarm {}", self.declared.name))
        })
        .await
    }
}

#[async_trait]
impl TypedKind for MetricAlarmResource {
    type Spec = AlarmSpec;
    const KIND: &'static str = "cloudwatch-alarm";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        let resource = format!("alarm:{}", self.declared.name);
        Ok(with_arn(
            &self.declared,
            self.aws.arn("cloudwatch", &resource).await?,
        ))
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let arn = self
            .aws
            .arn("cloudwatch", &format!("alarm:{}", self.declared.name))
            .await?;
        let (described, alarm_tags) = tokio::join!(
            self.aws
                .cloudwatch
                .describe_alarms()
                .alarm_names(&self.declared.name)
                .send(),
            self.aws
                .cloudwatch
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send(),
        );
        let described = described.map_err(|e| {
            aws_error(
                &format!("cloudwatch:DescribeAlarms {}", self.declared.name),
                e,
            )
        })?;
        let Some(alarm) = described
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(self.declared.name.as_str()))
        else {
            return Ok(None);
        };
        let alarm_tags = match alarm_tags {
            Ok(t) => t.tags.unwrap_or_default(),
            Err(e) if error_code(&e) == Some("ResourceNotFound") => Vec::new(),
            Err(e) => {
                return Err(aws_error(
                    &format!("cloudwatch:ListTagsForResource {}", self.declared.name),
                    e,
                ));
            }
        };
        let mut live = Live {
            fields: normalise(alarm),
            ..Live::default()
        };
        live.fields.insert(
            tags::FIELD.into(),
            tags::to_value(
                alarm_tags
                    .iter()
                    .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
            ),
        );
        live.attrs
            .insert(ARN.into(), alarm.alarm_arn().unwrap_or(&arn).to_owned());
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        Ok(Some(live))
    }

    async fn create(&self, spec: &AlarmSpec, _: &Fields) -> Result<Live, ResourceError> {
        self.put(spec, true).await?;
        read_back(
            Resource::read(self).await?,
            &format!("alarm {}", self.declared.name),
        )
    }

    /// `PutMetricAlarm` replaces the whole definition: every field is re-put.
    async fn update(&self, change: &Update<'_, AlarmSpec>) -> Result<(), ResourceError> {
        self.put(change.spec, false).await
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        retry::call(|| async {
            self.aws
                .cloudwatch
                .delete_alarms()
                .alarm_names(&self.declared.name)
                .send()
                .await
                .done(&format!("cloudwatch:DeleteAlarms {}", self.declared.name))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

#[async_trait]
impl Tagging for MetricAlarmResource {
    async fn tag(&self, live: &Live, set: Tags) -> Result<(), ResourceError> {
        self.aws
            .cloudwatch
            .tag_resource()
            .resource_arn(live.attrs.get(ARN).map_or("", String::as_str))
            .set_tags(Some(cw_tags(set)))
            .send()
            .await
            .done(&format!("cloudwatch:TagResource {}", self.declared.name))
    }
    async fn untag(&self, live: &Live, keys: Vec<String>) -> Result<(), ResourceError> {
        self.aws
            .cloudwatch
            .untag_resource()
            .resource_arn(live.attrs.get(ARN).map_or("", String::as_str))
            .set_tag_keys(Some(keys))
            .send()
            .await
            .done(&format!("cloudwatch:UntagResource {}", self.declared.name))
    }
}

impl Export for MetricAlarmResource {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        use serde_json::json;
        let spec: AlarmSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        let texts = |v: &[Text]| v.iter().map(|t| json!(t.as_str())).collect::<Vec<_>>();
        let properties = object([
            ("AlarmName", json!(self.declared.name)),
            ("AlarmDescription", json!(spec.description)),
            ("Namespace", json!(spec.namespace)),
            ("MetricName", json!(spec.metric_name)),
            (
                "Dimensions",
                spec.dimensions
                    .iter()
                    .map(|d| json!({"Name": d.name, "Value": d.value.as_str()}))
                    .collect(),
            ),
            ("Statistic", json!(spec.statistic)),
            ("ComparisonOperator", json!(spec.comparison_operator)),
            ("Threshold", json!(spec.threshold)),
            ("Period", json!(spec.period)),
            ("EvaluationPeriods", json!(spec.evaluation_periods)),
            ("TreatMissingData", json!(spec.treat_missing_data)),
            ("ActionsEnabled", json!(spec.actions_enabled)),
            ("AlarmActions", json!(texts(&spec.alarm_actions))),
            ("OKActions", json!(texts(&spec.ok_actions))),
            ("Tags", tag_list(&spec.tags)),
        ]);
        Ok(vec![Part::main("AWS::CloudWatch::Alarm", properties)])
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        crate::kind::export::name_ref_arn_getatt(id, attr)
    }
}

impl Access for MetricAlarmResource {
    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &[
                "cloudwatch:DescribeAlarms",
                "cloudwatch:ListTagsForResource",
            ],
            vec![own(self, ARN)],
        )]
    }

    /// An alarm's writes may name only the actions it declares
    /// (`cloudwatch:AlarmActions`, Service Authorization Reference): a
    /// preview's alarms cannot notify production's topic.
    fn write_access(&self) -> Vec<Grant> {
        let mut actions: Vec<Text> = ["alarm_actions", "ok_actions"]
            .iter()
            .filter_map(|f| self.declared.fields.get(*f))
            .filter_map(serde_json::Value::as_array)
            .flatten()
            .filter_map(|v| v.as_str().map(|s| Text::from(s.to_owned())))
            .collect();
        actions.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        actions.dedup_by(|a, b| a.as_str() == b.as_str());
        vec![
            Grant::on(&["cloudwatch:PutMetricAlarm"], vec![own(self, ARN)]).when(
                "ForAllValues:ArnLike",
                "cloudwatch:AlarmActions",
                actions,
            ),
            Grant::on(
                &[
                    "cloudwatch:TagResource",
                    "cloudwatch:UntagResource",
                    "cloudwatch:DeleteAlarms",
                ],
                vec![own(self, ARN)],
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn described_alarm_normalises_to_declared_shape() {
        let a = MetricAlarm::builder()
            .alarm_name("s-prompt-age")
            .namespace("AWS/SQS")
            .metric_name("ApproximateAgeOfOldestMessage")
            .dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name("QueueName")
                    .value("s-prompts")
                    .build(),
            )
            .statistic(Statistic::Maximum)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .threshold(120.0)
            .period(60)
            .evaluation_periods(2)
            .treat_missing_data("notBreaching")
            .actions_enabled(true)
            .alarm_actions("arn:t")
            .ok_actions("arn:t")
            .build();
        let f = normalise(&a);
        assert_eq!(
            f["dimensions"],
            json!([{"name": "QueueName", "value": "s-prompts"}])
        );
        assert_eq!(f["statistic"], json!("Maximum"));
        assert_eq!(f["comparison_operator"], json!("GreaterThanThreshold"));
        assert!(crate::engine::diff::same(&f["threshold"], &json!(120)));
        assert_eq!(f["alarm_actions"], json!(["arn:t"]));
    }
}
