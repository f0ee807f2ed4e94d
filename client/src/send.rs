//! Putting prompts on the queue: one with `SendMessage`, many with
//! `SendMessageBatch`, ten at a time (SQS's limit), ids in input order.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::prompts::Prompt;

/// SQS's limit on entries per `SendMessageBatch`.
pub const BATCH: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("sending to {url}: {detail}")]
    Sqs { url: String, detail: String },
}

fn sqs_error(url: &str, e: impl std::error::Error) -> SendError {
    SendError::Sqs {
        url: url.to_owned(),
        detail: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
    }
}

/// Sends one prompt; returns the message id.
pub async fn one(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    prompt: &Prompt,
) -> Result<String, SendError> {
    let sent = sqs
        .send_message()
        .queue_url(url)
        .message_body(prompt.as_str())
        .send()
        .await
        .map_err(|e| sqs_error(url, e))?;
    Ok(sent.message_id.unwrap_or_default())
}

/// What happened to one prompt of a batch: its message id, or SQS's reason.
pub type Outcome = Result<String, String>;

/// Sends `prompts` ten at a time; one outcome per prompt, in order. A batch
/// call that fails as a whole is an error; single entries SQS refuses are
/// outcomes, so the others still count.
pub async fn many(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    prompts: &[Prompt],
) -> Result<Vec<Outcome>, SendError> {
    let mut outcomes = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(p.as_str())
                    .build()
                    .map_err(|e| sqs_error(url, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_error(url, e))?;
        let mut by_id: Vec<Outcome> =
            vec![Err("SQS did not answer for this entry".into()); chunk.len()];
        for ok in out.successful() {
            if let Ok(i) = ok.id().parse::<usize>()
                && i < by_id.len()
            {
                by_id[i] = Ok(ok.message_id().to_owned());
            }
        }
        for failed in out.failed() {
            if let Ok(i) = failed.id().parse::<usize>()
                && i < by_id.len()
            {
                by_id[i] = Err(format!(
                    "{}: {}",
                    failed.code(),
                    failed.message().unwrap_or("no message")
                ));
            }
        }
        outcomes.extend(by_id);
    }
    Ok(outcomes)
}
