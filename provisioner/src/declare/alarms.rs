//! Every way an image is lost or a part fails, as an alarm telling the
//! alerts topic; and the dashboard, one view of all of it.

use std::sync::Arc;

use couch_contract::metrics;

use super::functions::Function;
use super::queueing::Queueing;
use super::{
    API_5XX_ALARM, API_5XX_WHAT, DASHBOARD, DLQ_ALARM, Declaration, FAILED_IMAGES_ALARM,
    HTTP_ERRORS_ALARM, HTTP_ERRORS_WHAT, HTTP_THROTTLES_ALARM, HTTP_THROTTLES_WHAT,
    MODEL_THROTTLES_ALARM, WORKER_ERRORS_ALARM, WORKER_THROTTLES_ALARM,
};
use crate::aws::Aws;
use crate::aws::alarms::{AlarmSpec, Dimension, MetricAlarmResource};
use crate::aws::dashboards::{Board, Dashboard};
use crate::aws::functions::LambdaFunction;
use crate::aws::http_apis::HttpApi;
use crate::aws::queues::SqsQueue;
use crate::aws::topics::SnsTopic;
use crate::engine::{Handle, Text};
use crate::stack::Stack;

/// A CloudWatch metric an alarm watches.
struct Metric {
    namespace: &'static str,
    name: &'static str,
    dimensions: Vec<(&'static str, Text)>,
    statistic: &'static str,
}

/// The alarm name suffix of the model-throttles alarm.
pub const MODEL_THROTTLES_WHAT: &str = "model-throttles";

/// What the model-throttles alarm watches: Bedrock's own
/// `InvocationThrottles` for the model (namespace `AWS/Bedrock`, dimension
/// `ModelId`: bedrock/latest/userguide/monitoring-runtime-metrics.html) when
/// the model is called in the stack's Region; when it is called in another,
/// the functions' own count of throttled calls (`ModelThrottles`, same
/// meaning, in the stack's Region), because a CloudWatch alarm watches
/// only metrics of its own Region (and its SNS action is the stack's).
fn model_throttles_metric(stack: &Stack, worker: &Handle<LambdaFunction>) -> Metric {
    if stack.model.region == stack.region {
        Metric {
            namespace: "AWS/Bedrock",
            name: "InvocationThrottles",
            dimensions: vec![("ModelId", stack.model.id.as_str().into())],
            statistic: "Sum",
        }
    } else {
        Metric {
            namespace: metrics::NAMESPACE,
            name: metrics::MODEL_THROTTLES,
            dimensions: vec![(metrics::FUNCTION_NAME, worker.name().into())],
            statistic: "Sum",
        }
    }
}

/// One loss alarm: its address, its name's suffix, what it watches, its threshold.
type LossAlarm = (&'static str, &'static str, Metric, u32);

/// Every way an image is lost or a part fails (the `alarms:` section's
/// thresholds), as the alarms' table.
fn loss_alarms(
    stack: &Stack,
    dlq: &Handle<SqsQueue>,
    worker: &Handle<LambdaFunction>,
    http: &Handle<LambdaFunction>,
    api: &Handle<HttpApi>,
) -> [LossAlarm; 8] {
    let a = &stack.alarms;
    let lambda = |name: &'static str, function: &Handle<LambdaFunction>| Metric {
        namespace: "AWS/Lambda",
        name,
        dimensions: vec![("FunctionName", function.name().into())],
        statistic: "Sum",
    };
    [
        (
            DLQ_ALARM,
            "dlq-messages",
            Metric {
                namespace: "AWS/SQS",
                name: "ApproximateNumberOfMessagesVisible",
                dimensions: vec![("QueueName", dlq.name().into())],
                statistic: "Maximum",
            },
            a.dlq_messages,
        ),
        (
            FAILED_IMAGES_ALARM,
            "failed-images",
            Metric {
                namespace: metrics::NAMESPACE,
                name: metrics::IMAGES_FAILED,
                dimensions: vec![(metrics::FUNCTION_NAME, worker.name().into())],
                statistic: "Sum",
            },
            a.failed_images,
        ),
        (
            WORKER_ERRORS_ALARM,
            "worker-errors",
            lambda("Errors", worker),
            a.function_errors,
        ),
        (
            WORKER_THROTTLES_ALARM,
            "worker-throttles",
            lambda("Throttles", worker),
            a.function_throttles,
        ),
        (
            HTTP_ERRORS_ALARM,
            HTTP_ERRORS_WHAT,
            lambda("Errors", http),
            a.function_errors,
        ),
        (
            HTTP_THROTTLES_ALARM,
            HTTP_THROTTLES_WHAT,
            lambda("Throttles", http),
            a.function_throttles,
        ),
        (
            MODEL_THROTTLES_ALARM,
            MODEL_THROTTLES_WHAT,
            model_throttles_metric(stack, worker),
            a.model_throttles,
        ),
        (
            API_5XX_ALARM,
            API_5XX_WHAT,
            Metric {
                namespace: "AWS/ApiGateway",
                name: "5xx",
                dimensions: vec![("ApiId", api.id().into()), ("Stage", "$default".into())],
                statistic: "Sum",
            },
            a.api_5xx,
        ),
    ]
}

/// What an alarm says when it fires, in the e-mail's first line.
fn description(
    stack: &Stack,
    address: &str,
    what: &str,
    metric: &Metric,
    threshold: u32,
) -> String {
    let a = &stack.alarms;
    match address {
        DLQ_ALARM => format!(
            "An image request was lost: more than {threshold} prompt(s) in the dead-letter queue {} (`provisioner redrive` sends them back)",
            stack.dlq_name()
        ),
        MODEL_THROTTLES_ALARM => format!(
            "More than {threshold} model call(s) throttled in {} s ({} {}): the stack asks more of {} than the account allows; see plan's throughput line",
            a.period_seconds, metric.namespace, metric.name, stack.model.id
        ),
        FAILED_IMAGES_ALARM => format!(
            "More than {threshold} failed image attempt(s) in {} s ({} metric {} of {})",
            a.period_seconds,
            metrics::NAMESPACE,
            metrics::IMAGES_FAILED,
            stack.worker_name()
        ),
        _ => format!(
            "More than {threshold} {what} in {} s ({} {})",
            a.period_seconds, metric.namespace, metric.name
        ),
    }
}

/// An alarm telling the alerts topic when `metric` is above `threshold` in
/// one period (and OK again).
fn alarm_spec(
    stack: &Stack,
    topic: &Handle<SnsTopic>,
    description: String,
    metric: Metric,
    threshold: u32,
) -> AlarmSpec {
    let a = &stack.alarms;
    AlarmSpec {
        description: format!("{description}; managed by couch-provisioner"),
        namespace: metric.namespace.into(),
        metric_name: metric.name.into(),
        dimensions: metric
            .dimensions
            .into_iter()
            .map(|(name, value)| Dimension {
                name: name.into(),
                value,
            })
            .collect(),
        statistic: metric.statistic.into(),
        comparison_operator: "GreaterThanThreshold".into(),
        threshold: f64::from(threshold),
        period: a.period_seconds,
        evaluation_periods: 1,
        // No data is no failure (nothing ran, nothing was lost).
        treat_missing_data: "notBreaching".into(),
        actions_enabled: true,
        alarm_actions: vec![topic.arn().into()],
        ok_actions: vec![topic.arn().into()],
        tags: stack.resource_tags(),
    }
}

/// Every loss alarm, and the dashboard: one view of all of it, derived from
/// the same handles.
pub fn declare(
    d: &mut Declaration,
    stack: &Stack,
    aws: &Arc<Aws>,
    q: &Queueing,
    worker: &Function,
    http: &Function,
    api: &Handle<HttpApi>,
) {
    let (dlq, queue, topic, alarm) = (&q.dlq, &q.queue, &q.topic, &q.alarm);
    let (worker, http) = (&worker.function, &http.function);
    let mut alarm_arns: Vec<Text> = vec![alarm.arn().into()];
    for (address, what, metric, threshold) in loss_alarms(stack, dlq, worker, http, api) {
        let description = description(stack, address, what, &metric, threshold);
        let spec = alarm_spec(stack, topic, description, metric, threshold);
        let added = d.add(MetricAlarmResource::new(
            address,
            stack.alarm_name_for(what),
            &spec,
            Arc::clone(aws),
        ));
        alarm_arns.push(added.arn().into());
    }
    d.add(Dashboard::new(
        DASHBOARD,
        stack.name.clone(),
        &Board {
            stack: stack.name.clone(),
            region: stack.region.clone(),
            queue: queue.name().into(),
            dlq: dlq.name().into(),
            worker: worker.name().into(),
            http: http.name().into(),
            api_id: api.id().into(),
            model_id: stack.model.id.clone(),
            model_region: stack.model.region.clone(),
            alarms: alarm_arns,
        },
        Arc::clone(aws),
    ));
}
