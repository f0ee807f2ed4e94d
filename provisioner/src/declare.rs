//! The stack's resources, declared top to bottom like the architecture
//! drawing: each kind's typed spec, wired to the others through the typed
//! references its handle exports (`dlq.arn()`), which also make the dependency
//! graph. No AWS call is made here; the clients are only stored for later.

use std::sync::Arc;

use crate::aws::Aws;
use crate::aws::alarms::{AlarmSpec, Dimension, MetricAlarmResource};
use crate::aws::buckets::ReferencedBucket;
use crate::aws::queues::{QueueSpec, Redrive, SqsQueue};
use crate::aws::subscriptions::EmailSubscription;
use crate::aws::topics::{SnsTopic, TopicSpec};
use crate::engine::{Handle, Resource, Text};
use crate::stack::{DLQ_RETENTION_SECONDS, Stack};

pub const DLQ: &str = "queue.dlq";
pub const QUEUE: &str = "queue.prompts";
pub const TOPIC: &str = "topic.alerts";
pub const SUBSCRIPTION: &str = "subscription.alerts_email";
pub const ALARM: &str = "alarm.prompt_age";
pub const BUCKET: &str = "bucket.images";

/// The declared resources, in declaration order, and the stack's outputs.
pub struct Declaration {
    pub resources: Vec<Arc<dyn Resource>>,
    /// Output name → value (a reference into a resource, or fixed text).
    pub outputs: Vec<(&'static str, Text)>,
}

impl Declaration {
    /// Adds a resource; its handle is how others reference it.
    fn add<K: Resource + 'static>(&mut self, resource: K) -> Handle<K> {
        let handle = Handle::new(resource.address());
        self.resources.push(Arc::new(resource));
        handle
    }

    fn output(&mut self, name: &'static str, value: impl Into<Text>) {
        self.outputs.push((name, value.into()));
    }
}

/// Everything the stack declares, bound to the clients that read and write it.
pub fn declare(stack: &Stack, aws: &Arc<Aws>) -> Declaration {
    let mut d = Declaration {
        resources: Vec::new(),
        outputs: Vec::new(),
    };
    let aws = || Arc::clone(aws);
    let tags = stack.resource_tags();

    d.add(ReferencedBucket::new(
        BUCKET,
        stack.images.bucket.clone(),
        aws(),
    ));

    let dlq = d.add(SqsQueue::new(
        DLQ,
        stack.dlq_name(),
        &QueueSpec {
            visibility_timeout_seconds: None,
            message_retention_seconds: DLQ_RETENTION_SECONDS,
            sqs_managed_sse: true,
            redrive: None,
            tags: tags.clone(),
        },
        aws(),
    ));

    let queue = d.add(SqsQueue::new(
        QUEUE,
        stack.queue_name(),
        &QueueSpec {
            visibility_timeout_seconds: Some(stack.queue.visibility_timeout_seconds),
            message_retention_seconds: stack.queue.message_retention_seconds,
            sqs_managed_sse: true,
            redrive: Some(Redrive {
                dead_letter_target_arn: dlq.arn().into(),
                max_receive_count: stack.queue.max_receive_count,
            }),
            tags: tags.clone(),
        },
        aws(),
    ));

    let topic = d.add(SnsTopic::new(
        TOPIC,
        stack.topic_name(),
        &TopicSpec { tags: tags.clone() },
        aws(),
    ));

    d.add(EmailSubscription::new(
        SUBSCRIPTION,
        stack.topic_name(),
        topic.arn(),
        &stack.alarm.email,
        aws(),
    ));

    let alarm = d.add(MetricAlarmResource::new(
        ALARM,
        stack.alarm_name(),
        &AlarmSpec {
            namespace: "AWS/SQS".into(),
            metric_name: "ApproximateAgeOfOldestMessage".into(),
            dimensions: vec![Dimension {
                name: "QueueName".into(),
                value: queue.name().into(),
            }],
            statistic: "Maximum".into(),
            comparison_operator: "GreaterThanThreshold".into(),
            threshold: f64::from(stack.alarm.threshold_seconds),
            period: stack.alarm.period_seconds,
            evaluation_periods: stack.alarm.evaluation_periods,
            treat_missing_data: "notBreaching".into(),
            actions_enabled: true,
            alarm_actions: vec![topic.arn().into()],
            ok_actions: vec![topic.arn().into()],
            tags,
        },
        aws(),
    ));

    d.output("queue_url", queue.url());
    d.output("queue_arn", queue.arn());
    d.output("dlq_url", dlq.url());
    d.output("dlq_arn", dlq.arn());
    d.output("topic_arn", topic.arn());
    d.output("alarm_name", alarm.name());
    d.output("alarm_arn", alarm.arn());
    d.output("images_bucket", stack.images.bucket.as_str());
    d.output("images_prefix", stack.images.prefix.as_str());
    d.output("model_id", stack.model.id.as_str());
    d.output("model_region", stack.model.region.as_str());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{Mode, PlanOptions, Snapshot, compute, depends_on};
    use serde_json::json;
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
        let rs = declare(&stack(), &aws).resources;
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
            &declare(&s, &aws).resources,
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
        // The queue's name is fixed by the declaration: the alarm's dimension is known offline.
        let alarm = plan.change(ALARM).unwrap();
        assert_eq!(
            alarm
                .fields
                .iter()
                .find(|f| f.path == "dimensions")
                .unwrap()
                .after,
            Some(json!([{"name": "QueueName", "value": "couch-prod-prompts"}]))
        );
        let sub = plan.change(SUBSCRIPTION).unwrap();
        assert!(
            sub.fields
                .iter()
                .any(|f| f.after == Some(json!("team@example.com")))
        );
    }
}
