//! Each function's `live` alias: what the SQS trigger, the HTTP API's
//! integration and the invoke permission call, so that a deploy moves one
//! pointer instead of replacing the code they run. It points at the
//! function's `version` attribute (the newest published version with the
//! declared code and configuration, `aws::functions`), with no weighted
//! second version. It belongs to its function (aliases carry no tags) and
//! goes with it. Lambda: an alias points only at a version, and event
//! sources and resource policies that name the alias ARN need no change when
//! it moves (lambda/latest/dg/using-aliases.html).
//!
//! Moving to a new version follows the alias's [`Shift`]: at once, or in
//! steps (`RoutingConfig.AdditionalVersionWeights` gives the new version its
//! share while the old one stays primary), each step watched for its
//! interval. An alarm that goes into ALARM during the shift (its state
//! changed after the shift began: one already firing does not block a fix)
//! puts the alias back on the old version with no weights, within one poll,
//! and the update fails naming the alarm and its reason. An interrupted
//! shift leaves weights; the next apply starts the shift again from the old
//! version, so two versions are never left weighted by a finished apply.
//!
//! Before any traffic moves to a version (a new alias, or a move to another
//! version, at once or in steps), that version is invoked once with the
//! health event (`aws::health`): a failed check moves nothing and fails the
//! update with the function's answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use serde::{Deserialize, Serialize};

use super::{ARN, Aws, Done, NAME, aws_error, exists_already, read_back};
use crate::engine::retry;
use crate::engine::typed::converge_existing;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Fields, Finding, Live, Resource, ResourceError, Text,
    TypedKind, Update, fields_of, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object};
use crate::kind::{Access, Grant, account_arn};

/// The alias every function is served through.
pub const LIVE: &str = "live";

/// An alias as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasSpec {
    /// The function's name.
    pub function_name: Text,
    /// The version it serves.
    pub function_version: Text,
    /// `RoutingConfig.AdditionalVersionWeights`: a second version and the
    /// share of invocations it gets (declared: none).
    pub weights: BTreeMap<String, f64>,
}
crate::engine::fields!(AliasSpec {
    FUNCTION_VERSION: function_version
});

/// How the alias moves to a new version (`deploy:` in the stack file).
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// The new version's share after each step, in percent, ending at 100.
    pub steps: Vec<u32>,
    /// How long each step but the last is watched.
    pub interval: Duration,
    /// The alarms (names, metric or composite) whose going into ALARM
    /// rolls the shift back.
    pub alarms: Vec<String>,
    /// Of those, the ones the stack file names (`deploy.alarms`): they must
    /// exist, else the plan has a problem (a misspelt name would otherwise
    /// watch nothing).
    pub named: Vec<String>,
}

impl Shift {
    pub fn at_once() -> Shift {
        Shift {
            steps: vec![100],
            interval: Duration::ZERO,
            alarms: Vec::new(),
            named: Vec::new(),
        }
    }
    fn gradual(&self) -> bool {
        self.steps.len() > 1
    }
}

/// How often alarms are read during a step (at most).
const POLL: Duration = Duration::from_secs(5);

pub struct FunctionAlias {
    declared: Declared,
    function_name: String,
    shift: Shift,
    aws: Arc<Aws>,
}

// Attributes an alias exports.
/// `arn:aws:lambda:{region}:{account}:function:{name}:live`.
impl crate::kind::HasArn for FunctionAlias {}
/// `{function}:live`, the alias-qualified name Lambda's calls accept.
impl crate::kind::HasName for FunctionAlias {}

impl FunctionAlias {
    /// The `live` alias of the function named `function_name`.
    pub fn new(
        address: &str,
        function_name: &str,
        spec: &AliasSpec,
        shift: Shift,
        aws: Arc<Aws>,
    ) -> Self {
        let name = format!("{function_name}:{LIVE}");
        FunctionAlias {
            declared: Declared::of(address, name.clone(), spec).knowing(NAME, name),
            function_name: function_name.to_owned(),
            shift,
            aws,
        }
    }

    /// Points the alias at `version`, with `weighted` (a version and its
    /// share) as the second one.
    async fn route(
        &self,
        version: &str,
        weighted: Option<(&str, u32)>,
    ) -> Result<(), ResourceError> {
        let weights = weighted
            .map(|(v, percent)| BTreeMap::from([(v.to_owned(), f64::from(percent) / 100.0)]))
            .unwrap_or_default();
        retry::call(|| async {
            self.aws
                .lambda
                .update_alias()
                .function_name(&self.function_name)
                .name(LIVE)
                .function_version(version)
                .routing_config(routing(&weights))
                .send()
                .await
                .done(&self.what("UpdateAlias"))
        })
        .await
    }

    /// The shift's alarms as CloudWatch has them, metric and composite alike
    /// (`DescribeAlarms` returns only metric alarms unless `AlarmTypes`
    /// names both: CloudWatch API reference, DescribeAlarms): name, state,
    /// reason and when the state last changed.
    async fn alarm_states(&self) -> Result<Vec<AlarmState>, ResourceError> {
        use aws_sdk_cloudwatch::types::AlarmType;
        let mut out = Vec::new();
        // DescribeAlarms takes at most 100 names per call.
        for names in self.shift.alarms.chunks(100) {
            let mut pages = self
                .aws
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    aws_error(
                        &format!("cloudwatch:DescribeAlarms for {}", self.declared.name),
                        e,
                    )
                })?;
                // Metric and composite alarms: two types, the same fields.
                macro_rules! state_of {
                    ($a:expr) => {
                        AlarmState {
                            name: $a.alarm_name().unwrap_or_default().to_owned(),
                            alarm: $a.state_value()
                                == Some(&aws_sdk_cloudwatch::types::StateValue::Alarm),
                            reason: $a.state_reason().unwrap_or_default().to_owned(),
                            changed: $a
                                .state_transitioned_timestamp()
                                .or($a.state_updated_timestamp())
                                .map(|t| t.secs()),
                        }
                    };
                }
                out.extend(page.metric_alarms().iter().map(|a| state_of!(a)));
                out.extend(page.composite_alarms().iter().map(|a| state_of!(a)));
            }
        }
        Ok(out)
    }

    /// Errors of version `version` itself since `since`: Lambda publishes
    /// an alias's invocations with the `ExecutedVersion` dimension (with
    /// `FunctionName` and `Resource` = `function:alias`; Lambda developer
    /// guide, "Types of metrics for Lambda functions": "ExecutedVersion ...
    /// only for alias invocations"), so a canary's errors are not diluted by
    /// the old version's traffic as they are in a `FunctionName` alarm.
    async fn version_errors(&self, version: &str, since: SystemTime) -> Result<f64, ResourceError> {
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        let end = SystemTime::now() + Duration::from_secs(60);
        let start = since - Duration::from_secs(60);
        let out = self
            .aws
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/Lambda")
            .metric_name("Errors")
            .dimensions(
                Dimension::builder()
                    .name("FunctionName")
                    .value(&self.function_name)
                    .build(),
            )
            .dimensions(
                Dimension::builder()
                    .name("Resource")
                    .value(&self.declared.name)
                    .build(),
            )
            .dimensions(
                Dimension::builder()
                    .name("ExecutedVersion")
                    .value(version)
                    .build(),
            )
            .start_time(aws_smithy_types::DateTime::from(start))
            .end_time(aws_smithy_types::DateTime::from(end))
            .period(60)
            .statistics(Statistic::Sum)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    &format!("cloudwatch:GetMetricStatistics for {}", self.declared.name),
                    e,
                )
            })?;
        let since = aws_smithy_types::DateTime::from(since).secs();
        Ok(out
            .datapoints()
            .iter()
            // A point's timestamp is the start of its period.
            .filter(|p| p.timestamp().is_some_and(|t| t.secs() + 60 > since))
            .filter_map(|p| p.sum())
            .sum())
    }

    /// Watches the shift for `time`: the new version's own errors, and the
    /// shift's alarms; the first that went into ALARM after `since` (or the
    /// version's errors), with its reason.
    async fn watch(
        &self,
        new: &str,
        since: SystemTime,
        time: Duration,
    ) -> Result<Option<(String, String)>, ResourceError> {
        let end = tokio::time::Instant::now() + time;
        let since_secs = aws_smithy_types::DateTime::from(since).secs();
        loop {
            let errors = self.version_errors(new, since).await?;
            if errors > 0.0 {
                return Ok(Some((
                    format!("AWS/Lambda Errors of version {new}"),
                    format!(
                        "{errors} error(s) of version {new} itself (ExecutedVersion={new}) during the shift"
                    ),
                )));
            }
            if !self.shift.alarms.is_empty() {
                for a in self.alarm_states().await? {
                    if a.alarm && a.changed.is_some_and(|t| t >= since_secs) {
                        return Ok(Some((a.name, a.reason)));
                    }
                }
            }
            let now = tokio::time::Instant::now();
            if now >= end {
                return Ok(None);
            }
            tokio::time::sleep(POLL.min(end - now)).await;
        }
    }

    /// The pre-traffic check of `version`: Ok when it answered healthy.
    async fn pre_traffic(&self, version: &str) -> Result<(), ResourceError> {
        let health = super::health::check(&self.aws.lambda, &self.function_name, version).await?;
        if !health.ok {
            return Err(ResourceError::new(format!(
                "version {version} failed its health check, so no traffic moved to it: {}",
                health.failure()
            )));
        }
        tracing::info!(
            "{}: version {version} passed its health check ({}; {} ms)",
            self.declared.address,
            health.passed(),
            health.latency.as_millis()
        );
        Ok(())
    }

    /// Moves from `old` to `new` step by step, or back on an alarm.
    async fn shift(&self, old: &str, new: &str) -> Result<(), ResourceError> {
        let started = SystemTime::now();
        let total = self.shift.steps.len();
        for (i, percent) in self.shift.steps.iter().copied().enumerate() {
            if percent >= 100 {
                break;
            }
            self.route(old, Some((new, percent))).await?;
            tracing::info!(
                "{}: {percent}% on version {new} (step {} of {total}; alarms OK, {} to next step)",
                self.declared.address,
                i + 1,
                span(self.shift.interval)
            );
            if let Some((alarm, reason)) = self.watch(new, started, self.shift.interval).await? {
                self.route(old, None).await?;
                tracing::info!("{}: rolled back to version {old}", self.declared.address);
                return Err(ResourceError::new(format!(
                    "rolled back to version {old}: alarm {alarm} went into ALARM during the shift to version {new} ({reason})"
                )));
            }
        }
        self.route(new, None).await?;
        tracing::info!("{}: 100% on version {new}", self.declared.address);
        Ok(())
    }

    fn what(&self, call: &str) -> String {
        format!("lambda:{call} {}", self.declared.name)
    }

    /// A problem for each `deploy.alarms` name that is neither a metric nor
    /// a composite alarm in the stack's Region: a shift would watch nothing.
    async fn missing_alarms(&self) -> Result<Vec<Finding>, ResourceError> {
        if self.shift.named.is_empty() {
            return Ok(Vec::new());
        }
        let found: BTreeSet<String> = self
            .alarm_states()
            .await?
            .into_iter()
            .map(|a| a.name)
            .collect();
        Ok(self
            .shift
            .named
            .iter()
            .filter(|n| !found.contains(*n))
            .map(|n| {
                Finding::Problem(format!(
                    "deploy.alarms names {n}, which is neither a metric alarm nor a composite alarm in {}: a gradual deploy would watch nothing under that name (create the alarm, or correct the name)",
                    self.aws.region
                ))
            })
            .collect())
    }
}

/// One alarm as `DescribeAlarms` gives it.
struct AlarmState {
    name: String,
    alarm: bool,
    reason: String,
    /// When its state last changed (seconds since the epoch).
    changed: Option<i64>,
}

/// `4m 10s`, `30s`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn routing(weights: &BTreeMap<String, f64>) -> AliasRoutingConfiguration {
    AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(
            weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        ))
        .build()
}

/// Live fields of an alias, in the declared shape.
pub fn normalise(
    function_name: &str,
    version: &str,
    routing: Option<&AliasRoutingConfiguration>,
) -> Fields {
    fields_of(&AliasSpec {
        function_name: Text::literal(function_name),
        function_version: Text::literal(version),
        weights: routing
            .and_then(|r| r.additional_version_weights())
            .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default(),
    })
}

#[async_trait]
impl TypedKind for FunctionAlias {
    type Spec = AliasSpec;
    const KIND: &'static str = "lambda-alias";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    /// Aliases have no tags: the alias belongs to its function.
    fn taggable(&self) -> bool {
        false
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        super::functions::predict_arn(&self.aws, &self.declared).await
    }

    async fn check(&self) -> Result<Vec<Finding>, ResourceError> {
        self.missing_alarms().await
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        // No alias (or no function): NotFound, read as absent.
        let out = self
            .aws
            .lambda
            .get_alias()
            .function_name(&self.function_name)
            .name(LIVE)
            .send()
            .await
            .map_err(|e| aws_error(&self.what("GetAlias"), e))?;
        let mut live = Live {
            fields: normalise(
                &self.function_name,
                out.function_version().unwrap_or_default(),
                out.routing_config(),
            ),
            ..Live::default()
        };
        live.attrs
            .insert(ARN.into(), out.alias_arn().unwrap_or_default().to_owned());
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        Ok(Some(live))
    }

    async fn create(&self, spec: &AliasSpec, desired: &Fields) -> Result<Live, ResourceError> {
        self.pre_traffic(spec.function_version.as_str()).await?;
        let exists = retry::call(|| async {
            match self
                .aws
                .lambda
                .create_alias()
                .function_name(&self.function_name)
                .name(LIVE)
                .function_version(spec.function_version.as_str())
                .routing_config(routing(&spec.weights))
                .send()
                .await
            {
                Ok(_) => Ok(false),
                // "Alias already exists": converge on it; an update in
                // progress: the policy waits.
                Err(e) => exists_already(aws_error(&self.what("CreateAlias"), e)),
            }
        })
        .await?;
        if exists {
            // Created by an interrupted run: point it where it belongs.
            converge_existing(self, desired).await?;
        }
        read_back(
            Resource::read(self).await?,
            &format!("alias {}", self.declared.name),
        )
    }

    async fn update(&self, change: &Update<'_, AliasSpec>) -> Result<(), ResourceError> {
        let spec = change.spec;
        let new = spec.function_version.as_str();
        // The version it serves now (an interrupted shift: still the old one).
        let old = change
            .live
            .fields
            .get(AliasSpec::FUNCTION_VERSION.name())
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if old != new {
            self.pre_traffic(new).await?;
        }
        if self.shift.gradual() && !old.is_empty() && old != new && spec.weights.is_empty() {
            return self.shift(&old, new).await;
        }
        self.route(new, None).await?;
        tracing::info!(alias = %self.declared.name, version = new, "alias moved");
        Ok(())
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        retry::call(|| async {
            self.aws
                .lambda
                .delete_alias()
                .function_name(&self.function_name)
                .name(LIVE)
                .send()
                .await
                .done(&self.what("DeleteAlias"))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

impl Export for FunctionAlias {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        use serde_json::json;
        let spec: AliasSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        Ok(vec![Part::main(
            "AWS::Lambda::Alias",
            object([
                ("FunctionName", json!(spec.function_name.as_str())),
                ("FunctionVersion", json!(spec.function_version.as_str())),
                ("Name", json!(LIVE)),
            ]),
        )])
    }

    /// `Ref` of an alias is its ARN, which Lambda accepts wherever the
    /// qualified name goes (and which orders the template after the alias).
    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        matches!(attr, ARN | NAME).then(|| format!("${{{id}}}"))
    }
}

impl FunctionAlias {
    /// `DescribeAlarms` on the shift's alarms (resource type `alarm`).
    fn read_alarms(&self) -> Grant {
        Grant::on(
            &["cloudwatch:DescribeAlarms"],
            self.shift
                .alarms
                .iter()
                .map(|a| account_arn("cloudwatch", "alarm:").then(a.as_str()))
                .collect(),
        )
    }
}

impl Access for FunctionAlias {
    /// Lambda authorises alias calls on the function's ARN (the Service
    /// Authorization Reference's `function` resource type).
    fn read_access(&self) -> Vec<Grant> {
        let mut grants = vec![Grant::on(
            &["lambda:GetAlias"],
            vec![account_arn("lambda", "function:").then(self.function_name.as_str())],
        )];
        // The plan checks that the alarms the stack file names exist.
        if !self.shift.named.is_empty() {
            grants.push(self.read_alarms());
        }
        grants
    }

    fn write_access(&self) -> Vec<Grant> {
        let mut grants = vec![
            Grant::on(
                &[
                    "lambda:CreateAlias",
                    "lambda:UpdateAlias",
                    "lambda:DeleteAlias",
                ],
                vec![account_arn("lambda", "function:").then(self.function_name.as_str())],
            ),
            // The pre-traffic check invokes a version, `provisioner verify`
            // invokes `live`: Lambda restricts function actions "by function,
            // version, or alias ARN" (lambda/latest/dg/lambda-api-permissions-ref.html),
            // and `{name}:*` matches exactly this function's versions and aliases.
            Grant::on(
                &["lambda:InvokeFunction"],
                vec![
                    account_arn("lambda", "function:")
                        .then(self.function_name.as_str())
                        .then(":*"),
                ],
            ),
        ];
        // A gradual shift reads its alarms (resource type `alarm`).
        if self.shift.gradual() && !self.shift.alarms.is_empty() {
            grants.push(self.read_alarms());
        }
        // And the new version's own errors (authorised on no resource type).
        if self.shift.gradual() {
            grants.push(Grant::unscoped(&["cloudwatch:GetMetricStatistics"]));
        }
        grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_alias_reads_as_its_version_and_weights() {
        let routing = AliasRoutingConfiguration::builder()
            .additional_version_weights("8", 0.1)
            .build();
        let f = normalise("s-worker", "7", Some(&routing));
        assert_eq!(f["function_name"], json!("s-worker"));
        assert_eq!(f["function_version"], json!("7"));
        assert_eq!(f["weights"], json!({"8": 0.1}));
        assert_eq!(normalise("s-worker", "7", None)["weights"], json!({}));
    }

    #[test]
    fn steps_are_spelled_in_minutes_and_seconds() {
        assert_eq!(span(Duration::from_secs(250)), "4m 10s");
        assert_eq!(span(Duration::from_secs(30)), "30s");
    }
}
