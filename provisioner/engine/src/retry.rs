//! The engine's one policy for AWS's transient answers, and its one waiter.
//!
//! Real AWS answers concurrent and too-early calls with errors that go away
//! by themselves: a write while another write to the same API is in progress
//! (`409 ConflictException`), a role used moments after its policy changed
//! (IAM propagation), a queue name reused within 60 s of its deletion. Kinds
//! classify each answer ([`ErrorKind`], in `crate::aws::aws_error`); every
//! kind sends its writes through [`call`] (or [`write`], which also
//! serialises writes to one parent) and its polls through [`wait_until`].
//! Nothing else in the provisioner sleeps and tries again.
//!
//! The policy: a transient error ([`ErrorKind::transient`]) is retried with
//! "full jitter" exponential back-off (AWS Architecture Blog, "Exponential
//! Backoff And Jitter"; AWS SDKs and Tools reference guide, "Retry
//! behavior"): a pause drawn from `[0, min(8 s, 250 ms x 2^n)]`, at least
//! 100 ms, until the kind's budget ([`budget`]) is spent; then the last error
//! is returned. While a change retries or waits, the apply's progress line
//! says so: `api.http: Still modifying... [10s elapsed] (ConflictException,
//! retrying)`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::resource::{ErrorKind, ResourceError};

/// How long a transient error of `kind` is retried before the change fails.
/// Conflicts: AWS's own waits are seconds, but a queue name is free again
/// only 60 s after `DeleteQueue` (SQS API reference, `CreateQueue`).
/// Propagation: IAM changes are "eventually consistent" and usually visible
/// within seconds to a minute (IAM user guide, "Troubleshoot IAM: changes I
/// make are not always immediately visible"); Terraform allows 2 minutes.
pub fn budget(kind: ErrorKind) -> Duration {
    match kind {
        ErrorKind::Throttled => Duration::from_secs(120),
        ErrorKind::Conflict => Duration::from_secs(120),
        ErrorKind::Propagating => Duration::from_secs(180),
        ErrorKind::Lost => Duration::from_secs(60),
        _ => Duration::ZERO,
    }
}

const FIRST: Duration = Duration::from_millis(250);
const CAP: Duration = Duration::from_secs(8);
const FLOOR: Duration = Duration::from_millis(100);

/// The numbers of the policy: AWS's ([`Policy::AWS`]) everywhere; tests of
/// this module use smaller ones, on the real clock.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub budget: fn(ErrorKind) -> Duration,
    pub first: Duration,
    pub cap: Duration,
    pub floor: Duration,
}

impl Policy {
    pub const AWS: Policy = Policy {
        budget,
        first: FIRST,
        cap: CAP,
        floor: FLOOR,
    };

    /// The pause before retry number `n` (from 0): full jitter within
    /// `min(cap, first x 2^n)`, at least `floor`.
    pub fn pause(&self, n: u32) -> Duration {
        let ceiling = self.first.saturating_mul(1 << n.min(10)).min(self.cap);
        let drawn = rand::rng().random_range(0..=ceiling.as_millis() as u64);
        Duration::from_millis(drawn).max(self.floor)
    }
}

/// The pause before retry number `n` (from 0) under [`Policy::AWS`].
pub fn pause(n: u32) -> Duration {
    Policy::AWS.pause(n)
}

/// What a running change is doing besides its call: the note on its
/// progress line. The engine scopes one per change ([`scoped`]); kinds never
/// see it.
#[derive(Debug)]
pub struct Progress {
    note: tokio::sync::watch::Sender<Option<String>>,
}

impl Progress {
    pub fn new() -> (Arc<Progress>, tokio::sync::watch::Receiver<Option<String>>) {
        let (note, seen) = tokio::sync::watch::channel(None);
        (Arc::new(Progress { note }), seen)
    }
}

tokio::task_local! {
    static PROGRESS: Arc<Progress>;
}

/// Runs `work` with `progress` receiving its retry and wait notes.
pub async fn scoped<F: Future>(progress: Arc<Progress>, work: F) -> F::Output {
    PROGRESS.scope(progress, work).await
}

fn note(text: Option<String>) {
    // Outside an apply (plan, tests) nobody is listening.
    let _ = PROGRESS.try_with(|p| {
        p.note.send_if_modified(|n| {
            let changed = *n != text;
            n.clone_from(&text);
            changed
        })
    });
}

/// Runs `op` until it succeeds, fails for good, or its error's budget is spent.
pub async fn call<T, F, Fut>(op: F) -> Result<T, ResourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ResourceError>>,
{
    call_with(&Policy::AWS, op).await
}

/// [`call`] under `policy`.
pub async fn call_with<T, F, Fut>(policy: &Policy, mut op: F) -> Result<T, ResourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ResourceError>>,
{
    let budget = policy.budget;
    let start = Instant::now();
    let mut n = 0;
    loop {
        match op().await {
            Ok(v) => {
                if n > 0 {
                    note(None);
                }
                return Ok(v);
            }
            Err(e) if e.kind.transient() && start.elapsed() < budget(e.kind) => {
                let left = budget(e.kind).saturating_sub(start.elapsed());
                let wait = policy.pause(n).min(left).max(Duration::from_millis(1));
                let why = e.code.clone().unwrap_or_else(|| format!("{:?}", e.kind));
                tracing::info!(
                    "{}; retrying in {} ms ({} s elapsed)",
                    e.message,
                    wait.as_millis(),
                    start.elapsed().as_secs()
                );
                note(Some(format!("{why}, retrying")));
                tokio::time::sleep(wait).await;
                n += 1;
            }
            Err(e) => {
                if n > 0 {
                    note(None);
                }
                return Err(e);
            }
        }
    }
}

/// One lock per parent (an HTTP API's id, a function and qualifier): AWS
/// refuses concurrent writes to one parent, so the provisioner never makes
/// them. Process-wide, because different resources (three permissions on one
/// alias) share a parent.
static PARENTS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// Waits until no other write to `parent` is running; the guard holds it.
pub async fn serial(parent: &str) -> tokio::sync::OwnedMutexGuard<()> {
    let lock = {
        let mut parents = PARENTS.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(parents.entry(parent.to_owned()).or_default())
    };
    lock.lock_owned().await
}

/// [`call`], one write to `parent` at a time (each attempt holds the parent,
/// the pauses between attempts do not).
pub async fn write<T, F, Fut>(parent: &str, mut op: F) -> Result<T, ResourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ResourceError>>,
{
    call(|| {
        let attempt = op();
        async move {
            let _turn = serial(parent).await;
            attempt.await
        }
    })
    .await
}

/// Polls `ready` until it gives a value (or fails), backing off from 250 ms
/// to 5 s, for at most `within`; then fails naming `what`. Transient errors
/// of a poll are retried by the same policy as [`call`].
pub async fn wait_until<T, F, Fut>(
    what: &str,
    within: Duration,
    ready: F,
) -> Result<T, ResourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ResourceError>>,
{
    wait_with(&Policy::AWS, what, within, ready).await
}

/// [`wait_until`] under `policy` (polls from `first`, doubling to 5 s).
pub async fn wait_with<T, F, Fut>(
    policy: &Policy,
    what: &str,
    within: Duration,
    mut ready: F,
) -> Result<T, ResourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ResourceError>>,
{
    let start = Instant::now();
    let mut every = policy.first;
    let mut waited = false;
    let result = loop {
        match call_with(policy, &mut ready).await {
            Ok(Some(v)) => break Ok(v),
            Ok(None) if start.elapsed() < within => {
                if !waited {
                    tracing::info!("waiting until {what}");
                    note(Some(format!("waiting until {what}")));
                    waited = true;
                }
                tokio::time::sleep(every.min(within.saturating_sub(start.elapsed()))).await;
                every = (every * 2).min(Duration::from_secs(5));
            }
            Ok(None) => {
                break Err(ResourceError::new(format!(
                    "still not {what} after {} s",
                    within.as_secs_f64()
                )));
            }
            Err(e) => break Err(e),
        }
    };
    if waited {
        note(None);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The policy's shape, at a hundredth of the scale, on the real clock.
    const SMALL: Policy = Policy {
        budget: |kind| budget(kind) / 400,
        first: Duration::from_millis(2),
        cap: Duration::from_millis(40),
        floor: Duration::from_millis(1),
    };

    fn conflict() -> ResourceError {
        ResourceError::answered(
            "apigateway:CreateRoute x: ConflictException: concurrent modification",
            ErrorKind::Conflict,
            Some("ConflictException"),
        )
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_until_the_call_succeeds() {
        let tries = AtomicUsize::new(0);
        let (progress, mut seen) = Progress::new();
        let got = scoped(
            Arc::clone(&progress),
            call_with(&SMALL, || async {
                if tries.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(conflict())
                } else {
                    Ok(7)
                }
            }),
        )
        .await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(tries.load(Ordering::SeqCst), 4);
        // The note was set while retrying and cleared at the end.
        assert!(seen.has_changed().unwrap());
        assert_eq!(*seen.borrow_and_update(), None);
    }

    #[tokio::test]
    async fn a_lasting_conflict_fails_when_its_budget_is_spent() {
        let start = Instant::now();
        let tries = AtomicUsize::new(0);
        let err = call_with(&SMALL, || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(conflict())
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        let took = start.elapsed();
        let limit = (SMALL.budget)(ErrorKind::Conflict);
        assert!(took >= limit, "{took:?}");
        assert!(took < limit + SMALL.cap * 5, "{took:?}");
        assert!(tries.load(Ordering::SeqCst) > 5);
    }

    #[tokio::test]
    async fn a_final_error_is_not_retried() {
        let tries = AtomicUsize::new(0);
        let err = call(|| async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(ResourceError::answered(
                "bad",
                ErrorKind::Invalid,
                Some("BadRequestException"),
            ))
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn pauses_are_jittered_within_their_ceiling() {
        for n in 0..12 {
            for _ in 0..50 {
                let p = pause(n);
                assert!(p >= FLOOR && p <= CAP, "{n}: {p:?}");
                assert!(p <= FIRST.saturating_mul(1 << n.min(10)).max(FLOOR));
            }
        }
        let draws: std::collections::BTreeSet<Duration> = (0..50).map(|_| pause(6)).collect();
        assert!(draws.len() > 10, "not jittered: {draws:?}");
    }

    #[tokio::test]
    async fn writes_to_one_parent_never_overlap() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let writes = (0..6).map(|i| {
            let running = Arc::clone(&running);
            let most = Arc::clone(&most);
            let parent = if i % 2 == 0 {
                "test-api-a"
            } else {
                "test-api-b"
            };
            async move {
                write(parent, || {
                    let running = Arc::clone(&running);
                    let most = Arc::clone(&most);
                    async move {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, ResourceError>(())
                    }
                })
                .await
            }
        });
        futures::future::try_join_all(writes).await.unwrap();
        // Two parents: at most one write each at a time.
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_wait_ends_when_ready_or_fails_naming_what_it_waited_for() {
        let polls = AtomicUsize::new(0);
        let v = wait_with(&SMALL, "Active", Duration::from_secs(2), || async {
            Ok((polls.fetch_add(1, Ordering::SeqCst) >= 3).then_some("ok"))
        })
        .await
        .unwrap();
        assert_eq!(v, "ok");
        let err = wait_with(&SMALL, "Enabled", Duration::from_millis(50), || async {
            Ok::<Option<()>, _>(None)
        })
        .await
        .unwrap_err();
        assert!(
            err.message.contains("still not Enabled after 0.05 s"),
            "{err}"
        );
    }
}
