//! Queueing: the dead-letter queue, the prompts queue redriving to it, the
//! alerts topic with its e-mail subscription, and the prompt-age alarm.

use std::sync::Arc;

use super::{ALARM, DLQ, Declaration, QUEUE, SUBSCRIPTION, TOPIC};
use crate::aws::Aws;
use crate::aws::alarms::{AlarmSpec, Dimension, MetricAlarmResource};
use crate::aws::queues::{QueueSpec, Redrive, SqsQueue};
use crate::aws::subscriptions::EmailSubscription;
use crate::aws::topics::{SnsTopic, TopicSpec};
use crate::engine::Handle;
use crate::stack::{DLQ_RETENTION_SECONDS, Stack};

/// What the rest of the stack wires to.
pub struct Queueing {
    pub dlq: Handle<SqsQueue>,
    pub queue: Handle<SqsQueue>,
    pub topic: Handle<SnsTopic>,
    pub alarm: Handle<MetricAlarmResource>,
}

pub fn declare(d: &mut Declaration, stack: &Stack, aws: &Arc<Aws>) -> Queueing {
    let dlq = d.add(SqsQueue::new(
        DLQ,
        stack.dlq_name(),
        &QueueSpec {
            visibility_timeout_seconds: None,
            message_retention_seconds: DLQ_RETENTION_SECONDS,
            sqs_managed_sse: true,
            redrive: None,
            tags: stack.resource_tags(),
        },
        Arc::clone(aws),
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
                // A safety net for crashed invocations: the worker moves
                // what it gives up itself, and throttles do not count.
                max_receive_count: couch_contract::queues::safety_net(
                    stack.queue.max_receive_count,
                ),
            }),
            tags: stack.resource_tags(),
        },
        Arc::clone(aws),
    ));

    let topic = d.add(SnsTopic::new(
        TOPIC,
        stack.topic_name(),
        &TopicSpec {
            tags: stack.resource_tags(),
        },
        Arc::clone(aws),
    ));

    d.add(EmailSubscription::new(
        SUBSCRIPTION,
        stack.topic_name(),
        topic.arn(),
        &stack.alarm.email,
        Arc::clone(aws),
    ));

    let alarm = prompt_age_alarm(d, stack, &queue, &topic, aws);

    Queueing {
        dlq,
        queue,
        topic,
        alarm,
    }
}

/// The prompt-age alarm: the queue's oldest prompt waiting longer than
/// `alarm.threshold_seconds`, e-mailed through the topic (and its end).
fn prompt_age_alarm(
    d: &mut Declaration,
    stack: &Stack,
    queue: &Handle<SqsQueue>,
    topic: &Handle<SnsTopic>,
    aws: &Arc<Aws>,
) -> Handle<MetricAlarmResource> {
    d.add(MetricAlarmResource::new(
        ALARM,
        stack.alarm_name(),
        &AlarmSpec {
            description: format!(
                "Prompts wait too long in the queue ({}); managed by couch-provisioner",
                stack.alarm_name()
            ),
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
            tags: stack.resource_tags(),
        },
        Arc::clone(aws),
    ))
}
