//! The queue worker: each SQS record's body is a prompt → image in S3.
//!
//! Records of a batch run concurrently (bounded). The image id is the SQS
//! message id, so a redelivered message writes the same key and, if the image
//! is already there, does not call the model again. The answer lists exactly
//! the records that failed (`ReportBatchItemFailures`): SQS retries only those
//! and, after `maxReceiveCount` attempts, moves them to the dead-letter queue.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use futures::stream::{self, StreamExt};
use imagegen::{GenerateError, Generator, ImageModel, ImageStore, Prompt};
use serde_json::Value;

/// Default bound on records processed at once (a batch is at most 10 without a window).
pub const DEFAULT_CONCURRENCY: usize = 10;

/// The prompt of a message body: plain text, or JSON `{"prompt": "..."}`.
pub fn prompt_of(body: &str) -> Result<Prompt, GenerateError> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{')
        && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(trimmed)
        && let Some(Value::String(p)) = obj.get("prompt")
    {
        return Ok(Prompt::parse(p)?);
    }
    Ok(Prompt::parse(body)?)
}

/// Outcome of one record.
#[derive(Debug)]
pub enum Outcome {
    Stored { key: String, reused: bool },
    Failed(GenerateError),
}

async fn process<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    msg: &SqsMessage,
) -> Outcome {
    let id = msg.message_id.clone().unwrap_or_default();
    let body = msg.body.as_deref().unwrap_or_default();
    let attempt = msg
        .attributes
        .get("ApproximateReceiveCount")
        .cloned()
        .unwrap_or_default();
    let result = match prompt_of(body) {
        Ok(prompt) => generator
            .generate_once(&id, &prompt)
            .await
            .map(|s| (s, prompt.chars())),
        Err(e) => Err(e),
    };
    match result {
        Ok((stored, prompt_chars)) => {
            tracing::info!(
                message_id = %id,
                prompt_chars,
                key = %stored.key,
                reused = stored.reused,
                model_ms = stored.model_latency.map(|d| d.as_millis() as u64),
                attempt = %attempt,
                outcome = "stored",
                "record done"
            );
            Outcome::Stored {
                key: stored.key,
                reused: stored.reused,
            }
        }
        Err(e) => {
            tracing::warn!(
                message_id = %id,
                body_bytes = body.len(),
                attempt = %attempt,
                retryable = e.retryable(),
                error = %e,
                outcome = "failed",
                "record failed; SQS will retry it, then move it to the dead-letter queue"
            );
            Outcome::Failed(e)
        }
    }
}

/// Processes a batch, at most `concurrency` records at once; returns every
/// record's outcome in input order.
pub async fn process_batch<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    records: &[SqsMessage],
    concurrency: usize,
) -> Vec<Outcome> {
    stream::iter(records)
        .map(|msg| process(generator, msg))
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// The batch response: exactly the records that failed.
pub fn batch_response(records: &[SqsMessage], outcomes: &[Outcome]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = records
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
        .map(|(m, _)| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = m.message_id.clone().unwrap_or_default();
            f
        })
        .collect();
    response
}
