//! The CloudWatch alarm on the prompts queue's ApproximateAgeOfOldestMessage.
//!
//! `PutMetricAlarm` replaces the whole definition, so an update re-puts every
//! field; tags only apply on creation through it and are updated separately.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};
use serde_json::{Value, json};

use super::{Aws, aws_error, error_code, read_back, tags};
use crate::engine::{Declared, DeleteOutcome, Fields, Live, Resource, ResourceError};

pub struct MetricAlarmResource {
    declared: Declared,
    aws: Arc<Aws>,
}

impl MetricAlarmResource {
    /// `fields`: namespace, metric_name, dimensions ([{name, value}]), statistic,
    /// comparison_operator, threshold, period, evaluation_periods,
    /// treat_missing_data, actions_enabled, alarm_actions, ok_actions, tags.
    pub fn new(declared: Declared, aws: Arc<Aws>) -> Self {
        MetricAlarmResource { declared, aws }
    }
}

/// Live fields of a described alarm, in the declared shapes.
pub fn normalise(a: &MetricAlarm) -> Fields {
    let mut f = Fields::new();
    f.insert("namespace".into(), json!(a.namespace()));
    f.insert("metric_name".into(), json!(a.metric_name()));
    let dims: Vec<Value> = a
        .dimensions()
        .iter()
        .map(|d| json!({"name": d.name(), "value": d.value()}))
        .collect();
    f.insert("dimensions".into(), Value::Array(dims));
    f.insert("statistic".into(), json!(a.statistic().map(|s| s.as_str())));
    f.insert(
        "comparison_operator".into(),
        json!(a.comparison_operator().map(|c| c.as_str())),
    );
    f.insert("threshold".into(), json!(a.threshold()));
    f.insert("period".into(), json!(a.period()));
    f.insert("evaluation_periods".into(), json!(a.evaluation_periods()));
    f.insert("treat_missing_data".into(), json!(a.treat_missing_data()));
    f.insert("actions_enabled".into(), json!(a.actions_enabled()));
    f.insert("alarm_actions".into(), json!(a.alarm_actions()));
    f.insert("ok_actions".into(), json!(a.ok_actions()));
    f
}

fn str_field<'a>(f: &'a Fields, k: &str) -> Option<&'a str> {
    f.get(k).and_then(Value::as_str)
}

fn strings(f: &Fields, k: &str) -> Vec<String> {
    f.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn cw_tags(tags: BTreeMap<String, String>) -> Vec<Tag> {
    tags.into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

impl MetricAlarmResource {
    async fn put(&self, desired: &Fields, with_tags: bool) -> Result<(), ResourceError> {
        let dims = desired
            .get("dimensions")
            .and_then(Value::as_array)
            .map(|ds| {
                ds.iter()
                    .map(|d| {
                        Dimension::builder()
                            .name(d["name"].as_str().unwrap_or_default())
                            .value(d["value"].as_str().unwrap_or_default())
                            .build()
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let int = |k: &str| {
            desired
                .get(k)
                .and_then(Value::as_i64)
                .and_then(|v| i32::try_from(v).ok())
        };
        let mut req = self
            .aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&self.declared.name)
            .alarm_description(format!(
                "Prompts wait too long in the queue ({}); managed by couch-provisioner",
                self.declared.name
            ))
            .set_namespace(str_field(desired, "namespace").map(str::to_owned))
            .set_metric_name(str_field(desired, "metric_name").map(str::to_owned))
            .set_dimensions(Some(dims))
            .set_statistic(str_field(desired, "statistic").map(Statistic::from))
            .set_comparison_operator(
                str_field(desired, "comparison_operator").map(ComparisonOperator::from),
            )
            .set_threshold(desired.get("threshold").and_then(Value::as_f64))
            .set_period(int("period"))
            .set_evaluation_periods(int("evaluation_periods"))
            .set_treat_missing_data(str_field(desired, "treat_missing_data").map(str::to_owned))
            .set_actions_enabled(desired.get("actions_enabled").and_then(Value::as_bool))
            .set_alarm_actions(Some(strings(desired, "alarm_actions")))
            .set_ok_actions(Some(strings(desired, "ok_actions")));
        if with_tags {
            req = req.set_tags(Some(cw_tags(tags::of(desired))));
        }
        req.send().await.map_err(|e| {
            aws_error(
                &format!("cloudwatch:PutMetricAlarm {}", self.declared.name),
                e,
            )
        })?;
        Ok(())
    }
}

#[async_trait]
impl Resource for MetricAlarmResource {
    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn kind(&self) -> &'static str {
        "cloudwatch-alarm"
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
            .insert("arn".into(), alarm.alarm_arn().unwrap_or(&arn).to_owned());
        live.attrs.insert("name".into(), self.declared.name.clone());
        Ok(Some(live))
    }

    async fn create(&self, desired: &Fields) -> Result<Live, ResourceError> {
        self.put(desired, true).await?;
        read_back(self.read().await?, &format!("alarm {}", self.declared.name))
    }

    async fn update(
        &self,
        live: &Live,
        desired: &Fields,
        changed: &BTreeSet<String>,
    ) -> Result<(), ResourceError> {
        if changed.iter().any(|c| c != tags::FIELD) {
            self.put(desired, false).await?;
        }
        if changed.contains(tags::FIELD) {
            let cw = &self.aws.cloudwatch;
            let arn = live.attrs.get("arn").cloned().unwrap_or_default();
            let arn = &arn;
            tags::sync(
                &live.fields,
                desired,
                |set| async move {
                    cw.tag_resource()
                        .resource_arn(arn)
                        .set_tags(Some(cw_tags(set)))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| {
                            aws_error(&format!("cloudwatch:TagResource {}", self.declared.name), e)
                        })
                },
                |keys| async move {
                    cw.untag_resource()
                        .resource_arn(arn)
                        .set_tag_keys(Some(keys))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| {
                            aws_error(
                                &format!("cloudwatch:UntagResource {}", self.declared.name),
                                e,
                            )
                        })
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        self.aws
            .cloudwatch
            .delete_alarms()
            .alarm_names(&self.declared.name)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    &format!("cloudwatch:DeleteAlarms {}", self.declared.name),
                    e,
                )
            })?;
        Ok(DeleteOutcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_alarm_normalises_to_declared_shape() {
        let a = MetricAlarm::builder()
            .alarm_name("s-prompt-age")
            .namespace("AWS/SQS")
            .metric_name("ApproximateAgeOfOldestMessage")
            .dimensions(
                Dimension::builder()
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
