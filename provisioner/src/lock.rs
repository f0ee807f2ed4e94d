//! The stack lock: one writer at a time per stack name, like Terraform's S3
//! backend with `use_lockfile`.
//!
//! Where it lives: an object in the stack's images bucket,
//! `s3://{images.bucket}/{images.prefix}/.locks/{stack name}.json`. The bucket
//! is the one thing every stack already depends on and the deploying
//! credentials can already see (no extra table or bucket to create), and S3
//! makes the lock atomic: the object is created with `If-None-Match: *`
//! (exactly one concurrent PutObject succeeds, the others get 412
//! PreconditionFailed), renewed and taken over with `If-Match: {ETag}` (a
//! writer that lost a race gets 412). AWS: s3/userguide/conditional-writes.html;
//! moto 5.2.5 answers both with 412 as AWS does (measured,
//! ../shared/EMULATOR-NOTES.md).
//!
//! The lease: the holder rewrites the object every quarter of the lease
//! (default 60 s, `COUCH_LOCK_LEASE_SECONDS`); an object not rewritten for a
//! whole lease (by S3's `LastModified`) is stale, so a SIGKILLed apply's lock
//! expires by itself and the next writer takes it over. Waiters poll and print
//! who holds it; `provisioner unlock` removes a stale lock (or, with
//! `--force`, a live one).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::aws::Aws;
use crate::aws::buckets::bucket_arn;
use crate::aws::policies::Statement;
use crate::stack::Stack;

/// Default lease: a lock not renewed for this long is stale.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Default wait for a held lock (`--lock-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a waiter looks again.
const POLL: Duration = Duration::from_secs(2);

/// Who holds the lock, as written in the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub stack: String,
    /// The verb (`apply`, `destroy`, `bootstrap`, `retire`).
    pub verb: String,
    /// The caller's ARN (`sts:GetCallerIdentity`).
    pub who: String,
    pub host: String,
    pub pid: u32,
    /// Unix seconds.
    pub started: u64,
    pub lease_seconds: u64,
    /// Identifies this holding (a release deletes only its own lock).
    pub token: String,
}

/// A lock as read: its holder, when S3 last saw it written, S3's clock when
/// it answered, and its ETag.
#[derive(Debug, Clone)]
pub struct Seen {
    pub holder: Holder,
    /// `LastModified`, by S3's clock.
    pub renewed: SystemTime,
    /// The `Date` of S3's answer: the age is judged by S3's clock alone, so
    /// a reader whose clock runs ahead cannot take a live lock for stale.
    pub read_at: SystemTime,
    pub etag: String,
}

impl Seen {
    pub fn age(&self) -> Duration {
        self.read_at
            .duration_since(self.renewed)
            .unwrap_or_default()
    }
    /// Not renewed for a whole lease. `LastModified` has whole seconds (it
    /// may read up to 1 s old), so one more second is allowed.
    pub fn stale(&self) -> bool {
        self.age() > Duration::from_secs(self.holder.lease_seconds + 1)
    }
    /// `arn:... (apply, since 10:02:13, renewed 4 s ago)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, pid {} on {}, since {} UTC, renewed {} s ago)",
            self.holder.who,
            self.holder.verb,
            self.holder.pid,
            self.holder.host,
            clock(self.holder.started),
            self.age().as_secs()
        )
    }
}

fn clock(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the stack lock is held by {0}; nothing was changed. Wait for it, raise --lock-timeout, or, if that run is gone, `provisioner unlock`"
    )]
    Held(String),
    #[error("the stack lock {key}: {message}")]
    S3 { key: String, message: String },
    /// The images bucket does not exist, so there is nowhere to put the lock.
    #[error("the images bucket {0} does not exist, so the stack lock cannot be taken")]
    NoBucket(String),
}

/// `{prefix}/.locks/{stack}.json` in the images bucket.
pub fn key(stack: &Stack) -> String {
    format!(
        "{}/.locks/{}.json",
        stack.images.prefix.trim_matches('/'),
        stack.name
    )
}

fn object_arn(stack: &Stack) -> String {
    format!("{}/{}", bucket_arn(&stack.images.bucket), key(stack))
}

/// What the bootstrap roles need for the lock: reading it (the plan role:
/// `plan` says when one is held), and taking, renewing and releasing it (the
/// apply role). Exactly the lock object; whether it is there at all is
/// read by listing its key where S3 answers a missing key with 403 (the
/// roles may list only under the stack's prefix).
pub fn statement(stack: &Stack, write: bool) -> Statement {
    let actions: &[&str] = if write {
        &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    } else {
        &["s3:GetObject"]
    };
    Statement::allow("StackLock", actions, vec![object_arn(stack).into()])
}

fn lease() -> Duration {
    std::env::var("COUCH_LOCK_LEASE_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LEASE)
}

type S3Error<E> = aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>;

fn s3_error<E>(stack: &Stack, what: &str, e: S3Error<E>) -> LockError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    LockError::S3 {
        key: format!("s3://{}/{}", stack.images.bucket, key(stack)),
        message: crate::aws::aws_error(what, e).message,
    }
}

fn status<E>(e: &S3Error<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Whether the lock object is in the bucket (`ListObjectsV2` of its key).
async fn listed(aws: &Aws, stack: &Stack) -> Result<bool, LockError> {
    let out = aws
        .s3
        .list_objects_v2()
        .bucket(&stack.images.bucket)
        .prefix(key(stack))
        .max_keys(1)
        .send()
        .await
        .map_err(|e| s3_error(stack, "s3:ListObjectsV2", e))?;
    Ok(out
        .contents()
        .iter()
        .any(|o| o.key() == Some(key(stack).as_str())))
}

/// Keeps the `Date` header of the response it sees (S3's clock).
#[derive(Debug, Clone, Default)]
struct ServerDate(Arc<Mutex<Option<String>>>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "ServerDate"
    }
    fn read_before_deserialization(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(date.to_owned());
        }
        Ok(())
    }
}

impl ServerDate {
    /// S3's clock at the answer (an HTTP-date, RFC 7231); this machine's
    /// when S3 sent none.
    fn time(&self) -> SystemTime {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            .and_then(|d| {
                aws_smithy_types::DateTime::from_str(
                    d,
                    aws_smithy_types::date_time::Format::HttpDate,
                )
                .ok()
            })
            .and_then(|t| SystemTime::try_from(t).ok())
            .unwrap_or_else(SystemTime::now)
    }
}

/// The lock of `stack`, if any (one GetObject).
pub async fn read(aws: &Aws, stack: &Stack) -> Result<Option<Seen>, LockError> {
    let date = ServerDate::default();
    let out = aws
        .s3
        .get_object()
        .bucket(&stack.images.bucket)
        .key(key(stack))
        .customize()
        .interceptor(date.clone())
        .send()
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) if status(&e) == Some(404) => return Ok(None),
        // S3 answers a missing key with 404 only to a caller that may list
        // the bucket (S3 API reference, GetObject); the roles may list only
        // under the stack's prefix, which S3 may not count for this answer.
        // Listing exactly the key tells whether it is there.
        Err(e) if status(&e) == Some(403) && !listed(aws, stack).await? => return Ok(None),
        Err(e) => return Err(s3_error(stack, "s3:GetObject", e)),
    };
    let etag = out.e_tag().unwrap_or_default().to_owned();
    let renewed = out
        .last_modified()
        .and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or_else(SystemTime::now);
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| LockError::S3 {
            key: key(stack),
            message: format!("reading the lock: {e}"),
        })?
        .into_bytes();
    let holder: Holder = serde_json::from_slice(&bytes).map_err(|e| LockError::S3 {
        key: key(stack),
        message: format!(
            "the lock object is not a lock ({e}); `provisioner unlock --force` removes it"
        ),
    })?;
    Ok(Some(Seen {
        holder,
        renewed,
        read_at: date.time(),
        etag,
    }))
}

enum Put {
    Written(String),
    /// 412: someone else wrote it first.
    Lost,
}

async fn put(
    aws: &Aws,
    stack: &Stack,
    holder: &Holder,
    if_match: Option<&str>,
) -> Result<Put, LockError> {
    let body = serde_json::to_vec(holder).map_err(|e| LockError::S3 {
        key: key(stack),
        message: e.to_string(),
    })?;
    let req = aws
        .s3
        .put_object()
        .bucket(&stack.images.bucket)
        .key(key(stack))
        .content_type("application/json")
        .body(ByteStream::from(body));
    let req = match if_match {
        Some(etag) => req.if_match(etag),
        None => req.if_none_match("*"),
    };
    match req.send().await {
        Ok(out) => Ok(Put::Written(out.e_tag().unwrap_or_default().to_owned())),
        // 412 PreconditionFailed; 409 ConditionalRequestConflict (a concurrent conditional write).
        Err(e) if matches!(status(&e), Some(412 | 409)) => Ok(Put::Lost),
        Err(e) if status(&e) == Some(404) => Err(LockError::NoBucket(stack.images.bucket.clone())),
        Err(e) => Err(s3_error(stack, "s3:PutObject", e)),
    }
}

/// A held lock; renewed in the background until [`StackLock::release`].
pub struct StackLock {
    state: Arc<Held>,
    renewer: tokio::task::JoinHandle<()>,
}

struct Held {
    aws: Arc<Aws>,
    stack: Stack,
    holder: Holder,
    etag: Mutex<String>,
    /// Told when another run took the lock over: the holder must stop.
    lost: tokio::sync::Notify,
}

/// The lock this process holds, for release on Ctrl-C.
static HELD: Mutex<Option<Arc<Held>>> = Mutex::new(None);

fn held_slot() -> std::sync::MutexGuard<'static, Option<Arc<Held>>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes the lock of `stack` for `verb`, waiting up to `timeout` (zero: do not
/// wait) for a live holder, printing who holds it. A stale lock is taken over.
pub async fn acquire(
    aws: &Arc<Aws>,
    stack: &Stack,
    verb: &str,
    timeout: Duration,
) -> Result<StackLock, LockError> {
    let who = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .ok()
        .and_then(|o| o.arn)
        .unwrap_or_else(|| "(unknown caller)".into());
    let holder = Holder {
        stack: stack.name.clone(),
        verb: verb.to_owned(),
        who,
        host: hostname(),
        pid: std::process::id(),
        started: now_unix(),
        lease_seconds: lease().as_secs(),
        token: format!("{:x}{:x}", now_unix(), rand_token()),
    };
    let waited = std::time::Instant::now();
    let mut announced = false;
    loop {
        if let Put::Written(etag) = put(aws, stack, &holder, None).await? {
            return Ok(hold(aws, stack, holder, etag));
        }
        let Some(seen) = read(aws, stack).await? else {
            continue; // released between our attempt and the read
        };
        if seen.holder.token == holder.token {
            // Our own write: its answer was lost and the SDK's retry got 412.
            return Ok(hold(aws, stack, holder, seen.etag));
        }
        if seen.stale() {
            eprintln!(
                "the stack lock held by {} is stale (not renewed for {} s, lease {} s): taking it over",
                seen.holder.who,
                seen.age().as_secs(),
                seen.holder.lease_seconds
            );
            if let Put::Written(etag) = put(aws, stack, &holder, Some(&seen.etag)).await? {
                return Ok(hold(aws, stack, holder, etag));
            }
            continue; // another writer took it over first
        }
        if waited.elapsed() >= timeout {
            return Err(LockError::Held(seen.describe()));
        }
        if !announced || waited.elapsed().as_secs() % 10 < POLL.as_secs() {
            eprintln!(
                "waiting for the stack lock held by {} [{} s of {} s]",
                seen.describe(),
                waited.elapsed().as_secs(),
                timeout.as_secs()
            );
            announced = true;
        }
        tokio::time::sleep(POLL.min(timeout.saturating_sub(waited.elapsed()))).await;
    }
}

fn hold(aws: &Arc<Aws>, stack: &Stack, holder: Holder, etag: String) -> StackLock {
    let state = Arc::new(Held {
        aws: Arc::clone(aws),
        stack: stack.clone(),
        holder,
        etag: Mutex::new(etag),
        lost: tokio::sync::Notify::new(),
    });
    *held_slot() = Some(Arc::clone(&state));
    let renewing = Arc::clone(&state);
    let every = Duration::from_secs(renewing.holder.lease_seconds).div_f64(4.0);
    let renewer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let etag = renewing
                .etag
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            match put(
                &renewing.aws,
                &renewing.stack,
                &renewing.holder,
                Some(&etag),
            )
            .await
            {
                Ok(Put::Written(new)) => {
                    *renewing.etag.lock().unwrap_or_else(|p| p.into_inner()) = new;
                }
                Ok(Put::Lost) => match read(&renewing.aws, &renewing.stack).await {
                    // Our renewal landed but its answer was lost (the retry got 412).
                    Ok(Some(seen)) if seen.holder.token == renewing.holder.token => {
                        *renewing.etag.lock().unwrap_or_else(|p| p.into_inner()) = seen.etag;
                    }
                    Ok(_) => {
                        tracing::error!(
                            "the stack lock was taken over by another run (this one did not renew it within its lease)"
                        );
                        // A permit: whoever waits next returns at once.
                        renewing.lost.notify_one();
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "reading the stack lock failed; retrying"),
                },
                Err(e) => tracing::warn!(error = %e, "renewing the stack lock failed; retrying"),
            }
        }
    });
    StackLock { state, renewer }
}

impl StackLock {
    /// Resolves when another run has taken the lock over (this one could not
    /// renew it within its lease): the work under it must stop.
    pub async fn lost(&self) {
        self.state.lost.notified().await;
    }

    /// Stops renewing and deletes the lock if it is still this run's.
    pub async fn release(self) {
        self.renewer.abort();
        held_slot().take();
        release_state(&self.state).await;
    }
}

async fn release_state(state: &Held) {
    match read(&state.aws, &state.stack).await {
        Ok(Some(seen)) if seen.holder.token == state.holder.token => {
            if let Err(e) = state
                .aws
                .s3
                .delete_object()
                .bucket(&state.stack.images.bucket)
                .key(key(&state.stack))
                // Ours as read: a takeover meanwhile is left in place.
                .if_match(&seen.etag)
                .send()
                .await
            {
                eprintln!(
                    "Warning: releasing the stack lock failed ({}); it expires by itself within {} s",
                    crate::aws::aws_error("s3:DeleteObject", e).message,
                    state.holder.lease_seconds
                );
            }
        }
        // Taken over by another run, or gone: nothing of ours to release.
        Ok(_) => {}
        Err(e) => eprintln!(
            "Warning: {e}; the stack lock expires by itself within {} s",
            state.holder.lease_seconds
        ),
    }
}

/// Releases the lock this process holds, if any (Ctrl-C).
pub async fn release_held() {
    let held = held_slot().take();
    if let Some(state) = held {
        release_state(&state).await;
    }
}

/// Removes the lock of `stack`: a stale one always, a live one only with
/// `force`. Returns what was removed.
pub async fn unlock(aws: &Aws, stack: &Stack, force: bool) -> Result<Option<Seen>, LockError> {
    let Some(seen) = read(aws, stack).await? else {
        return Ok(None);
    };
    if !seen.stale() && !force {
        return Err(LockError::Held(format!(
            "{} and its lease is live (renewed within {} s); `unlock --force` removes it anyway, which is safe only if that run is gone",
            seen.describe(),
            seen.holder.lease_seconds
        )));
    }
    // Only the lock that was judged: if its holder renewed it (or another
    // run took it over) since, its ETag changed and S3 refuses with 412
    // (conditional deletes: s3/userguide/conditional-deletes.html).
    match aws
        .s3
        .delete_object()
        .bucket(&stack.images.bucket)
        .key(key(stack))
        .if_match(&seen.etag)
        .send()
        .await
    {
        Ok(_) => Ok(Some(seen)),
        Err(e) if matches!(status(&e), Some(412 | 409)) => Err(LockError::Held(format!(
            "{}, and it was written again while this unlock looked at it (its ETag changed): nothing was removed; look again with `provisioner unlock`",
            seen.describe()
        ))),
        Err(e) if status(&e) == Some(404) => Ok(None),
        Err(e) => Err(s3_error(stack, "s3:DeleteObject", e)),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

fn rand_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(now_unix());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(age: u64, lease: u64) -> Seen {
        seen_at(SystemTime::now(), age, lease)
    }

    /// A lock renewed `age` s before S3's clock read `read_at`.
    fn seen_at(read_at: SystemTime, age: u64, lease: u64) -> Seen {
        Seen {
            holder: Holder {
                stack: "s".into(),
                verb: "apply".into(),
                who: "arn:aws:sts::1:assumed-role/ci/x".into(),
                host: "h".into(),
                pid: 7,
                started: 36_133,
                lease_seconds: lease,
                token: "t".into(),
            },
            renewed: read_at - Duration::from_secs(age),
            read_at,
            etag: "e".into(),
        }
    }

    #[test]
    fn a_lock_is_stale_after_a_whole_lease_without_renewal() {
        assert!(!seen(10, 60).stale());
        assert!(
            !seen(60, 60).stale(),
            "LastModified's whole seconds are allowed for"
        );
        assert!(seen(62, 60).stale());
    }

    #[test]
    fn staleness_is_judged_by_s3s_clock_not_this_machines() {
        // S3's clock an hour behind this machine's: a lock renewed 10 s
        // before S3 answered is live, whatever this machine's clock says.
        let s3_now = SystemTime::now() - Duration::from_secs(3600);
        assert!(!seen_at(s3_now, 10, 60).stale());
        assert_eq!(seen_at(s3_now, 10, 60).age(), Duration::from_secs(10));
        // And an hour ahead: a lock S3 last saw 120 s ago is stale.
        let s3_ahead = SystemTime::now() + Duration::from_secs(3600);
        assert!(seen_at(s3_ahead, 120, 60).stale());
        let date = ServerDate(Arc::new(Mutex::new(Some(
            "Sun, 06 Dec 2026 19:56:09 GMT".to_owned(),
        ))));
        assert_eq!(
            date.time()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_796_586_969
        );
    }

    #[test]
    fn the_holder_is_described_for_people() {
        let d = seen(4, 60).describe();
        assert!(
            d.starts_with("arn:aws:sts::1:assumed-role/ci/x (apply, pid 7 on h, since 10:02:13 UTC, renewed 4 s ago)"),
            "{d}"
        );
    }

    #[test]
    fn the_lock_lives_under_the_stack_prefix() {
        let s = crate::stack::parse(
            std::path::Path::new("x.yaml"),
            "name: couch-x\nimages: { bucket: b-1, prefix: \"11\" }\nalarm: { email: a@b.co }\n",
        )
        .unwrap();
        assert_eq!(key(&s), "11/.locks/couch-x.json");
        assert_eq!(
            statement(&s, true).resource[0].as_str(),
            "arn:aws:s3:::b-1/11/.locks/couch-x.json"
        );
        assert_eq!(statement(&s, false).action, ["s3:GetObject"]);
    }
}
