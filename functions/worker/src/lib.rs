//! The queue worker: each SQS record's body is a prompt → image in S3.
//!
//! Records of a batch run concurrently, as many model calls at once as the
//! instance's [`pace::Limiter`] allows (the stack's share of the model's
//! capacity, cut on throttles). The image id is the request id (the SQS
//! message id, or the `couch-request-id` attribute of a message the worker
//! dead-lettered and `redrive` sent back, honoured only with the redrive
//! token written in that request's status: [`request_id`]), so a
//! redelivered message writes
//! the same key and, if the image is already there, does not call the model
//! again. What becomes of each record ([`Outcome`]):
//! - stored: deleted by the trigger;
//! - **throttled** (the model or S3 asked for fewer requests): retried in the
//!   invocation with jittered back-off while its time allows, then
//!   **returned** to the queue with a visibility delay that grows per
//!   receive (`ChangeMessageVisibility`) and reported as a batch item
//!   failure. It is never dead-lettered for being throttled: the queue's
//!   own `maxReceiveCount` is `max_receive_count` + [`THROTTLED_RECEIVES`],
//!   a safety net for invocations that crash, and the worker gives a prompt
//!   up only after that many throttled receives (about ten hours of them);
//! - **poison** (the prompt is invalid, or refused by the content filter):
//!   moved to the dead-letter queue by the worker at once, with its reason,
//!   and its `failed` status written;
//! - another failure (the model or S3 failed): tried twice in the
//!   invocation, then SQS delivers it again after the visibility timeout;
//!   the failures are counted in the request's status (`failures`: SQS's
//!   receive count also counts throttled returns), and at
//!   `max_receive_count` of them the worker moves it to the dead-letter
//!   queue itself, with its reason.
//!
//! A model call never outlives the invocation (it gets the time left but
//! [`RESERVE`]); the batch's moves and returns run at once.

pub mod pace;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use futures::stream::{self, StreamExt};

use imagegen::status::{OWNER, Owner};
use imagegen::telemetry::{self, ImageEvent};
use imagegen::{ErrorKind, GenerateError, Generator, ImageModel, ImageStore, Prompt, PromptRule};
use serde_json::{Value, json};

pub use couch_contract::queues::{
    FAILURES, REDRIVE_TOKEN, REDRIVE_TOKEN_ATTRIBUTE, REQUEST_ID_ATTRIBUTE, THROTTLED_RECEIVES,
};
use pace::{Backoff, Limiter, return_delay};

/// Default bound on model calls at once per instance (a batch is at most 10
/// without a window), when the stack states no model capacity.
pub const DEFAULT_CONCURRENCY: usize = 10;

/// Time kept at the end of an invocation for the batch's own SQS calls
/// (visibility changes, dead-letter sends) and the answer.
pub const RESERVE: Duration = Duration::from_secs(2);

/// Attempts of a failure other than throttling within one invocation.
const UPSTREAM_TRIES: u32 = 2;

/// The prompt of a message body: plain text, or JSON `{"prompt": "..."}`,
/// checked with the model's rule (a prompt over its limit fails without a
/// model call, and is dead-lettered at once).
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

/// The request id a message claims (`couch-request-id`, well-formed) with
/// the token that proves it (`couch-redrive-token`): what a message the
/// worker dead-lettered carries, so a redriven prompt still answers
/// `GET /images/{id}`.
pub fn claimed_id(msg: &SqsMessage) -> Option<(String, String)> {
    let attr = |k: &str| {
        msg.message_attributes
            .get(k)
            .and_then(|a| a.string_value.as_deref())
    };
    let id = attr(REQUEST_ID_ATTRIBUTE).filter(|id| couch_contract::status::is_request_id(id))?;
    let token = attr(REDRIVE_TOKEN_ATTRIBUTE).filter(|t| !t.is_empty())?;
    Some((id.to_owned(), token.to_owned()))
}

/// The request a record is for: the id it claims when that request's
/// status is `failed` with the same redrive token (written only by the
/// worker, in a status object `GET` never answers it from and no client
/// role may read), else the message id. Anyone allowed to send to the
/// queue can set attributes; only the worker knows a token, so no sender
/// can make a picture under another's id.
pub async fn request_id<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    msg: &SqsMessage,
) -> String {
    let own = msg.message_id.clone().unwrap_or_default();
    let Some((id, token)) = claimed_id(msg) else {
        return own;
    };
    let key = imagegen::status::status_key(&generator.prefix, &id);
    match generator.store.get_json(&key).await {
        Ok(Some(bytes)) => {
            let status: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status["status"] == imagegen::status::FAILED
                && status[REDRIVE_TOKEN].as_str() == Some(token.as_str())
            {
                return id;
            }
            tracing::warn!(
                message_id = own,
                claimed = id,
                "a claimed request id without its token: the message's own id is used"
            );
            own
        }
        Ok(None) => own,
        Err(e) => {
            tracing::warn!(message_id = own, claimed = id, error = %e, "the claimed request's status was not read: the message's own id is used");
            own
        }
    }
}

/// How many times SQS has delivered the record (`ApproximateReceiveCount`).
pub fn receives(msg: &SqsMessage) -> u32 {
    msg.attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Outcome of one record.
#[derive(Debug)]
pub enum Outcome {
    Stored {
        key: String,
        reused: bool,
        model_latency: Option<Duration>,
    },
    /// Throttled, or out of the invocation's time before its turn: back to
    /// the queue, visible again after `delay`. Not a failure: the worker
    /// never dead-letters a record for it (see the crate's documentation).
    Returned {
        delay: Duration,
        /// Why: the last throttling error, or `None` when the record's turn
        /// did not come before the invocation's time ran out.
        throttled: Option<GenerateError>,
    },
    /// Failed where a retry may help, with receives left: SQS delivers it
    /// again after the queue's visibility timeout.
    Failed(GenerateError),
    /// Given up (poison, or failures on every allowed receive): the worker
    /// moves it to the dead-letter queue with its reason.
    DeadLettered(GenerateError),
}

impl Outcome {
    /// Whether the trigger must leave the record on the queue (a batch item failure).
    pub fn stays_on_the_queue(&self) -> bool {
        matches!(self, Outcome::Returned { .. } | Outcome::Failed(_))
    }
}

/// What one worker instance keeps between invocations: its limit on model
/// calls at once and its estimate of one call's duration.
#[derive(Debug)]
pub struct Pace {
    pub limiter: Limiter,
    /// A model call's duration, smoothed (an attempt starts only if the
    /// invocation has this much time left, plus [`RESERVE`]).
    estimate: Mutex<Duration>,
}

impl Pace {
    /// At most `concurrency` calls at once, all from the start (a stated
    /// capacity); a first call is assumed to take 5 s.
    pub fn new(concurrency: usize) -> Pace {
        Pace::with(Limiter::new(concurrency))
    }

    /// At most `concurrency` calls at once, found from throttles starting
    /// at one (no capacity stated).
    pub fn adaptive(concurrency: usize) -> Pace {
        Pace::with(Limiter::adaptive(concurrency))
    }

    fn with(limiter: Limiter) -> Pace {
        Pace {
            limiter,
            estimate: Mutex::new(Duration::from_secs(5)),
        }
    }

    pub fn estimate(&self) -> Duration {
        *self.estimate.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn observe(&self, took: Duration) {
        let mut e = self.estimate.lock().unwrap_or_else(|p| p.into_inner());
        // An exponentially weighted mean; 1/4 weight to the newest call.
        *e = (*e * 3 + took) / 4;
    }
}

/// The time an invocation has, from Lambda's deadline
/// (`Lambda-Runtime-Deadline-Ms`, milliseconds since the epoch) at `now_ms`.
/// A deadline not in the future is no real one (Lambda hands an event out
/// before its deadline; cargo lambda watch sends a fixed 600000, i.e. 1970:
/// crates/cargo-lambda-watch/src/runtime/functions_router.rs): then
/// `fallback`, the function's timeout (`WORKER_TIMEOUT_SECONDS`, which
/// `provisioner local` sets; else 30 s).
pub fn time_left(deadline_ms: u64, now_ms: u64, fallback: Duration) -> Duration {
    if deadline_ms <= now_ms {
        return fallback;
    }
    Duration::from_millis(deadline_ms - now_ms)
}

/// The rules of one batch.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Receives a prompt gets for failures other than throttling
    /// (`MAX_RECEIVE_COUNT`); `None`: SQS's redrive policy alone decides.
    pub max_receive_count: Option<u32>,
    /// When the invocation ends (Lambda's deadline).
    pub deadline: Instant,
}

impl Rules {
    /// For callers without a deadline (tests, benchmarks): an hour.
    pub fn unhurried(max_receive_count: Option<u32>) -> Rules {
        Rules {
            max_receive_count,
            deadline: Instant::now() + Duration::from_secs(3600),
        }
    }

    fn time_for(&self, pace: &Pace, wait: Duration) -> bool {
        Instant::now() + wait + pace.estimate() + RESERVE <= self.deadline
    }
}

/// One record: generate with back-off, until stored, given up or out of
/// time; a failure other than throttling is counted in the request's
/// status, and dead-lettered when the count reaches `max_receive_count`
/// (SQS's receive count would also count the throttled returns).
async fn attempt<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    pace: &Pace,
    rules: &Rules,
    job: Job<'_>,
    throttled_calls: &mut u32,
) -> Outcome {
    let Job { msg, id, .. } = job;
    let outcome = tries_of(generator, pace, rules, job, throttled_calls).await;
    let (Outcome::Failed(e), Some(max)) = (&outcome, rules.max_receive_count) else {
        return outcome;
    };
    let failures = match count_failure(generator, id, msg).await {
        Ok(n) => n,
        Err(err) => {
            // Not counted: SQS's receive count decides, as a fallback.
            tracing::warn!(request_id = id, error = %err, "the failure was not counted in the status");
            receives(msg)
        }
    };
    if failures >= max {
        let Outcome::Failed(e) = outcome else {
            return outcome;
        };
        return Outcome::DeadLettered(e);
    }
    tracing::info!(request_id = id, failures, max, error = %e, "failed: left for SQS to deliver again");
    outcome
}

/// Adds one to request `id`'s count of failures other than throttling (its
/// status object's `failures`, keeping what else is there and the owner the
/// message carries); the new count.
async fn count_failure<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    id: &str,
    msg: &SqsMessage,
) -> Result<u32, GenerateError> {
    let key = imagegen::status::status_key(&generator.prefix, id);
    let mut status = read_status(generator, &key, msg).await?;
    let n = status[FAILURES].as_u64().unwrap_or(0).saturating_add(1);
    status[FAILURES] = json!(n);
    if status["status"].is_null() {
        status["status"] = json!(imagegen::status::QUEUED);
    }
    generator
        .store
        .put_json(&key, status.to_string().into_bytes())
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// One record to make: its message, request id and prompt.
#[derive(Clone, Copy)]
struct Job<'a> {
    msg: &'a SqsMessage,
    id: &'a str,
    prompt: &'a Prompt,
}

/// The tries of one record.
async fn tries_of<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    pace: &Pace,
    rules: &Rules,
    job: Job<'_>,
    throttled_calls: &mut u32,
) -> Outcome {
    let Job { msg, id, prompt } = job;
    let received = receives(msg);
    let mut existence_checked = false;
    let mut marked = false;
    let mut tries = Tries::default();
    let out_of_time = |last: Option<GenerateError>| {
        if received >= THROTTLED_RECEIVES.saturating_add(rules.max_receive_count.unwrap_or(0)) {
            // The safety net's last receive: given up with a reason by the
            // worker, not silently by SQS.
            return Outcome::DeadLettered(last.unwrap_or_else(|| {
                GenerateError::Model(format!(
                    "returned unfinished on {received} receives: the model's capacity is too small for the queue"
                ))
            }));
        }
        match last {
            Some(e) => Outcome::Returned {
                delay: return_delay(received).max(e.retry_after().unwrap_or_default()),
                throttled: Some(e),
            },
            None => Outcome::Returned {
                delay: Duration::ZERO,
                throttled: None,
            },
        }
    };
    loop {
        if !rules.time_for(pace, Duration::ZERO) {
            return out_of_time(tries.last_throttle);
        }
        // A redelivered message whose picture is there: no model call.
        if !existence_checked {
            match generator.already_stored(id).await {
                Ok(Some(stored)) => {
                    return Outcome::Stored {
                        key: stored.key,
                        reused: true,
                        model_latency: None,
                    };
                }
                Ok(None) => existence_checked = true,
                Err(e) => {
                    match after_failure(e, None, &mut tries, pace, rules, received, throttled_calls)
                        .await
                    {
                        Some(done) => return done,
                        None => continue,
                    }
                }
            }
        }
        // The place under the limit is held for the model call only: the
        // S3 calls before and after do not keep another record's call waiting.
        let permit = pace.limiter.acquire().await;
        // The wait for a place may have used the time up.
        if !rules.time_for(pace, Duration::ZERO) {
            return out_of_time(tries.last_throttle);
        }
        // A call that hangs must not outlive the invocation (Lambda would
        // end it without an answer, and every record of the batch would
        // spend a receive): it is given what is left but the reserve.
        let budget = rules
            .deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(RESERVE);
        let render = tokio::time::timeout(budget, generator.render(prompt));
        // The first model call marks the request `generating` meanwhile; a
        // mark still unwritten when the call ends is dropped, never waited
        // for (the call's place and its measured latency are the model's).
        let rendered = if marked {
            render.await
        } else {
            marked = true;
            let mark = mark_generating(generator, id);
            tokio::pin!(render, mark);
            let mut mark_done = false;
            loop {
                tokio::select! {
                    biased;
                    r = &mut render => break r,
                    () = &mut mark, if !mark_done => mark_done = true,
                }
            }
        };
        let started = permit.started;
        let (png, meta, latency) = match rendered {
            Ok(Ok(r)) => {
                // Grown before the place is freed: the next waiter sees it.
                pace.limiter.succeeded();
                drop(permit);
                r
            }
            Ok(Err(e)) => {
                drop(permit);
                let next = after_failure(
                    e,
                    Some(started),
                    &mut tries,
                    pace,
                    rules,
                    received,
                    throttled_calls,
                );
                match next.await {
                    Some(done) => return done,
                    None => continue,
                }
            }
            Err(_) => {
                drop(permit);
                tracing::warn!(
                    request_id = id,
                    "the model call outlived the invocation's time: returned"
                );
                return out_of_time(tries.last_throttle);
            }
        };
        pace.observe(latency);
        // Stored; a failed write is retried with the same picture (a
        // throttled S3 must not cost another model call).
        loop {
            match generator
                .store_rendered(id, png.clone(), meta.clone(), latency)
                .await
            {
                Ok(stored) => {
                    return Outcome::Stored {
                        key: stored.key,
                        reused: false,
                        model_latency: Some(latency),
                    };
                }
                Err(e) => {
                    let next =
                        after_failure(e, None, &mut tries, pace, rules, received, throttled_calls);
                    if let Some(done) = next.await {
                        return done;
                    }
                }
            }
        }
    }
}

/// How long the `generating` mark may take: it is written beside the
/// model call, and only tells a polling caller what is under way.
const MARK_TIMEOUT: Duration = Duration::from_secs(2);

/// Marks request `id` `generating` for `GET /images/{id}`
/// (`couch_contract::status::generating_key`); a mark that cannot be
/// written leaves the request `queued`, nothing else.
async fn mark_generating<M: ImageModel, S: ImageStore>(generator: &Generator<M, S>, id: &str) {
    let key = imagegen::status::generating_key(&generator.prefix, id);
    let written =
        tokio::time::timeout(MARK_TIMEOUT, generator.store.put_json(&key, b"{}".to_vec())).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(request_id = id, error = %e, "the generating mark was not written");
        }
        Err(_) => tracing::warn!(request_id = id, "the generating mark took too long"),
    }
}

/// What one record's tries have met so far.
#[derive(Debug, Default)]
struct Tries {
    /// Back-off steps taken.
    retry: u32,
    /// Failures other than throttling.
    upstream: u32,
    /// The last throttle: a record out of time after one is returned as throttled.
    last_throttle: Option<GenerateError>,
}

/// After a failed try: `Some` outcome when the record is done with (given
/// up or returned), `None` after waiting its back-off for the next try.
/// `model_call`: when the failed call was the model's (a throttle of it
/// cuts the limit; S3's do not).
async fn after_failure(
    e: GenerateError,
    model_call: Option<Instant>,
    tries: &mut Tries,
    pace: &Pace,
    rules: &Rules,
    received: u32,
    throttled_calls: &mut u32,
) -> Option<Outcome> {
    let backoff = Backoff::IN_INVOCATION;
    match e.kind() {
        ErrorKind::BadRequest | ErrorKind::Refused => Some(Outcome::DeadLettered(e)),
        ErrorKind::Throttled => {
            *throttled_calls += 1;
            if let Some(started) = model_call {
                pace.limiter.throttled(started);
            }
            if received >= THROTTLED_RECEIVES.saturating_add(rules.max_receive_count.unwrap_or(0)) {
                // The safety net's last receive: SQS would move it without
                // a reason; the worker does, with one.
                return Some(Outcome::DeadLettered(e));
            }
            let wait = backoff.wait(tries.retry, e.retry_after());
            if !rules.time_for(pace, wait) {
                let delay = return_delay(received).max(e.retry_after().unwrap_or_default());
                return Some(Outcome::Returned {
                    delay,
                    throttled: Some(e),
                });
            }
            tokio::time::sleep(wait).await;
            tries.retry += 1;
            tries.last_throttle = Some(e);
            None
        }
        ErrorKind::Upstream => {
            tries.upstream += 1;
            let wait = backoff.wait(tries.retry, None);
            if tries.upstream < UPSTREAM_TRIES && rules.time_for(pace, wait) {
                tokio::time::sleep(wait).await;
                tries.retry += 1;
                return None;
            }
            // Counted toward max_receive_count by [`attempt`].
            Some(Outcome::Failed(e))
        }
    }
}
async fn process<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    pace: &Pace,
    rules: &Rules,
    msg: &SqsMessage,
) -> Outcome {
    let started = Instant::now();
    let id = request_id(generator, msg).await;
    let body = msg.body.as_deref().unwrap_or_default();
    let mut throttled_calls = 0u32;
    let (outcome, prompt_chars) = match prompt_of(body, generator.model.prompt_rule()) {
        Ok(prompt) => (
            attempt(
                generator,
                pace,
                rules,
                Job {
                    msg,
                    id: &id,
                    prompt: &prompt,
                },
                &mut throttled_calls,
            )
            .await,
            Some(prompt.chars()),
        ),
        Err(e) => (Outcome::DeadLettered(e), None),
    };
    let key = generator.key_for(&id);
    let mut extra = serde_json::Map::new();
    extra.insert("attempt".into(), receives(msg).into());
    if msg.message_id.as_deref() != Some(id.as_str()) {
        extra.insert("message_id".into(), msg.message_id.clone().into());
    }
    if let Some(n) = prompt_chars {
        extra.insert("prompt_chars".into(), n.into());
    }
    let line = match &outcome {
        Outcome::Stored { reused: true, .. } => telemetry::Outcome::Reused,
        Outcome::Stored { model_latency, .. } => telemetry::Outcome::Stored {
            model_latency: *model_latency,
        },
        Outcome::Returned { delay, throttled } => {
            extra.insert("delay_s".into(), delay.as_secs().into());
            telemetry::Outcome::Deferred {
                reason: if throttled.is_some() {
                    "throttled"
                } else {
                    "out of time"
                },
            }
        }
        Outcome::Failed(e) | Outcome::DeadLettered(e) => {
            extra.insert("body_bytes".into(), body.len().into());
            extra.insert("retryable".into(), e.retryable().into());
            extra.insert(
                "dead_lettered".into(),
                matches!(outcome, Outcome::DeadLettered(_)).into(),
            );
            telemetry::Outcome::Failed {
                reason: telemetry::reason(e),
                error: e.to_string(),
            }
        }
    };
    ImageEvent {
        id_key: "request_id",
        id: &id,
        image_key: &key,
        model: generator.model.model_id(),
        outcome: line,
        duration: started.elapsed(),
        throttled_calls,
        extra,
    }
    .emit();
    outcome
}

/// Processes a batch under `pace` and `rules`; every record's outcome in input order.
pub async fn process_records<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    pace: &Pace,
    rules: &Rules,
    records: &[SqsMessage],
) -> Vec<Outcome> {
    // An iterator of futures (not `Stream::map` with a closure): the batch
    // future stays `Send` for callers that spawn it. Every record starts at
    // once; the limiter holds the model calls to its limit.
    let futures: Vec<_> = records
        .iter()
        .map(|msg| process(generator, pace, rules, msg))
        .collect();
    stream::iter(futures)
        .buffered(records.len().max(1))
        .collect()
        .await
}

/// [`process_records`] with a fresh limit of `concurrency`, no deadline to
/// speak of and no receive limit: for tests and benchmarks.
pub async fn process_batch<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    records: &[SqsMessage],
    concurrency: usize,
) -> Vec<Outcome> {
    process_records(
        generator,
        &Pace::new(concurrency),
        &Rules::unhurried(None),
        records,
    )
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
    let mut status = read_status(generator, key, msg).await?;
    status["status"] = json!(imagegen::status::FAILED);
    status["reason"] = json!(reason);
    Ok(status)
}

/// The status object at `key` to modify (read, modify, write), with the
/// request's owner: the status's own, else the one the message carries.
async fn read_status<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    key: &str,
    msg: &SqsMessage,
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
    Ok(status)
}

/// The queue operations a batch's outcomes need besides the trigger's
/// delete: a returned record's visibility, a given-up record's move.
#[async_trait]
pub trait Queues: Send + Sync {
    /// `ChangeMessageVisibility` of `msg` on its queue to `delay`.
    async fn return_later(&self, msg: &SqsMessage, delay: Duration) -> Result<(), String>;
    /// `SendMessage` of `msg`'s body to the dead-letter queue, with its
    /// request id, the redrive token of its status, the reason and the
    /// receives as message attributes.
    async fn dead_letter(&self, msg: &SqsMessage, letter: &DeadLetter<'_>) -> Result<(), String>;
}

/// What a given-up record's dead-letter copy says of it.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    pub request_id: &'a str,
    /// The token written in the request's status (`redrive_token`).
    pub token: &'a str,
    pub reason: &'a str,
    pub receives: u32,
}

/// The real queues: each record's own (from its `eventSourceARN`) and the
/// dead-letter queue (`DLQ_NAME`, beside it).
pub struct SqsQueues {
    pub client: aws_sdk_sqs::Client,
    pub dlq: Option<DeadLetterQueue>,
}

/// Where given-up prompts go. `None` in [`SqsQueues::dlq`]: nothing is
/// moved (the record stays a failure, for SQS's redrive policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterQueue {
    /// By name, in the record's queue's account and Region (`DLQ_NAME`).
    Named(String),
    /// By URL (tests that made the queue themselves).
    Url(String),
}

impl DeadLetterQueue {
    /// The queue's URL for a record of the queue `source_arn`.
    pub fn url_for(&self, source_arn: Option<&str>) -> Option<String> {
        match self {
            DeadLetterQueue::Url(url) => Some(url.clone()),
            DeadLetterQueue::Named(name) => {
                let (account_region, _) = source_arn?.rsplit_once(':')?;
                couch_contract::queue_url_of_arn(&format!("{account_region}:{name}"))
            }
        }
    }
}

#[async_trait]
impl Queues for SqsQueues {
    async fn return_later(&self, msg: &SqsMessage, delay: Duration) -> Result<(), String> {
        let url = msg
            .event_source_arn
            .as_deref()
            .and_then(couch_contract::queue_url_of_arn)
            .ok_or("the record names no queue ARN")?;
        let secs = i32::try_from(delay.as_secs().min(43_200)).unwrap_or(43_200);
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(msg.receipt_handle.as_deref().unwrap_or_default())
            .visibility_timeout(secs)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "sqs:ChangeMessageVisibility: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                )
            })
    }

    async fn dead_letter(&self, msg: &SqsMessage, letter: &DeadLetter<'_>) -> Result<(), String> {
        use aws_sdk_sqs::types::MessageAttributeValue;
        let url = self
            .dlq
            .as_ref()
            .ok_or("no DLQ_NAME")?
            .url_for(msg.event_source_arn.as_deref())
            .ok_or("the record names no queue ARN")?;
        let text = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| e.to_string())
        };
        self.client
            .send_message()
            .queue_url(&url)
            .message_body(msg.body.as_deref().unwrap_or_default())
            .message_attributes(REQUEST_ID_ATTRIBUTE, text(letter.request_id)?)
            .message_attributes(REDRIVE_TOKEN_ATTRIBUTE, text(letter.token)?)
            .message_attributes(
                couch_contract::queues::REASON_ATTRIBUTE,
                text(letter.reason)?,
            )
            .message_attributes(
                couch_contract::queues::RECEIVES_ATTRIBUTE,
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value(letter.receives.to_string())
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "sqs:SendMessage to the dead-letter queue: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                )
            })
    }
}

/// Acts on a batch's outcomes: each returned record's visibility delay, each
/// given-up record moved to the dead-letter queue with its `failed` status
/// written (a move that fails leaves the record a failure: SQS keeps it).
/// Returns the outcomes as they stand after that.
pub async fn settle<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    queues: &dyn Queues,
    records: &[SqsMessage],
    outcomes: Vec<Outcome>,
) -> Vec<Outcome> {
    // Every record at once: ten moves one after another could outlast the
    // time kept for them.
    let settling: Vec<_> = records
        .iter()
        .zip(outcomes)
        .map(|(msg, outcome)| settle_one(generator, queues, msg, outcome))
        .collect();
    futures::future::join_all(settling).await
}

async fn settle_one<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    queues: &dyn Queues,
    msg: &SqsMessage,
    outcome: Outcome,
) -> Outcome {
    match outcome {
        Outcome::Returned { delay, throttled } => {
            if let Err(e) = queues.return_later(msg, delay).await {
                // It comes back after the queue's visibility timeout instead.
                tracing::warn!(message_id = msg.message_id, error = %e, "the returned record's delay was not set");
            }
            Outcome::Returned { delay, throttled }
        }
        Outcome::DeadLettered(e) => {
            let id = request_id(generator, msg).await;
            // A delivery already moved (SQS delivers at least once: the
            // same message again, e.g. its visibility timeout ran out while
            // the batch was still settling) is not moved twice: its status
            // names the message it was moved for.
            if moved_already(generator, msg, &id).await {
                tracing::info!(
                    request_id = id,
                    message_id = msg.message_id,
                    "this delivery was dead-lettered already: not moved again"
                );
                return Outcome::DeadLettered(e);
            }
            let reason = failure_reason(&e);
            let token = imagegen::new_image_id();
            let letter = DeadLetter {
                request_id: &id,
                token: &token,
                reason: &reason,
                receives: receives(msg),
            };
            if let Err(err) = queues.dead_letter(msg, &letter).await {
                tracing::error!(request_id = id, error = %err, "not moved to the dead-letter queue: left on the queue");
                return Outcome::Failed(e);
            }
            record_failed(generator, msg, &id, reason, &token).await;
            Outcome::DeadLettered(e)
        }
        other => other,
    }
}

/// The status field naming the SQS message a `failed` request was moved to
/// the dead-letter queue for.
const MOVED_MESSAGE: &str = "dead_lettered_message";

/// Whether this very message (not a redriven copy: that is a new message)
/// was moved to the dead-letter queue before.
async fn moved_already<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    msg: &SqsMessage,
    id: &str,
) -> bool {
    let Some(message_id) = msg.message_id.as_deref() else {
        return false;
    };
    let key = imagegen::status::status_key(&generator.prefix, id);
    match generator.store.get_json(&key).await {
        Ok(Some(bytes)) => serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| {
            v["status"] == imagegen::status::FAILED && v[MOVED_MESSAGE] == message_id
        }),
        _ => false,
    }
}

/// Writes request `id`'s `failed` status (with `reason` and the dead-letter
/// copy's redrive `token`, keeping its owner);
/// a read or write that fails is logged, not fatal. Whether it was written.
pub async fn record_failed<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    msg: &SqsMessage,
    id: &str,
    reason: String,
    token: &str,
) -> bool {
    let key = imagegen::status::status_key(&generator.prefix, id);
    let body = match failed_status(generator, &key, msg, reason).await {
        Ok(mut b) => {
            // What a redriven copy must show to be made under this id.
            b[REDRIVE_TOKEN] = json!(token);
            // Which delivery was moved (a redelivery of it is not moved again).
            b[MOVED_MESSAGE] = json!(msg.message_id);
            b
        }
        Err(err) => {
            tracing::error!(request_id = id, error = %err, "the status was not read: failed not recorded");
            return false;
        }
    };
    match generator
        .store
        .put_json(&key, body.to_string().into_bytes())
        .await
    {
        Ok(()) => {
            tracing::warn!(
                request_id = id,
                receives = receives(msg),
                "given up: dead-lettered, status failed recorded"
            );
            true
        }
        Err(err) => {
            tracing::error!(request_id = id, error = %err, "the failed status was not written");
            false
        }
    }
}

/// One invocation: process, settle, answer.
pub async fn handle<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    pace: &Pace,
    rules: &Rules,
    queues: &dyn Queues,
    records: &[SqsMessage],
) -> SqsBatchResponse {
    let outcomes = process_records(generator, pace, rules, records).await;
    let outcomes = settle(generator, queues, records, outcomes).await;
    let response = batch_response(records, &outcomes);
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    tracing::info!(
        records = records.len(),
        stored = count(|o| matches!(o, Outcome::Stored { .. })),
        returned = count(|o| matches!(o, Outcome::Returned { .. })),
        failed = count(|o| matches!(o, Outcome::Failed(_))),
        dead_lettered = count(|o| matches!(o, Outcome::DeadLettered(_))),
        limit = pace.limiter.limit(),
        "batch done"
    );
    response
}

/// The batch response: exactly the records that stay on the queue
/// (returned or failed).
pub fn batch_response(records: &[SqsMessage], outcomes: &[Outcome]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = records
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| o.stays_on_the_queue())
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
    fn the_time_left_is_lambdas_deadline_or_the_timeout_when_it_is_none() {
        let now = 1_796_598_213_000;
        let thirty = Duration::from_secs(30);
        assert_eq!(
            time_left(now + 12_500, now, thirty),
            Duration::from_millis(12_500)
        );
        // cargo lambda watch's fixed 600000 (1970), and a deadline just passed.
        assert_eq!(time_left(600_000, now, thirty), thirty);
        assert_eq!(time_left(now, now, thirty), thirty);
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
    async fn a_prompt_over_the_models_limit_is_dead_lettered_without_a_model_call() {
        let g = generator(0);
        let long = "x".repeat(PromptRule::TITAN.max_chars + 1);
        let records = [msg("a", &long), msg("b", "short")];
        let outcomes = process_batch(&g, &records, 10).await;
        assert!(matches!(
            &outcomes[0],
            Outcome::DeadLettered(GenerateError::InvalidPrompt(_))
        ));
        assert_eq!(g.model.calls.load(Ordering::SeqCst), 1);
        // Moved by the worker: not left on the queue.
        let r = batch_response(&records, &outcomes);
        assert!(r.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn only_retryable_failures_stay_on_the_queue() {
        let g = generator(0);
        let records = [
            msg("a", "fine"),
            msg("b", "FILTER"),
            msg("c", ""),
            msg("d", "BROKEN"),
            msg("e", "also fine"),
        ];
        let outcomes = process_batch(&g, &records, 10).await;
        assert!(matches!(outcomes[1], Outcome::DeadLettered(_)));
        assert!(matches!(outcomes[2], Outcome::DeadLettered(_)));
        assert!(matches!(outcomes[3], Outcome::Failed(_)));
        let r = batch_response(&records, &outcomes);
        let ids: Vec<_> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["d"]);
        assert_eq!(g.store.keys(), ["11/images/a.png", "11/images/e.png"]);
        // A model failure is tried twice in the invocation.
        assert_eq!(
            g.model.calls.load(Ordering::SeqCst),
            2 + 1 + UPSTREAM_TRIES as usize
        );
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

    #[tokio::test]
    async fn the_model_call_marks_the_request_generating_and_a_refusal_before_it_does_not() {
        let g = generator(0);
        process_batch(&g, &[msg("a", "x")], 10).await;
        let mark = imagegen::status::generating_key(&g.prefix, "a");
        assert_eq!(g.store.stored_json(&mark).as_deref(), Some(&b"{}"[..]));
        // A prompt refused before any model call is never `generating`.
        let long = "x".repeat(100_000);
        process_batch(&g, &[msg("b", &long)], 10).await;
        let mark = imagegen::status::generating_key(&g.prefix, "b");
        assert_eq!(g.store.stored_json(&mark), None);
    }

    fn received(id: &str, body: &str, receives: u32) -> SqsMessage {
        let mut m = msg(id, body);
        m.attributes
            .insert("ApproximateReceiveCount".into(), receives.to_string());
        m
    }

    /// The queues, in memory: what was returned (with its delay) and what
    /// was dead-lettered (with request id, reason and receives).
    #[derive(Default)]
    struct FakeQueues {
        returned: std::sync::Mutex<Vec<(String, Duration)>>,
        dead: std::sync::Mutex<Vec<(String, String, String, u32)>>,
        tokens: std::sync::Mutex<Vec<String>>,
        fail_dead_letters: bool,
    }

    #[async_trait]
    impl Queues for FakeQueues {
        async fn return_later(&self, msg: &SqsMessage, delay: Duration) -> Result<(), String> {
            self.returned
                .lock()
                .unwrap()
                .push((msg.message_id.clone().unwrap(), delay));
            Ok(())
        }
        async fn dead_letter(
            &self,
            msg: &SqsMessage,
            letter: &DeadLetter<'_>,
        ) -> Result<(), String> {
            if self.fail_dead_letters {
                return Err("sqs:SendMessage: AccessDenied".into());
            }
            self.dead.lock().unwrap().push((
                msg.message_id.clone().unwrap(),
                letter.request_id.to_owned(),
                letter.reason.to_owned(),
                letter.receives,
            ));
            self.tokens.lock().unwrap().push(letter.token.to_owned());
            Ok(())
        }
    }

    fn id(n: u32) -> String {
        format!("6a96454d-ef25-4788-a79c-{n:012x}")
    }

    #[tokio::test]
    async fn poison_goes_to_the_dead_letter_queue_at_once_other_failures_on_their_last_receive() {
        let g = generator(0);
        // Request 3 failed twice before (its status counts them).
        g.store
            .put_json(
                &imagegen::status::status_key("11", &id(3)),
                br#"{"status": "queued", "failures": 2}"#.to_vec(),
            )
            .await
            .unwrap();
        let records = [
            received(&id(1), "FILTER me", 1),
            received(&id(2), "BROKEN", 2),
            received(&id(3), "BROKEN", 3),
            received(&id(4), "a dog", 3),
        ];
        let queues = FakeQueues::default();
        let outcomes =
            process_records(&g, &Pace::new(10), &Rules::unhurried(Some(3)), &records).await;
        let outcomes = settle(&g, &queues, &records, outcomes).await;
        let dead = queues.dead.lock().unwrap().clone();
        assert_eq!(
            dead,
            [
                (
                    id(1),
                    id(1),
                    imagegen::status::REASON_FILTERED.to_owned(),
                    1
                ),
                (id(3), id(3), imagegen::status::REASON_OURS.to_owned(), 3),
            ]
        );
        let r = batch_response(&records, &outcomes);
        assert_eq!(
            r.batch_item_failures.len(),
            1,
            "only the model failure with receives left"
        );
        assert_eq!(r.batch_item_failures[0].item_identifier, id(2));
        let status = |n: u32| status_of(&g, &id(n));
        assert_eq!(
            status(1).unwrap(),
            json!({"status": "failed", "reason": imagegen::status::REASON_FILTERED})
        );
        assert_eq!(
            status(2).unwrap(),
            json!({"status": "queued", "failures": 1}),
            "its first failure, counted: two are left"
        );
        let ours = status(3).unwrap();
        assert_eq!(ours["reason"], imagegen::status::REASON_OURS);
        assert!(!ours.to_string().contains("secret"), "no internals: {ours}");
        assert_eq!(status(4), None, "stored, not failed");
    }

    /// SQS delivers at least once: the same poison message delivered again
    /// (its visibility ran out while its batch settled) is moved once; a
    /// redriven copy (a new message) would be moved again.
    #[tokio::test]
    async fn a_redelivered_message_is_dead_lettered_once() {
        let g = generator(0);
        let queues = FakeQueues::default();
        for receives in [1, 2] {
            let records = [received(&id(1), "FILTER me", receives)];
            let outcomes =
                process_records(&g, &Pace::new(1), &Rules::unhurried(Some(3)), &records).await;
            let outcomes = settle(&g, &queues, &records, outcomes).await;
            assert!(matches!(outcomes[0], Outcome::DeadLettered(_)));
            assert!(
                batch_response(&records, &outcomes)
                    .batch_item_failures
                    .is_empty()
            );
        }
        assert_eq!(queues.dead.lock().unwrap().len(), 1, "moved once");
        assert_eq!(raw_status_of(&g, &id(1)).unwrap()[MOVED_MESSAGE], id(1));
        // Another message for the same request (as a redriven copy is) is moved.
        let mut copy = received(&id(2), "FILTER me", 1);
        copy.message_id = Some(id(9));
        let outcomes = process_records(
            &g,
            &Pace::new(1),
            &Rules::unhurried(Some(3)),
            std::slice::from_ref(&copy),
        )
        .await;
        settle(&g, &queues, std::slice::from_ref(&copy), outcomes).await;
        assert_eq!(queues.dead.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_dead_letter_move_that_fails_leaves_the_record_on_the_queue_and_no_status() {
        let g = generator(0);
        let records = [received(&id(1), "FILTER me", 1)];
        let queues = FakeQueues {
            fail_dead_letters: true,
            ..FakeQueues::default()
        };
        let outcomes = settle(&g, &queues, &records, process_batch(&g, &records, 1).await).await;
        assert!(matches!(outcomes[0], Outcome::Failed(_)));
        assert_eq!(
            batch_response(&records, &outcomes)
                .batch_item_failures
                .len(),
            1
        );
        assert_eq!(status_of(&g, &id(1)), None);
    }

    #[tokio::test]
    async fn a_throttled_record_is_returned_with_a_growing_delay_never_dead_lettered() {
        let g = generator(0);
        // THROTTLE: every call throttled. A deadline that leaves time for
        // the first attempt only (the estimate is 5 s, the reserve 2 s).
        for receives in [1, 5, 40] {
            let records = [received(&id(7), "THROTTLE me", receives)];
            let pace = Pace::new(4);
            let rules = Rules {
                max_receive_count: Some(1),
                deadline: Instant::now() + Duration::from_millis(7_300),
            };
            let queues = FakeQueues::default();
            let outcomes = process_records(&g, &pace, &rules, &records).await;
            let outcomes = settle(&g, &queues, &records, outcomes).await;
            let Outcome::Returned {
                delay,
                throttled: Some(_),
            } = outcomes[0]
            else {
                panic!("{:?}", outcomes[0]);
            };
            let full = pace::return_delay_with(receives, 1.0);
            assert!(delay <= full && delay >= full / 2, "{receives}: {delay:?}");
            assert_eq!(*queues.returned.lock().unwrap(), [(id(7), delay)]);
            assert!(queues.dead.lock().unwrap().is_empty());
            assert_eq!(
                batch_response(&records, &outcomes)
                    .batch_item_failures
                    .len(),
                1
            );
            assert!(
                pace.limiter.limit() <= 2,
                "halved: {}",
                pace.limiter.limit()
            );
            assert_eq!(status_of(&g, &id(7)), None);
        }
        // On the safety net's last receive it is given up with a reason, not by SQS.
        let records = [received(&id(8), "THROTTLE me", THROTTLED_RECEIVES + 1)];
        let queues = FakeQueues::default();
        let outcomes =
            process_records(&g, &Pace::new(4), &Rules::unhurried(Some(1)), &records).await;
        settle(&g, &queues, &records, outcomes).await;
        assert_eq!(queues.dead.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn records_whose_turn_does_not_come_in_time_are_returned_at_once() {
        // One call at a time, 1 s each: with 4.5 s before the deadline, a
        // first call (estimated 5 s) does not fit; nothing is called.
        let g = generator(1000);
        let records: Vec<_> = (0..3).map(|i| received(&id(i), "a cat", 1)).collect();
        let rules = Rules {
            max_receive_count: Some(3),
            deadline: Instant::now() + Duration::from_millis(4_500),
        };
        let outcomes = process_records(&g, &Pace::new(1), &rules, &records).await;
        for o in &outcomes {
            assert!(
                matches!(o, Outcome::Returned { delay, throttled: None } if delay.is_zero()),
                "{o:?}"
            );
        }
        assert_eq!(g.model.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_dead_letter_queue_is_beside_the_records_queue() {
        let named = DeadLetterQueue::Named("p-prompts-dlq".into());
        assert_eq!(
            named.url_for(Some("arn:aws:sqs:eu-west-1:123456789012:p-prompts")),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/p-prompts-dlq".into())
        );
        assert_eq!(named.url_for(None), None);
        assert_eq!(named.url_for(Some("not-an-arn")), None);
        let url = DeadLetterQueue::Url("http://127.0.0.1:1/1/q".into());
        assert_eq!(url.url_for(None).as_deref(), Some("http://127.0.0.1:1/1/q"));
    }

    fn claiming(message_id: &str, claimed: &str, token: &str) -> SqsMessage {
        let mut m = received(message_id, "a cat", 1);
        for (k, v) in [
            (REQUEST_ID_ATTRIBUTE, claimed),
            (REDRIVE_TOKEN_ATTRIBUTE, token),
        ] {
            let mut attr = aws_lambda_events::sqs::SqsMessageAttribute::default();
            attr.string_value = Some(v.into());
            m.message_attributes.insert(k.into(), attr);
        }
        m
    }

    #[tokio::test]
    async fn a_redriven_prompt_keeps_its_request_id_only_with_the_workers_token() {
        let g = generator(0);
        // The worker gave request 9 up: its status holds the token its
        // dead-letter copy carries.
        let queues = FakeQueues::default();
        let records = [received(&id(9), "FILTER me", 1)];
        let outcomes =
            process_records(&g, &Pace::new(2), &Rules::unhurried(Some(3)), &records).await;
        settle(&g, &queues, &records, outcomes).await;
        let token = queues.tokens.lock().unwrap()[0].clone();
        assert_eq!(
            raw_status_of(&g, &id(9)).unwrap()[REDRIVE_TOKEN],
            token.as_str()
        );
        // Redriven (a new message id), with the token: made under id 9.
        assert_eq!(
            request_id(&g, &claiming(&id(20), &id(9), &token)).await,
            id(9)
        );
        // Anyone else who names id 9: their own message id.
        assert_eq!(
            request_id(&g, &claiming(&id(21), &id(9), "guess")).await,
            id(21)
        );
        assert_eq!(
            request_id(&g, &claiming(&id(22), &id(8), &token)).await,
            id(22),
            "no status"
        );
        assert_eq!(
            request_id(&g, &claiming(&id(23), "../other", &token)).await,
            id(23)
        );
        assert_eq!(request_id(&g, &msg("plain", "a cat")).await, "plain");
        // A picture made under id 9 by the redriven copy.
        let records = [claiming(&id(20), &id(9), &token)];
        let outcomes =
            process_records(&g, &Pace::new(2), &Rules::unhurried(Some(3)), &records).await;
        assert!(
            matches!(&outcomes[0], Outcome::Stored { key, .. } if key.ends_with(&format!("{}.png", id(9))))
        );
    }

    #[tokio::test]
    async fn failures_other_than_throttling_are_counted_per_request_not_per_receive() {
        let g = generator(0);
        // Receive 5 (four throttled returns before): the first real failure.
        let records = [received(&id(30), "BROKEN", 5)];
        let rules = Rules::unhurried(Some(2));
        let first = process_records(&g, &Pace::new(2), &rules, &records).await;
        assert!(matches!(first[0], Outcome::Failed(_)), "{:?}", first[0]);
        assert_eq!(status_of(&g, &id(30)).unwrap()[FAILURES], 1);
        assert_eq!(status_of(&g, &id(30)).unwrap()["status"], "queued");
        // The second: max_receive_count 2 reached.
        let records = [received(&id(30), "BROKEN", 6)];
        let second = process_records(&g, &Pace::new(2), &rules, &records).await;
        assert!(
            matches!(second[0], Outcome::DeadLettered(_)),
            "{:?}",
            second[0]
        );
    }

    /// Request `id`'s status as a user's answer is made from it: without
    /// the redrive token (random; [`raw_status_of`] keeps it).
    fn status_of(g: &Generator<FakeModel, FakeStore>, id: &str) -> Option<Value> {
        raw_status_of(g, id).map(|mut v| {
            if let Value::Object(m) = &mut v {
                m.remove(REDRIVE_TOKEN);
                m.remove(MOVED_MESSAGE);
            }
            v
        })
    }

    fn raw_status_of(g: &Generator<FakeModel, FakeStore>, id: &str) -> Option<Value> {
        g.store
            .stored_json(&imagegen::status::status_key("11", id))
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[tokio::test]
    async fn the_failed_status_keeps_the_requests_owner() {
        let g = generator(0);
        let ids = [id(0xa), id(0xb), id(0xc), id(0xd)];
        // a: queued by its owner (POST /images wrote the status); the message
        // body is plain text, so the owner can only come from the status.
        g.store
            .put_json(
                &imagegen::status::status_key("11", &ids[0]),
                br#"{"status": "queued", "owner": "jwt:auth0|ana"}"#.to_vec(),
            )
            .await
            .unwrap();
        // c: failed twice before.
        g.store
            .put_json(
                &imagegen::status::status_key("11", &ids[2]),
                br#"{"failures": 2}"#.to_vec(),
            )
            .await
            .unwrap();
        // d: the status names an owner; a message naming another changes nothing.
        g.store
            .put_json(
                &imagegen::status::status_key("11", &ids[3]),
                br#"{"status": "queued", "owner": "iam:arn:aws:iam::1:user/ana"}"#.to_vec(),
            )
            .await
            .unwrap();
        let records = [
            received(&ids[0], "FILTER me", 1),
            // b: no status written (yet): the owner the message carries.
            received(
                &ids[1],
                r#"{"prompt": "FILTER me", "owner": "iam:arn:aws:iam::1:user/bob"}"#,
                1,
            ),
            // c: submitted without an authorizer: no owner anywhere.
            received(&ids[2], r#"{"prompt": "BROKEN"}"#, 3),
            received(
                &ids[3],
                r#"{"prompt": "FILTER me", "owner": "jwt:mallory"}"#,
                1,
            ),
        ];
        let queues = FakeQueues::default();
        let outcomes =
            process_records(&g, &Pace::new(10), &Rules::unhurried(Some(3)), &records).await;
        settle(&g, &queues, &records, outcomes).await;
        assert_eq!(queues.dead.lock().unwrap().len(), 4);
        assert_eq!(
            status_of(&g, &ids[0]).unwrap(),
            json!({"status": "failed", "reason": imagegen::status::REASON_FILTERED, "owner": "jwt:auth0|ana"})
        );
        assert_eq!(
            status_of(&g, &ids[1]).unwrap()["owner"],
            "iam:arn:aws:iam::1:user/bob"
        );
        let c = status_of(&g, &ids[2]).unwrap();
        assert_eq!(
            c,
            json!({"status": "failed", "reason": imagegen::status::REASON_OURS, "failures": 3})
        );
        assert_eq!(
            status_of(&g, &ids[3]).unwrap()["owner"],
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
