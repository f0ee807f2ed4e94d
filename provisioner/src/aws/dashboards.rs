//! The stack's CloudWatch dashboard (`PutDashboard`), named after the stack.
//! Its body is derived from the declaration by [`Board::body`] (queues, the
//! images made and failed by reason, model latency, each function, the API,
//! and an alarm-status widget with every alarm of the stack), never written
//! by hand, and compared as parsed JSON: a fresh apply plans no change, a
//! widget edited in the console shows in the plan and is put back.
//!
//! CloudWatch dashboards carry no tags, so the kind is untaggable; the body
//! carries a text widget naming the stack, and a same-named dashboard without
//! it is reported before apply replaces its body.

use std::sync::Arc;

use async_trait::async_trait;
use couch_contract::metrics;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ARN, Aws, Done, NAME, aws_error, with_arn};
use crate::engine::retry;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Fields, Finding, Live, ResourceError, Text, TypedKind, Update,
    fields_of, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object};
use crate::kind::{Access, Grant, own};

/// A dashboard as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardSpec {
    /// The dashboard body (CloudWatch's JSON), as a value.
    pub body: Value,
}

/// What the dashboard shows, from the declaration.
pub struct Board {
    pub stack: String,
    /// Where the metrics are (the stack's Region).
    pub region: String,
    pub queue: Text,
    pub dlq: Text,
    pub worker: Text,
    pub http: Text,
    pub api_id: Text,
    /// The model, and the Region where Bedrock publishes its metrics.
    pub model_id: String,
    pub model_region: String,
    /// Every alarm of the stack, by ARN.
    pub alarms: Vec<Text>,
}

/// The failure reasons the functions emit (`ImagesFailed` by `Reason`).
const REASONS: [&str; 5] = ["filtered", "throttled", "model", "store", "input"];

fn text(t: &Text) -> Value {
    json!(t.as_str())
}

/// The line that says whose dashboard it is.
fn marker(stack: &str) -> String {
    format!(
        "Stack **{stack}**, managed by couch-provisioner: edits here are put back by the next apply."
    )
}

impl Board {
    fn metric_widget(&self, title: &str, metrics: Vec<Value>, stat: &str) -> Value {
        json!({
            "type": "metric",
            "properties": {
                "title": title,
                "region": self.region,
                "view": "timeSeries",
                "stacked": false,
                "period": 60,
                "stat": stat,
                "metrics": metrics,
            }
        })
    }

    /// The body: widgets two to a row, 12 wide, 6 high.
    pub fn body(&self) -> Value {
        let sqs = |name: &str, queue: &Text, label: &str| json!(["AWS/SQS", name, "QueueName", text(queue), {"label": label}]);
        let lambda = |name: &str, function: &Text, stat: &str| json!(["AWS/Lambda", name, "FunctionName", text(function), {"stat": stat, "label": name}]);
        let mut failed: Vec<Value> = vec![json!([
            metrics::NAMESPACE,
            metrics::IMAGES_MADE,
            metrics::FUNCTION_NAME,
            text(&self.worker),
            {"label": "made (worker)"}
        ])];
        for reason in REASONS {
            failed.push(json!([
                metrics::NAMESPACE,
                metrics::IMAGES_FAILED,
                metrics::FUNCTION_NAME,
                text(&self.worker),
                metrics::REASON,
                reason,
                {"label": format!("failed: {reason} (worker)")}
            ]));
        }
        failed.push(json!([
            metrics::NAMESPACE,
            metrics::IMAGES_MADE,
            metrics::FUNCTION_NAME,
            text(&self.http),
            {"label": "made (http)"}
        ]));
        let latency: Vec<Value> = [(&self.worker, "worker"), (&self.http, "http")]
            .into_iter()
            .flat_map(|(f, label)| {
                ["p50", "p99"].map(|stat| {
                    json!([
                        metrics::NAMESPACE,
                        metrics::MODEL_LATENCY,
                        metrics::FUNCTION_NAME,
                        text(f),
                        {"stat": stat, "label": format!("{stat} ({label})")}
                    ])
                })
            })
            .collect();
        let function = |f: &Text| -> Vec<Value> {
            vec![
                lambda("Invocations", f, "Sum"),
                lambda("Errors", f, "Sum"),
                lambda("Throttles", f, "Sum"),
                lambda("ConcurrentExecutions", f, "Maximum"),
                json!(["AWS/Lambda", "Duration", "FunctionName", text(f), {"stat": "p99", "label": "Duration p99 (ms)", "yAxis": "right"}]),
            ]
        };
        let api = |name: &str, stat: &str| json!(["AWS/ApiGateway", name, "ApiId", text(&self.api_id), "Stage", "$default", {"stat": stat, "label": name}]);
        let mut widgets = vec![
            json!({"type": "text", "properties": {"markdown": marker(&self.stack)}}),
            json!({
                "type": "alarm",
                "properties": {
                    "title": "Alarms",
                    "alarms": self.alarms.iter().map(text).collect::<Vec<_>>(),
                }
            }),
            self.metric_widget(
                "Queue: prompts waiting, oldest age (s), dead-lettered",
                vec![
                    sqs("ApproximateNumberOfMessagesVisible", &self.queue, "waiting"),
                    json!(["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", text(&self.queue), {"label": "oldest age (s)", "yAxis": "right"}]),
                    sqs("ApproximateNumberOfMessagesVisible", &self.dlq, "dead-lettered"),
                ],
                "Maximum",
            ),
            self.metric_widget("Images made and failed, by reason", failed, "Sum"),
            self.metric_widget("Model latency (ms)", latency, "p50"),
            // Bedrock's own counts live in the model's Region (a metric's
            // `region` option: a dashboard shows any Region's metrics); the
            // functions' count of throttled calls in the stack's.
            self.metric_widget(
                "Model: calls, throttled calls",
                vec![
                    json!(["AWS/Bedrock", "Invocations", "ModelId", self.model_id, {"region": self.model_region, "label": "calls (Bedrock)"}]),
                    json!(["AWS/Bedrock", "InvocationThrottles", "ModelId", self.model_id, {"region": self.model_region, "label": "throttled (Bedrock)"}]),
                    json!([metrics::NAMESPACE, metrics::MODEL_THROTTLES, metrics::FUNCTION_NAME, text(&self.worker), {"label": "throttled (worker)"}]),
                    json!([metrics::NAMESPACE, metrics::MODEL_THROTTLES, metrics::FUNCTION_NAME, text(&self.http), {"label": "throttled (http)"}]),
                ],
                "Sum",
            ),
            self.metric_widget("Worker function", function(&self.worker), "Sum"),
            self.metric_widget("HTTP function", function(&self.http), "Sum"),
            self.metric_widget(
                "API: requests, 4xx, 5xx, latency (ms)",
                vec![
                    api("Count", "Sum"),
                    api("4xx", "Sum"),
                    api("5xx", "Sum"),
                    json!(["AWS/ApiGateway", "Latency", "ApiId", text(&self.api_id), "Stage", "$default", {"stat": "p99", "label": "Latency p99", "yAxis": "right"}]),
                ],
                "Sum",
            ),
        ];
        for (i, w) in widgets.iter_mut().enumerate() {
            let (x, y) = ((i % 2) * 12, (i / 2) * 6);
            let height = if i == 0 { 2 } else { 6 };
            if let Value::Object(m) = w {
                m.insert("x".into(), json!(x));
                m.insert("y".into(), json!(y));
                m.insert("width".into(), json!(12));
                m.insert("height".into(), json!(height));
            }
        }
        json!({ "widgets": widgets })
    }
}

pub struct Dashboard {
    declared: Declared,
    stack: String,
    aws: Arc<Aws>,
}

impl Dashboard {
    pub fn new(address: &str, name: String, board: &Board, aws: Arc<Aws>) -> Self {
        let spec = DashboardSpec { body: board.body() };
        Dashboard {
            declared: Declared::of(address, name.clone(), &spec).knowing(NAME, name),
            stack: board.stack.clone(),
            aws,
        }
    }

    /// `arn:aws:cloudwatch::{account}:dashboard/{name}` (dashboards are global).
    async fn arn(&self) -> Result<String, ResourceError> {
        let account = self.aws.account_id().await?;
        Ok(format!(
            "arn:{}:cloudwatch::{account}:dashboard/{}",
            self.aws.partition(),
            self.declared.name
        ))
    }

    async fn put(&self, spec: &DashboardSpec) -> Result<(), ResourceError> {
        let body = spec.body.to_string();
        let out = retry::call(|| async {
            self.aws
                .cloudwatch
                .put_dashboard()
                .dashboard_name(&self.declared.name)
                .dashboard_body(&body)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        &format!("cloudwatch:PutDashboard {}", self.declared.name),
                        e,
                    )
                })
        })
        .await?;
        // CloudWatch stores a body with warnings but says what it did not like.
        for m in out.dashboard_validation_messages() {
            tracing::warn!(
                dashboard = %self.declared.name,
                path = m.data_path().unwrap_or_default(),
                "{}",
                m.message().unwrap_or_default()
            );
        }
        Ok(())
    }
}

#[async_trait]
impl TypedKind for Dashboard {
    type Spec = DashboardSpec;
    const KIND: &'static str = "cloudwatch-dashboard";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn taggable(&self) -> bool {
        false
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        Ok(with_arn(&self.declared, self.arn().await?))
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        // ResourceNotFound reads as absent.
        let got = self
            .aws
            .cloudwatch
            .get_dashboard()
            .dashboard_name(&self.declared.name)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    &format!("cloudwatch:GetDashboard {}", self.declared.name),
                    e,
                )
            })?;
        let raw = got.dashboard_body().unwrap_or_default();
        let body: Value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()));
        let mut live = Live {
            fields: fields_of(&DashboardSpec { body }),
            ..Live::default()
        };
        if !raw.contains(&marker(&self.stack)) {
            live.findings.push(Finding::Warning(format!(
                "dashboard {:?} does not say it belongs to stack {:?}: apply replaces its whole body",
                self.declared.name, self.stack
            )));
        }
        live.attrs.insert(
            ARN.into(),
            got.dashboard_arn().map_or_else(String::new, str::to_owned),
        );
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        Ok(Some(live))
    }

    async fn create(&self, spec: &DashboardSpec, desired: &Fields) -> Result<Live, ResourceError> {
        self.put(spec).await?;
        let mut live = Live {
            fields: desired.clone(),
            ..Live::default()
        };
        live.attrs.insert(ARN.into(), self.arn().await?);
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        Ok(live)
    }

    /// `PutDashboard` replaces the whole body.
    async fn update(&self, change: &Update<'_, DashboardSpec>) -> Result<(), ResourceError> {
        self.put(change.spec).await
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        retry::call(|| async {
            self.aws
                .cloudwatch
                .delete_dashboards()
                .dashboard_names(&self.declared.name)
                .send()
                .await
                .done(&format!(
                    "cloudwatch:DeleteDashboards {}",
                    self.declared.name
                ))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

impl Export for Dashboard {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        let spec: DashboardSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        Ok(vec![Part::main(
            "AWS::CloudWatch::Dashboard",
            object([
                ("DashboardName", json!(self.declared.name)),
                // A string with the engine's references, as Fn::Sub.
                ("DashboardBody", json!(spec.body.to_string())),
            ]),
        )])
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        match attr {
            NAME => Some(format!("${{{id}}}")),
            _ => None,
        }
    }
}

impl Access for Dashboard {
    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &["cloudwatch:GetDashboard"],
            vec![own(self, ARN)],
        )]
    }

    fn write_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &["cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"],
            vec![own(self, ARN)],
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn board() -> Board {
        Board {
            model_id: "stability.stable-image-core-v1:1".into(),
            model_region: "us-west-2".into(),
            stack: "couch-prod".into(),
            region: "eu-west-1".into(),
            queue: "couch-prod-prompts".into(),
            dlq: "couch-prod-prompts-dlq".into(),
            worker: "couch-prod-worker".into(),
            http: "couch-prod-http".into(),
            api_id: Text::from("${api.http.id}"),
            alarms: vec!["arn:aws:cloudwatch:eu-west-1:1:alarm:couch-prod-dlq-messages".into()],
        }
    }

    /// Every metric line of every widget, as text.
    fn metric_lines(body: &Value) -> Vec<String> {
        body["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|w| {
                w["properties"]["metrics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|m| m.to_string())
            .collect()
    }

    #[test]
    fn the_body_shows_every_part_of_the_system() {
        let body = board().body();
        let lines = metric_lines(&body).join("\n");
        for needle in [
            "\"ApproximateNumberOfMessagesVisible\",\"QueueName\",\"couch-prod-prompts\"",
            "\"ApproximateAgeOfOldestMessage\"",
            "\"ApproximateNumberOfMessagesVisible\",\"QueueName\",\"couch-prod-prompts-dlq\"",
            "\"ImagesMade\"",
            "\"Reason\",\"filtered\"",
            "\"Reason\",\"store\"",
            "\"ModelLatency\",\"FunctionName\",\"couch-prod-worker\",{\"label\":\"p99 (worker)\",\"stat\":\"p99\"}",
            "\"Invocations\",\"FunctionName\",\"couch-prod-http\"",
            "\"ConcurrentExecutions\"",
            "\"Throttles\"",
            "\"5xx\",\"ApiId\",\"${api.http.id}\",\"Stage\",\"$default\"",
            "\"4xx\"",
            "\"Latency\"",
        ] {
            assert!(lines.contains(needle), "{needle} in\n{lines}");
        }
        let alarm = body["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["type"] == "alarm")
            .unwrap();
        assert_eq!(
            alarm["properties"]["alarms"],
            json!(["arn:aws:cloudwatch:eu-west-1:1:alarm:couch-prod-dlq-messages"])
        );
        // Laid out on CloudWatch's 24-column grid, none overlapping.
        let mut cells = BTreeSet::new();
        for w in body["widgets"].as_array().unwrap() {
            let x = w["x"].as_u64().unwrap();
            assert!(x + w["width"].as_u64().unwrap() <= 24);
            assert!(cells.insert((x, w["y"].as_u64().unwrap())), "{w}");
        }
    }
}
