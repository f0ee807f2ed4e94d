//! The stack's resources: a [`Stack`] becomes the list of resources the engine
//! plans, with `${address.attr}` references between them. No AWS call is made
//! here; the clients are only stored for later reads and writes.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::aws::Aws;
use crate::aws::alarms::MetricAlarmResource;
use crate::aws::buckets::ReferencedBucket;
use crate::aws::queues::SqsQueue;
use crate::aws::subscriptions::EmailSubscription;
use crate::aws::topics::SnsTopic;
use crate::engine::refs::reference;
use crate::engine::{Declared, Fields, Resource};
use crate::stack::{DLQ_RETENTION_SECONDS, Stack};

pub const DLQ: &str = "queue.dlq";
pub const QUEUE: &str = "queue.prompts";
pub const TOPIC: &str = "topic.alerts";
pub const SUBSCRIPTION: &str = "subscription.alerts_email";
pub const ALARM: &str = "alarm.prompt_age";
pub const BUCKET: &str = "bucket.images";

fn fields(v: Value) -> Fields {
    match v {
        Value::Object(m) => m.into_iter().collect(),
        _ => Fields::new(),
    }
}

fn tags(stack: &Stack) -> Value {
    json!(stack.resource_tags())
}

/// Desired fields of every managed resource, by address (pure data, for tests and `--offline`).
pub fn desired(stack: &Stack) -> Vec<(&'static str, Fields)> {
    vec![
        (
            DLQ,
            fields(json!({
                "message_retention_seconds": DLQ_RETENTION_SECONDS,
                "sqs_managed_sse": true,
                "tags": tags(stack),
            })),
        ),
        (
            QUEUE,
            fields(json!({
                "visibility_timeout_seconds": stack.queue.visibility_timeout_seconds,
                "message_retention_seconds": stack.queue.message_retention_seconds,
                "sqs_managed_sse": true,
                "redrive_policy": {
                    "deadLetterTargetArn": reference(DLQ, "arn"),
                    "maxReceiveCount": stack.queue.max_receive_count,
                },
                "tags": tags(stack),
            })),
        ),
        (TOPIC, fields(json!({ "tags": tags(stack) }))),
        (
            SUBSCRIPTION,
            fields(json!({
                "topic_arn": reference(TOPIC, "arn"),
                "protocol": "email",
                "endpoint": stack.alarm.email.to_ascii_lowercase(),
            })),
        ),
        (
            ALARM,
            fields(json!({
                "namespace": "AWS/SQS",
                "metric_name": "ApproximateAgeOfOldestMessage",
                "dimensions": [{"name": "QueueName", "value": reference(QUEUE, "name")}],
                "statistic": "Maximum",
                "comparison_operator": "GreaterThanThreshold",
                "threshold": f64::from(stack.alarm.threshold_seconds),
                "period": stack.alarm.period_seconds,
                "evaluation_periods": stack.alarm.evaluation_periods,
                "treat_missing_data": "notBreaching",
                "actions_enabled": true,
                "alarm_actions": [reference(TOPIC, "arn")],
                "ok_actions": [reference(TOPIC, "arn")],
                "tags": tags(stack),
            })),
        ),
    ]
}

/// Every resource of the stack, bound to the clients that read and write it.
pub fn resources(stack: &Stack, aws: &Arc<Aws>) -> Vec<Arc<dyn Resource>> {
    let mut out: Vec<Arc<dyn Resource>> = vec![Arc::new(ReferencedBucket::new(
        BUCKET,
        stack.images.bucket.clone(),
        Arc::clone(aws),
    ))];
    for (address, f) in desired(stack) {
        let aws = Arc::clone(aws);
        let r: Arc<dyn Resource> = match address {
            DLQ => Arc::new(SqsQueue::new(
                Declared::new(address, stack.dlq_name(), f),
                aws,
            )),
            QUEUE => Arc::new(SqsQueue::new(
                Declared::new(address, stack.queue_name(), f),
                aws,
            )),
            TOPIC => Arc::new(SnsTopic::new(
                Declared::new(address, stack.topic_name(), f),
                aws,
            )),
            SUBSCRIPTION => Arc::new(EmailSubscription::new(address, stack.topic_name(), f, aws)),
            _ => Arc::new(MetricAlarmResource::new(
                Declared::new(address, stack.alarm_name(), f),
                aws,
            )),
        };
        out.push(r);
    }
    out
}

/// Named outputs: a reference into a resource's attributes, or a fixed value.
pub fn outputs(stack: &Stack) -> Vec<(&'static str, String)> {
    vec![
        ("queue_url", reference(QUEUE, "url")),
        ("queue_arn", reference(QUEUE, "arn")),
        ("dlq_url", reference(DLQ, "url")),
        ("dlq_arn", reference(DLQ, "arn")),
        ("topic_arn", reference(TOPIC, "arn")),
        ("alarm_name", reference(ALARM, "name")),
        ("alarm_arn", reference(ALARM, "arn")),
        ("images_bucket", stack.images.bucket.clone()),
        ("images_prefix", stack.images.prefix.clone()),
        ("model_id", stack.model.id.clone()),
        ("model_region", stack.model.region.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{Mode, PlanOptions, Snapshot, compute, depends_on};
    use std::path::Path;

    fn stack() -> Stack {
        crate::stack::parse(
            Path::new("t.yaml"),
            "name: couch-prod\nimages: { bucket: b-1, prefix: \"11\" }\nalarm: { email: Team@Example.com }\ntags: { team: couch }\n",
        )
        .unwrap()
    }

    #[test]
    fn references_make_the_dependency_graph() {
        let aws = Arc::new(Aws::offline("eu-west-1"));
        let rs = resources(&stack(), &aws);
        let deps = |a: &str| {
            depends_on(rs.iter().find(|r| r.address() == a).unwrap().as_ref())
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(deps(QUEUE), [DLQ]);
        assert_eq!(deps(SUBSCRIPTION), [TOPIC]);
        assert_eq!(deps(ALARM), [QUEUE, TOPIC]);
        assert!(deps(DLQ).is_empty());
    }

    #[test]
    fn offline_plan_creates_everything_with_ownership_tags() {
        let s = stack();
        let aws = Arc::new(Aws::offline("eu-west-1"));
        let plan = compute(
            &resources(&s, &aws),
            &Snapshot::default(),
            &PlanOptions {
                stack: s.name.clone(),
                mode: Mode::Apply,
                adopt: false,
            },
        );
        assert_eq!(plan.summary.create, 5);
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        let q = plan.change(QUEUE).unwrap();
        let tags = q
            .fields
            .iter()
            .find(|f| f.path == "tags")
            .and_then(|f| f.after.clone());
        assert_eq!(
            tags,
            Some(
                json!({"managed-by": "couch-provisioner", "stack": "couch-prod", "team": "couch"})
            )
        );
        // The DLQ's ARN is unknown until it exists.
        assert_eq!(
            q.fields
                .iter()
                .find(|f| f.path == "redrive_policy")
                .unwrap()
                .after,
            None
        );
        let sub = plan.change(SUBSCRIPTION).unwrap();
        assert!(
            sub.fields
                .iter()
                .any(|f| f.after == Some(json!("team@example.com")))
        );
    }
}
