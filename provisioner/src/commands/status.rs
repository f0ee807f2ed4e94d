//! `provisioner status --stack F [--json]`: how the deployed system is doing,
//! in one screen and one round of reads: the prompts queue (visible, in
//! flight, the age of the oldest prompt), the dead-letter queue's depth,
//! every alarm of the stack with its state and reason, and per function the
//! last hour's invocations, errors and p99 duration (one `GetMetricData`
//! call for all of them) and whether its deployed code is the local zip.
//!
//! Exit codes: 0 healthy; 3 when an alarm is in ALARM or the dead-letter
//! queue holds a prompt ([`EXIT_UNHEALTHY`]), so a script can gate on it; 1 on
//! an error.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_smithy_types::DateTime;
use serde::Serialize;

use super::Session;
use super::redrive::queue_state;
use crate::artifacts::{Artifact, Artifacts, short};
use crate::aws::aws_error;
use crate::aws::policies::Statement;

/// What `status` calls beyond the kinds' own reads (which the plan role has):
/// CloudWatch's `GetMetricData`, which AWS authorises on no resource type
/// (Service Authorization Reference), so `*` held to the stack's Region.
pub fn statement(region: &str) -> Statement {
    Statement::allow("Status", &["cloudwatch:GetMetricData"], vec!["*".into()]).when(
        "StringEquals",
        "aws:RequestedRegion",
        vec![region.into()],
    )
}

/// `status`'s exit code when something needs attention.
pub const EXIT_UNHEALTHY: u8 = 3;

/// The metrics' window: the last hour.
const WINDOW: Duration = Duration::from_secs(3600);

/// How the deployed system is doing: queues, the dead-letter queue, every
/// alarm, the functions' last hour. Exit 3 when an alarm is in ALARM or
/// the dead-letter queue is not empty.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Print it as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStatus {
    pub name: String,
    pub visible: u64,
    pub in_flight: u64,
    /// The oldest prompt's age in seconds (the last 5 minutes' maximum of
    /// `ApproximateAgeOfOldestMessage`), when CloudWatch has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_age_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmStatus {
    pub name: String,
    /// `OK`, `ALARM`, `INSUFFICIENT_DATA`, or `MISSING` (not deployed).
    pub state: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionStatus {
    pub name: String,
    pub invocations: f64,
    pub errors: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_duration_ms: Option<f64>,
    /// The deployed `CodeSha256`, shortened.
    pub deployed_code: String,
    /// Whether it is the local zip's (`None`: no local zip to compare).
    pub code_is_local_zip: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub stack: String,
    pub queue: QueueStatus,
    pub dead_letter_queue: QueueStatus,
    pub alarms: Vec<AlarmStatus>,
    pub functions: Vec<FunctionStatus>,
    pub healthy: bool,
    /// Why not, one line each.
    pub attention: Vec<String>,
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    let session = Session::open(path, inputs).await?;
    let artifacts = Artifacts::load(&inputs.artifacts);
    let status = read(&session, &artifacts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", text(&status));
    }
    Ok(if status.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNHEALTHY)
    })
}

fn metric_query(
    id: &str,
    namespace: &str,
    name: &str,
    dimension: (&str, &str),
    stat: &str,
    period: i32,
) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(namespace)
                        .metric_name(name)
                        .dimensions(
                            Dimension::builder()
                                .name(dimension.0)
                                .value(dimension.1)
                                .build(),
                        )
                        .build(),
                )
                .period(period)
                .stat(stat)
                .build(),
        )
        .build()
}

/// Reads everything concurrently.
/// The metrics `status` reads in one `GetMetricData`: the queue's oldest
/// message, and each function's invocations, errors and p99 duration over
/// the last [`WINDOW`].
fn queries(
    stack: &crate::stack::Stack,
    functions: &[(String, &crate::artifacts::Artifact)],
) -> Vec<aws_sdk_cloudwatch::types::MetricDataQuery> {
    let mut queries = vec![metric_query(
        "age",
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        ("QueueName", &stack.queue_name()),
        "Maximum",
        300,
    )];
    for (i, (name, _)) in functions.iter().enumerate() {
        let period = i32::try_from(WINDOW.as_secs()).unwrap_or(3600);
        queries.push(metric_query(
            &format!("inv{i}"),
            "AWS/Lambda",
            "Invocations",
            ("FunctionName", name),
            "Sum",
            period,
        ));
        queries.push(metric_query(
            &format!("err{i}"),
            "AWS/Lambda",
            "Errors",
            ("FunctionName", name),
            "Sum",
            period,
        ));
        queries.push(metric_query(
            &format!("p99{i}"),
            "AWS/Lambda",
            "Duration",
            ("FunctionName", name),
            "p99",
            period,
        ));
    }
    queries
}

/// Each of the stack's alarms as `DescribeAlarms` answered (`MISSING`:
/// not deployed).
fn alarm_statuses(
    alarm_names: &[String],
    pages: &[aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput],
) -> Vec<AlarmStatus> {
    alarm_names
        .iter()
        .map(|name| {
            let found = pages
                .iter()
                .flat_map(|page| page.metric_alarms())
                .find(|a| a.alarm_name() == Some(name.as_str()));
            AlarmStatus {
                name: name.clone(),
                state: found
                    .and_then(|a| a.state_value())
                    .map_or("MISSING", |s| s.as_str())
                    .to_owned(),
                reason: found
                    .and_then(|a| a.state_reason())
                    .unwrap_or("not deployed")
                    .to_owned(),
            }
        })
        .collect()
}

/// What needs a person: every alarm in ALARM, and dead-lettered prompts.
fn attention(alarms: &[AlarmStatus], dead_lettered: u64, dlq_name: &str) -> Vec<String> {
    let mut attention: Vec<String> = alarms
        .iter()
        .filter(|a| a.state == "ALARM")
        .map(|a| format!("alarm {} is in ALARM: {}", a.name, a.reason))
        .collect();
    if dead_lettered > 0 {
        attention.push(format!(
            "{dead_lettered} prompt(s) in the dead-letter queue {dlq_name} (`provisioner redrive` sends them back)"
        ));
    }
    attention
}

pub async fn read(session: &Session, artifacts: &Artifacts) -> Result<Status> {
    let aws = &session.aws;
    let stack = &session.stack;
    let alarm_names: Vec<String> = session
        .kinds
        .iter()
        .filter(|r| r.kind() == "cloudwatch-alarm")
        .map(|r| r.name().to_owned())
        .collect();
    let functions = [
        (stack.worker_name(), &artifacts.worker),
        (stack.http_name(), &artifacts.http),
    ];
    let queries = queries(stack, &functions);
    let now = SystemTime::now();
    let since = now.checked_sub(WINDOW).unwrap_or(now);
    let (queue_name, dlq_name) = (stack.queue_name(), stack.dlq_name());
    let (queue, dlq, alarms, metrics, configs) = tokio::join!(
        queue_state(aws, &queue_name),
        queue_state(aws, &dlq_name),
        // Every page of each (DescribeAlarms pages at 50, GetMetricData by
        // data points).
        aws.cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(alarm_names.clone()))
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>(),
        aws.cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(DateTime::from(since))
            .end_time(DateTime::from(now))
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>(),
        futures::future::join_all(
            functions
                .iter()
                .map(|(name, _)| { aws.lambda.get_function().function_name(name).send() })
        ),
    );
    let (queue, dlq) = (
        queue.context("reading the prompts queue (is the stack deployed?)")?,
        dlq.context("reading the dead-letter queue")?,
    );
    let alarms = alarms.map_err(|e| anyhow!(aws_error("cloudwatch:DescribeAlarms", e)))?;
    let metrics = metrics.map_err(|e| anyhow!(aws_error("cloudwatch:GetMetricData", e)))?;
    let value = |id: &str| metric_value(&metrics, id);
    let alarms = alarm_statuses(&alarm_names, &alarms);
    let mut function_status = Vec::new();
    for (i, ((name, artifact), config)) in functions.iter().zip(configs).enumerate() {
        let function =
            config.map_err(|e| anyhow!(aws_error(&format!("lambda:GetFunction {name}"), e)))?;
        function_status.push(function_status_of(i, name, artifact, &function, &metrics));
    }
    let attention = attention(&alarms, dlq.visible + dlq.in_flight, &dlq_name);
    Ok(Status {
        stack: stack.name.clone(),
        queue: QueueStatus {
            name: queue_name,
            visible: queue.visible,
            in_flight: queue.in_flight,
            oldest_age_seconds: value("age"),
        },
        dead_letter_queue: QueueStatus {
            name: dlq_name,
            visible: dlq.visible,
            in_flight: dlq.in_flight,
            oldest_age_seconds: None,
        },
        alarms,
        functions: function_status,
        healthy: attention.is_empty(),
        attention,
    })
}

/// The latest value of the metric query `id`, when it has one.
fn metric_value(metrics: &[GetMetricDataOutput], id: &str) -> Option<f64> {
    metrics
        .iter()
        .flat_map(|page| page.metric_data_results())
        .find(|r| r.id() == Some(id) && !r.values().is_empty())
        .and_then(|r| r.values().first().copied())
}

/// The `i`th function's status: its metrics (queries `inv{i}`, `err{i}`,
/// `p99{i}`) and whether its deployed code is the local zip.
fn function_status_of(
    i: usize,
    name: &str,
    artifact: &Artifact,
    function: &GetFunctionOutput,
    metrics: &[GetMetricDataOutput],
) -> FunctionStatus {
    let value = |id: String| metric_value(metrics, &id);
    let deployed = function
        .configuration()
        .and_then(|c| c.code_sha256())
        .unwrap_or_default();
    FunctionStatus {
        name: name.to_owned(),
        invocations: value(format!("inv{i}")).unwrap_or(0.0),
        errors: value(format!("err{i}")).unwrap_or(0.0),
        p99_duration_ms: value(format!("p99{i}")),
        deployed_code: short(deployed),
        code_is_local_zip: local_sha(artifact).map(|local| local == deployed),
    }
}

fn local_sha(artifact: &Artifact) -> Option<&str> {
    artifact.code_sha256.as_deref().ok()
}

pub fn text(s: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = format!("Stack {}\n", s.stack);
    let age = s
        .queue
        .oldest_age_seconds
        .map(|a| format!(", oldest {a:.0} s"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  queue {}: {} visible, {} in flight{age}",
        s.queue.name, s.queue.visible, s.queue.in_flight
    );
    let _ = writeln!(
        out,
        "  dead-letter queue {}: {} visible, {} in flight",
        s.dead_letter_queue.name, s.dead_letter_queue.visible, s.dead_letter_queue.in_flight
    );
    let _ = writeln!(out, "  alarms:");
    let width = s.alarms.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &s.alarms {
        let _ = writeln!(out, "    {:<17} {:<width$}  {}", a.state, a.name, a.reason);
    }
    let _ = writeln!(out, "  functions (last hour):");
    for f in &s.functions {
        let p99 = f
            .p99_duration_ms
            .map(|p| format!("p99 {p:.0} ms"))
            .unwrap_or_else(|| "p99 -".into());
        let code = match f.code_is_local_zip {
            Some(true) => "the local zip's",
            Some(false) => "not the local zip's",
            None => "no local zip to compare",
        };
        let _ = writeln!(
            out,
            "    {}: {:.0} invocations, {:.0} errors, {p99}; code {} ({code})",
            f.name, f.invocations, f.errors, f.deployed_code
        );
    }
    if s.healthy {
        let _ = writeln!(out, "\nHealthy.");
    } else {
        let _ = writeln!(out, "\nNeeds attention (exit {EXIT_UNHEALTHY}):");
        for a in &s.attention {
            let _ = writeln!(out, "  - {a}");
        }
    }
    out
}
