//! The queue worker: each SQS record's body is a prompt → image in S3.
//!
//! Records of a batch run concurrently (bounded). The image id is the SQS
//! message id, so a redelivered message writes the same key and, if the image
//! is already there, does not call the model again. The answer lists exactly
//! the records that failed (`ReportBatchItemFailures`): SQS retries only those
//! and, after `maxReceiveCount` attempts, moves them to the dead-letter queue.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use futures::stream::{self, StreamExt};
use std::time::Instant;

use imagegen::status::{OWNER, Owner};
use imagegen::telemetry::{self, ImageEvent};
use imagegen::{GenerateError, Generator, ImageModel, ImageStore, Prompt, PromptRule};
use serde_json::{Value, json};

/// Default bound on records processed at once (a batch is at most 10 without a window).
pub const DEFAULT_CONCURRENCY: usize = 10;

/// The prompt of a message body: plain text, or JSON `{"prompt": "..."}`,
/// checked with the model's rule (a prompt over its limit fails without a
/// model call, and so ends in the dead-letter queue after its receives).
pub fn prompt_of(body: &str, rule: PromptRule) -> Result<Prompt, GenerateError> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{')
        && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(trimmed)
        && let Some(Value::String(p)) = obj.get("prompt")
    {
        return Ok(Prompt::parse(p, rule)?);
    }
    Ok(Prompt::parse(body, rule)?)
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
    let started = Instant::now();
    let id = msg.message_id.clone().unwrap_or_default();
    let body = msg.body.as_deref().unwrap_or_default();
    let attempt = msg
        .attributes
        .get("ApproximateReceiveCount")
        .cloned()
        .unwrap_or_default();
    let result = match prompt_of(body, generator.model.prompt_rule()) {
        Ok(prompt) => generator
            .generate_once(&id, &prompt)
            .await
            .map(|s| (s, prompt.chars())),
        Err(e) => Err(e),
    };
    let key = generator.key_for(&id);
    let mut extra = serde_json::Map::new();
    extra.insert("attempt".into(), attempt.into());
    let (outcome, line) = match result {
        Ok((stored, prompt_chars)) => {
            extra.insert("prompt_chars".into(), prompt_chars.into());
            let line = if stored.reused {
                telemetry::Outcome::Reused
            } else {
                telemetry::Outcome::Stored {
                    model_latency: stored.model_latency,
                }
            };
            (
                Outcome::Stored {
                    key: stored.key,
                    reused: stored.reused,
                },
                line,
            )
        }
        Err(e) => {
            extra.insert("body_bytes".into(), body.len().into());
            extra.insert("retryable".into(), e.retryable().into());
            let line = telemetry::Outcome::Failed {
                reason: telemetry::reason(&e),
                // SQS retries it, then moves it to the dead-letter queue.
                error: e.to_string(),
            };
            (Outcome::Failed(e), line)
        }
    };
    ImageEvent {
        id_key: "message_id",
        id: &id,
        image_key: &key,
        model: generator.model.model_id(),
        outcome: line,
        duration: started.elapsed(),
        extra,
    }
    .emit();
    outcome
}

/// Processes a batch, at most `concurrency` records at once; returns every
/// record's outcome in input order.
pub async fn process_batch<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    records: &[SqsMessage],
    concurrency: usize,
) -> Vec<Outcome> {
    // An iterator of futures (not `Stream::map` with a closure): the batch
    // future stays `Send` for callers that spawn it.
    let futures: Vec<_> = records.iter().map(|msg| process(generator, msg)).collect();
    stream::iter(futures)
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// What a user reads for a prompt given up on (no internals: the error's
/// detail is in the log line).
pub fn failure_reason(e: &GenerateError) -> String {
    use imagegen::status;
    match e {
        GenerateError::ContentFiltered(_) => status::REASON_FILTERED.to_owned(),
        GenerateError::InvalidPrompt(p) => format!("{}{p}", status::REASON_PROMPT),
        _ => status::REASON_OURS.to_owned(),
    }
}

/// The request's owner the message carries (`POST /images` puts it beside
/// the prompt: `{"prompt", "owner"}`); `None` for a plain-text body or one
/// without an owner.
pub fn owner_of(body: &str) -> Option<Owner> {
    let trimmed = body.trim_start();
    if !trimmed.starts_with('{') {
        return None;
    }
    let v: Value = serde_json::from_str(trimmed).ok()?;
    Owner::decode(v.get(OWNER)?.as_str()?)
}

/// The `failed` status to write at `key` (a request's status object) over
/// what is there, without losing its owner: read, modify, write. The owner is the existing status
/// object's (`POST /images` wrote it from API Gateway's authorizer), else the
/// one the message carries (for a status never written, or written after
/// this); an owner only narrows who reads the status. `Err` when the status
/// cannot be read: nothing is written then, so no owner is erased.
async fn failed_status<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    key: &str,
    msg: &SqsMessage,
    reason: String,
) -> Result<Value, GenerateError> {
    let mut status = match generator.store.get_json(key).await? {
        Some(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(v @ Value::Object(_)) => v,
            // Only the functions write statuses; one that is no JSON object
            // keeps an owner no one can read, so no one reads it.
            _ => json!({ OWNER: false }),
        },
        None => json!({}),
    };
    if status[OWNER].is_null()
        && let Some(owner) = owner_of(msg.body.as_deref().unwrap_or_default())
    {
        status[OWNER] = json!(owner.encode());
    }
    status["status"] = json!(imagegen::status::FAILED);
    status["reason"] = json!(reason);
    Ok(status)
}

/// For every record that failed on its last allowed receive (its
/// `ApproximateReceiveCount` has reached the queue's `maxReceiveCount`, so
/// SQS moves it to the dead-letter queue next), writes its `failed` status
/// with a reason a user can read (`GET /images/{id}` answers it), keeping the
/// request's owner ([`owner_of`], the existing status). Returns how many were
/// written; a read or write that fails is logged, not fatal.
pub async fn record_given_up<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    records: &[SqsMessage],
    outcomes: &[Outcome],
    max_receive_count: u32,
) -> usize {
    let mut written = 0;
    for (msg, outcome) in records.iter().zip(outcomes) {
        let Outcome::Failed(e) = outcome else {
            continue;
        };
        let receives: u32 = msg
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if receives < max_receive_count {
            continue;
        }
        let id = msg.message_id.clone().unwrap_or_default();
        let key = imagegen::status::status_key(&generator.prefix, &id);
        let body = match failed_status(generator, &key, msg, failure_reason(e)).await {
            Ok(b) => b,
            Err(err) => {
                tracing::error!(message_id = id, error = %err, "the status was not read: failed not recorded");
                continue;
            }
        };
        match generator
            .store
            .put_json(&key, body.to_string().into_bytes())
            .await
        {
            Ok(()) => {
                written += 1;
                tracing::warn!(
                    message_id = id,
                    receives,
                    "given up: status failed recorded"
                );
            }
            Err(err) => {
                tracing::error!(message_id = id, error = %err, "the failed status was not written")
            }
        }
    }
    written
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

#[cfg(test)]
mod tests {
    use super::*;
    use imagegen::fakes::{FakeModel, FakeStore};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    fn msg(id: &str, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m
    }

    fn generator(delay_ms: u64) -> Generator<FakeModel, FakeStore> {
        Generator::new(
            FakeModel::new(Duration::from_millis(delay_ms)),
            FakeStore::default(),
            "11",
        )
    }

    #[test]
    fn bodies_are_plain_text_or_json() {
        let rule = PromptRule::TITAN;
        assert_eq!(prompt_of("a cat", rule).unwrap().as_str(), "a cat");
        assert_eq!(
            prompt_of(r#"{"prompt": " a dog "}"#, rule)
                .unwrap()
                .as_str(),
            "a dog"
        );
        // JSON without a prompt is taken as text, as the seed's client would send it.
        assert_eq!(
            prompt_of(r#"{"x": 1}"#, rule).unwrap().as_str(),
            r#"{"x": 1}"#
        );
        assert!(prompt_of("", rule).is_err());
    }

    #[tokio::test]
    async fn a_prompt_over_the_models_limit_fails_without_a_model_call() {
        let g = generator(0);
        let long = "x".repeat(PromptRule::TITAN.max_chars + 1);
        let records = [msg("a", &long), msg("b", "short")];
        let outcomes = process_batch(&g, &records, 10).await;
        assert!(matches!(
            &outcomes[0],
            Outcome::Failed(GenerateError::InvalidPrompt(_))
        ));
        assert_eq!(g.model.calls.load(Ordering::SeqCst), 1);
        let r = batch_response(&records, &outcomes);
        assert_eq!(r.batch_item_failures.len(), 1);
    }

    #[tokio::test]
    async fn failures_are_exactly_the_failed_records() {
        let g = generator(0);
        let records = [
            msg("a", "fine"),
            msg("b", "FILTER"),
            msg("c", ""),
            msg("d", "BROKEN"),
            msg("e", "also fine"),
        ];
        let outcomes = process_batch(&g, &records, 10).await;
        let r = batch_response(&records, &outcomes);
        let ids: Vec<_> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["b", "c", "d"]);
        assert_eq!(g.store.keys(), ["11/images/a.png", "11/images/e.png"]);
    }

    #[tokio::test]
    async fn a_storage_outage_fails_every_record() {
        let g = Generator::new(FakeModel::new(Duration::ZERO), FakeStore::failing(), "11");
        let records = [msg("a", "x"), msg("b", "y")];
        let r = batch_response(&records, &process_batch(&g, &records, 10).await);
        assert_eq!(r.batch_item_failures.len(), 2);
    }

    #[tokio::test]
    async fn redelivered_messages_do_not_call_the_model_again() {
        let g = generator(0);
        let records = [msg("a", "x")];
        process_batch(&g, &records, 10).await;
        let outcomes = process_batch(&g, &records, 10).await;
        assert!(matches!(outcomes[0], Outcome::Stored { reused: true, .. }));
        assert_eq!(g.model.calls.load(Ordering::SeqCst), 1);
    }

    fn received(id: &str, body: &str, receives: u32) -> SqsMessage {
        let mut m = msg(id, body);
        m.attributes
            .insert("ApproximateReceiveCount".into(), receives.to_string());
        m
    }

    #[tokio::test]
    async fn only_the_last_allowed_receive_records_a_failure_with_a_readable_reason() {
        let g = generator(0);
        let records = [
            received("6a96454d-ef25-4788-a79c-000000000001", "FILTER me", 2),
            received("6a96454d-ef25-4788-a79c-000000000002", "FILTER me", 3),
            received("6a96454d-ef25-4788-a79c-000000000003", "BROKEN", 3),
            received("6a96454d-ef25-4788-a79c-000000000004", "a dog", 3),
        ];
        let outcomes = process_batch(&g, &records, 10).await;
        assert_eq!(record_given_up(&g, &records, &outcomes, 3).await, 2);
        let status = |n: u32| {
            g.store
                .stored_json(&imagegen::status::status_key(
                    "11",
                    &format!("6a96454d-ef25-4788-a79c-{n:012x}"),
                ))
                .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
        };
        assert_eq!(status(1), None, "a receive is left");
        assert_eq!(
            status(2).unwrap(),
            serde_json::json!({"status": "failed", "reason": imagegen::status::REASON_FILTERED})
        );
        let ours = status(3).unwrap();
        assert_eq!(ours["reason"], imagegen::status::REASON_OURS);
        assert!(!ours.to_string().contains("secret"), "no internals: {ours}");
        assert_eq!(status(4), None, "stored, not failed");
    }

    fn status_of(g: &Generator<FakeModel, FakeStore>, id: &str) -> Option<Value> {
        g.store
            .stored_json(&imagegen::status::status_key("11", id))
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[tokio::test]
    async fn the_failed_status_keeps_the_requests_owner() {
        let g = generator(0);
        let ids = [
            "6a96454d-ef25-4788-a79c-00000000000a",
            "6a96454d-ef25-4788-a79c-00000000000b",
            "6a96454d-ef25-4788-a79c-00000000000c",
            "6a96454d-ef25-4788-a79c-00000000000d",
        ];
        // a: queued by its owner (POST /images wrote the status); the message
        // body is plain text, so the owner can only come from the status.
        g.store
            .put_json(
                &imagegen::status::status_key("11", ids[0]),
                br#"{"status": "queued", "owner": "jwt:auth0|ana"}"#.to_vec(),
            )
            .await
            .unwrap();
        // d: the status names an owner; a message naming another changes nothing.
        g.store
            .put_json(
                &imagegen::status::status_key("11", ids[3]),
                br#"{"status": "queued", "owner": "iam:arn:aws:iam::1:user/ana"}"#.to_vec(),
            )
            .await
            .unwrap();
        let records = [
            received(ids[0], "FILTER me", 3),
            // b: no status written (yet): the owner the message carries.
            received(
                ids[1],
                r#"{"prompt": "FILTER me", "owner": "iam:arn:aws:iam::1:user/bob"}"#,
                3,
            ),
            // c: submitted without an authorizer: no owner anywhere.
            received(ids[2], r#"{"prompt": "BROKEN"}"#, 3),
            received(
                ids[3],
                r#"{"prompt": "FILTER me", "owner": "jwt:mallory"}"#,
                3,
            ),
        ];
        let outcomes = process_batch(&g, &records, 10).await;
        assert_eq!(record_given_up(&g, &records, &outcomes, 3).await, 4);
        assert_eq!(
            status_of(&g, ids[0]).unwrap(),
            json!({"status": "failed", "reason": imagegen::status::REASON_FILTERED, "owner": "jwt:auth0|ana"})
        );
        assert_eq!(
            status_of(&g, ids[1]).unwrap()["owner"],
            "iam:arn:aws:iam::1:user/bob"
        );
        let c = status_of(&g, ids[2]).unwrap();
        assert_eq!(
            c,
            json!({"status": "failed", "reason": imagegen::status::REASON_OURS})
        );
        assert_eq!(
            status_of(&g, ids[3]).unwrap()["owner"],
            "iam:arn:aws:iam::1:user/ana"
        );
    }

    #[test]
    fn the_owner_a_message_carries() {
        assert_eq!(
            owner_of(r#" {"prompt": "a", "owner": "jwt:ana"}"#),
            Some(Owner::Jwt("ana".into()))
        );
        for none in [
            "a cat",
            r#"{"prompt": "a"}"#,
            r#"{"prompt": "a", "owner": 7}"#,
            r#"{"prompt": "a", "owner": "ana"}"#,
            "{not json",
        ] {
            assert_eq!(owner_of(none), None, "{none}");
        }
    }

    #[tokio::test]
    async fn records_run_concurrently_within_the_bound() {
        let g = generator(100);
        let records: Vec<_> = (0..10).map(|i| msg(&format!("m{i}"), "x")).collect();
        process_batch(&g, &records, 10).await;
        assert_eq!(g.model.max_in_flight.load(Ordering::SeqCst), 10);
        // Timing is the benchmark's business (benches/batch.rs); this checks overlap.

        let g = generator(10);
        process_batch(&g, &records, 3).await;
        assert_eq!(g.model.max_in_flight.load(Ordering::SeqCst), 3);
    }
}
