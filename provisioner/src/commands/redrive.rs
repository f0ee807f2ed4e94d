//! `provisioner redrive --stack F [--max-per-second N] [--yes]`: sends the
//! dead-lettered prompts back to the prompts queue (once the reason they
//! failed is fixed), with SQS's own message move task (`StartMessageMoveTask`,
//! from the DLQ to the prompts queue), printing its progress from
//! `ListMessageMoveTasks` until it completes or fails. Ctrl-C cancels the task
//! (`CancelMessageMoveTask`): what was moved stays moved, the rest stays in the
//! DLQ, nothing is lost either way. A prompt the worker gave up carries its
//! request id and the redrive token written in that request's status
//! (`couch-request-id`, `couch-redrive-token`): redriven, it is made under
//! the same id, so `GET /images/{id}` answers it. One SQS moved by itself
//! (an invocation that crashed on every receive) has no such attributes and
//! is made under its new message id.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use aws_sdk_sqs::types::QueueAttributeName;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{Session, confirm};
use crate::aws::policies::Statement;
use crate::aws::{Aws, aws_error};

/// What `redrive` needs (the apply and preview roles): the move task's
/// actions on the dead-letter queue, and what SQS does on the caller's behalf
/// while it moves: receive and delete on the source, send on the destination
/// ("Configuring queue permissions for dead-letter queue redrive",
/// AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html).
pub fn statements(dlq_arn: &str, queue_arn: &str) -> Vec<Statement> {
    vec![
        Statement::allow(
            "RedriveFromTheDlq",
            &[
                "sqs:CancelMessageMoveTask",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ListMessageMoveTasks",
                "sqs:ReceiveMessage",
                "sqs:StartMessageMoveTask",
            ],
            vec![dlq_arn.into()],
        ),
        Statement::allow(
            "RedriveToThePrompts",
            &["sqs:GetQueueAttributes", "sqs:SendMessage"],
            vec![queue_arn.into()],
        ),
    ]
}

/// Send the dead-lettered prompts back to the prompts queue (SQS's message
/// move task), with progress; Ctrl-C cancels what is not moved yet.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// At most this many messages a second (1..500; default: SQS chooses).
    #[arg(long, value_name = "N")]
    pub max_per_second: Option<u32>,
    /// Do not ask for confirmation (also: CI=true).
    #[arg(long)]
    pub yes: bool,
}

/// How often the task's progress is read.
const POLL: Duration = Duration::from_secs(1);

/// A queue's URL, ARN and visible messages.
pub struct QueueState {
    pub url: String,
    pub arn: String,
    pub visible: u64,
    pub in_flight: u64,
}

/// Reads a queue by name (`GetQueueUrl`, `GetQueueAttributes`).
pub async fn queue_state(aws: &Aws, name: &str) -> Result<QueueState> {
    let url = aws
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| anyhow!(aws_error(&format!("sqs:GetQueueUrl {name}"), e)))?
        .queue_url
        .ok_or_else(|| anyhow!("sqs:GetQueueUrl {name}: no URL"))?;
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| anyhow!(aws_error(&format!("sqs:GetQueueAttributes {name}"), e)))?;
    let attr = |a: QueueAttributeName| attrs.attributes().and_then(|m| m.get(&a)).cloned();
    let number = |a: QueueAttributeName| {
        attr(a)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_default()
    };
    Ok(QueueState {
        arn: attr(QueueAttributeName::QueueArn)
            .ok_or_else(|| anyhow!("sqs:GetQueueAttributes {name}: no QueueArn"))?,
        visible: number(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        url,
    })
}

/// The most recent move task of `source`: (status, moved, to move, failure).
async fn latest_task(
    aws: &Aws,
    source: &str,
) -> Result<Option<(String, i64, i64, Option<String>)>> {
    let out = aws
        .sqs
        .list_message_move_tasks()
        .source_arn(source)
        .max_results(1)
        .send()
        .await
        .map_err(|e| anyhow!(aws_error("sqs:ListMessageMoveTasks", e)))?;
    Ok(out.results().first().map(|t| {
        (
            t.status().unwrap_or_default().to_owned(),
            t.approximate_number_of_messages_moved(),
            t.approximate_number_of_messages_to_move()
                .unwrap_or_default(),
            t.failure_reason().map(str::to_owned),
        )
    }))
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    if let Some(n) = args.max_per_second
        && !(1..=500).contains(&n)
    {
        return Err(anyhow!(
            "--max-per-second {n}: SQS moves 1 to 500 messages a second"
        ));
    }
    let session = Session::open(path, inputs).await?;
    redrive(&session, args).await
}

/// Follows move task `handle` from `dlq_arn` until it ends, printing its
/// progress; Ctrl-C cancels it (what was moved stays moved).
async fn follow(
    session: &Session,
    handle: &str,
    dlq_arn: &str,
    interrupts: &mut Signal,
) -> Result<ExitCode> {
    let aws = &session.aws;
    let stack = &session.stack;
    let mut cancelled = false;
    let mut last = -1;
    loop {
        // One listener for the whole run: a Ctrl-C that lands while the
        // task's state is being read is kept for the next turn (a fresh
        // `ctrl_c()` each turn missed it, and the move ran to its end).
        let interrupted = tokio::select! {
            _ = tokio::time::sleep(POLL) => false,
            _ = interrupts.recv(), if !cancelled => true,
        };
        if interrupted {
            cancelled = true;
            println!("Interrupted: cancelling the move task (what was moved stays moved)...");
            aws.sqs
                .cancel_message_move_task()
                .task_handle(handle)
                .send()
                .await
                .map_err(|e| anyhow!(aws_error("sqs:CancelMessageMoveTask", e)))?;
        }
        let Some((status, moved, to_move, failure)) = latest_task(aws, dlq_arn).await? else {
            return Err(anyhow!(
                "the move task disappeared from ListMessageMoveTasks"
            ));
        };
        if moved != last {
            println!("  {status}: {moved} of {to_move} moved");
            last = moved;
        }
        match status.as_str() {
            "COMPLETED" => {
                println!(
                    "Redrive complete: {moved} prompt(s) are back on {}.",
                    stack.queue_name()
                );
                return Ok(ExitCode::SUCCESS);
            }
            "CANCELLED" => {
                println!(
                    "Redrive cancelled after {moved} of {to_move} prompt(s); the rest are still in the dead-letter queue."
                );
                return Ok(ExitCode::from(130));
            }
            "FAILED" => {
                return Err(anyhow!(
                    "the move task failed after {moved} of {to_move}: {}",
                    failure.unwrap_or_else(|| "no reason given".into())
                ));
            }
            _ => {}
        }
    }
}

/// The verb on an open session (tests drive it directly).
pub async fn redrive(session: &Session, args: &Args) -> Result<ExitCode> {
    let aws = &session.aws;
    let stack = &session.stack;
    let (dlq_name, queue_name) = (stack.dlq_name(), stack.queue_name());
    let (dlq, queue) = tokio::try_join!(queue_state(aws, &dlq_name), queue_state(aws, &queue_name))
        .context("reading the queues (is the stack deployed?)")?;
    if let Some((status, ..)) = latest_task(aws, &dlq.arn).await?
        && status == "RUNNING"
    {
        return Err(anyhow!(
            "a message move task from {} is already running; wait for it or cancel it",
            stack.dlq_name()
        ));
    }
    if dlq.visible == 0 {
        println!(
            "Nothing to redrive: the dead-letter queue {} is empty ({} in flight).",
            stack.dlq_name(),
            dlq.in_flight
        );
        return Ok(ExitCode::SUCCESS);
    }
    let question = format!(
        "Move {} prompt(s) from {} back to {}? Each becomes an image request again.",
        dlq.visible,
        stack.dlq_name(),
        stack.queue_name()
    );
    if !confirm(&question, args.yes)? {
        println!("Cancelled: nothing was moved.");
        return Ok(ExitCode::from(1));
    }
    // Listening from here on (Ctrl-C at the question above still ends the
    // process): a Ctrl-C while the task starts cancels it at the first turn.
    let mut interrupts =
        signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?;
    let mut start = aws
        .sqs
        .start_message_move_task()
        .source_arn(&dlq.arn)
        .destination_arn(&queue.arn);
    if let Some(n) = args.max_per_second {
        start = start.max_number_of_messages_per_second(i32::try_from(n).unwrap_or(500));
    }
    let handle = start
        .send()
        .await
        .map_err(|e| anyhow!(aws_error("sqs:StartMessageMoveTask", e)))?
        .task_handle
        .unwrap_or_default();
    println!(
        "Moving {} prompt(s) from {} to {}...",
        dlq.visible,
        stack.dlq_name(),
        stack.queue_name()
    );
    follow(session, &handle, &dlq.arn, &mut interrupts).await
}
