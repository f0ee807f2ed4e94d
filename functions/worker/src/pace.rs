//! How fast the worker calls the model: an additive-increase,
//! multiplicative-decrease limit on the calls one instance has in flight
//! ([`Limiter`]), and jittered exponential back-off that honours an
//! answer's `Retry-After` ([`Backoff`]).
//!
//! AWS's advice for a throttled caller is retries "using exponential backoff
//! with jitter" (AWS SDKs and Tools reference guide, "Retry behavior":
//! https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html);
//! Bedrock answers what exceeds an account's quota with
//! `ThrottlingException` (bedrock/latest/userguide/troubleshooting-api-error-codes.html).
//! The limit is the congestion control TCP uses: start at one call and
//! grow by one per success until the first throttle (slow start), cut to
//! [`DECREASE`] of itself on a throttle, then grow by one call per
//! [`PROBE_ROUNDS`] rounds of successes; never above the stack's derived share of the model's
//! capacity (`WORKER_CONCURRENCY`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::Notify;

/// Back-off before retry `attempt` (0 = the first retry): a random wait in
/// `[0, min(cap, base x 2^attempt)]` ("full jitter"), but never shorter
/// than the answer's `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// Within one invocation: 250 ms doubling up to 8 s.
    pub const IN_INVOCATION: Backoff = Backoff {
        base: Duration::from_millis(250),
        cap: Duration::from_secs(8),
    };

    /// The ceiling of the wait before retry `attempt`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry `attempt`, with `unit` in `[0, 1]` the jitter
    /// (a random draw; a parameter so tests can pin it).
    pub fn wait_with(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let jittered = self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0));
        retry_after.map_or(jittered, |after| jittered.max(after))
    }

    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.wait_with(attempt, retry_after, rand::rng().random::<f64>())
    }
}

/// The visibility delay of a record returned to the queue on its
/// `receives`-th receive because it was throttled: 2 s doubling per receive
/// up to 15 minutes, the upper half jittered (`[d/2, d]`) so returned
/// records do not come back together. SQS allows up to 12 hours
/// (`ChangeMessageVisibility`, sqs/latest/APIReference/API_ChangeMessageVisibility.html).
pub fn return_delay_with(receives: u32, unit: f64) -> Duration {
    let full = Duration::from_secs(2)
        .saturating_mul(2u32.saturating_pow(receives.saturating_sub(1).min(20)))
        .min(MAX_RETURN_DELAY);
    full.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// The longest [`return_delay_with`].
pub const MAX_RETURN_DELAY: Duration = Duration::from_secs(900);

pub fn return_delay(receives: u32) -> Duration {
    return_delay_with(receives, rand::rng().random::<f64>())
}

#[derive(Debug)]
struct State {
    /// The current limit (fractional: additive increase adds 1/limit).
    limit: f64,
    in_flight: usize,
    /// When the limit was last cut: throttles answered for calls sent
    /// before then do not cut it again.
    last_decrease: Option<Instant>,
    /// Before the first throttle the limit grows by one call per success
    /// (it doubles every round, TCP's slow start) from 1; after, by one
    /// call per [`PROBE_ROUNDS`] rounds of successes.
    slow_start: bool,
    /// Below one call at once, the limit paces: after a call of duration
    /// d, the next starts no sooner than d x (1/limit - 1) later.
    next_start: Option<Instant>,
}

/// The lowest limit: one call every ten calls' time. A stack whose trigger
/// runs more instances than the model has places (no capacity stated) needs
/// each below one call at once, or one of them is always throttled.
pub const MIN_LIMIT: f64 = 0.1;

/// What a success adds to a paced limit (below one call at once).
pub const PACED_STEP: f64 = 0.05;

/// Rounds of successes (a round: `limit` calls) per call the limit grows
/// after the first throttle: each growth past the capacity costs a
/// throttled call, so probing slowly keeps throttles a small share.
pub const PROBE_ROUNDS: f64 = 4.0;

/// What a throttle leaves of the limit: 0.7 (TCP's halving would leave a
/// worker at half the capacity it just had for many rounds; a gentler cut
/// keeps it near the capacity and still backs off within a few throttles).
pub const DECREASE: f64 = 0.7;

/// The calls to the model one instance makes at once: at most `max`, and
/// fewer after throttles (additive increase, multiplicative decrease).
#[derive(Debug)]
pub struct Limiter {
    max: usize,
    state: Mutex<State>,
    freed: Notify,
}

/// A call's place under the limit; dropping it frees the place.
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a Limiter,
    /// When the call started (a throttle it meets cuts the limit only if
    /// no halving happened since).
    pub started: Instant,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.limiter.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.limit < 1.0 {
            let took = self.started.elapsed();
            s.next_start = Some(Instant::now() + took.mul_f64(1.0 / s.limit - 1.0));
        }
        drop(s);
        self.limiter.freed.notify_waiters();
    }
}

impl Limiter {
    /// At most `max` calls, all of them from the start (the stack's stated
    /// capacity guarantees they fit); cut on throttles all the same.
    pub fn new(max: usize) -> Limiter {
        Limiter::starting_at(max, max as f64, false)
    }

    /// At most `max` calls, starting from one in slow start: for a model
    /// whose capacity is not stated.
    pub fn adaptive(max: usize) -> Limiter {
        Limiter::starting_at(max, 1.0, true)
    }

    fn starting_at(max: usize, limit: f64, slow_start: bool) -> Limiter {
        let max = max.max(1);
        Limiter {
            max,
            state: Mutex::new(State {
                limit: limit.clamp(1.0, max as f64),
                in_flight: 0,
                last_decrease: None,
                slow_start,
                next_start: None,
            }),
            freed: Notify::new(),
        }
    }

    /// The whole calls a fractional limit allows (1 at least; a hair of
    /// float error does not cost a call).
    fn whole(&self, limit: f64) -> usize {
        ((limit + 1e-9).floor() as usize).clamp(1, self.max)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The calls allowed at once now (at least 1; below one, paced).
    pub fn limit(&self) -> usize {
        self.whole(self.lock().limit)
    }

    /// The fractional limit (below 1: one call, paced).
    pub fn pace(&self) -> f64 {
        self.lock().limit
    }

    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Waits for a place under the limit.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check: a release between the check and
            // the wait still wakes this waiter.
            freed.as_mut().enable();
            let wait_until = {
                let mut s = self.lock();
                let limit = self.whole(s.limit);
                let now = Instant::now();
                match s.next_start {
                    Some(at) if s.limit < 1.0 && now < at => Some(at),
                    _ if s.in_flight < limit => {
                        s.in_flight += 1;
                        s.next_start = None;
                        return Permit {
                            limiter: self,
                            started: now,
                        };
                    }
                    _ => None,
                }
            };
            match wait_until {
                // Paced: until the next start, or a release (which may
                // change the pace).
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = freed => {}
                    }
                }
                None => freed.await,
            }
        }
    }

    /// A call succeeded: in slow start one more call; after, one more
    /// call per [`PROBE_ROUNDS`] rounds of successes.
    pub fn succeeded(&self) {
        let mut s = self.lock();
        let step = if s.slow_start {
            1.0
        } else if s.limit < 1.0 {
            // Paced: back toward one call at once by a twentieth of a call
            // per success (instances sharing too few places probe slowly).
            PACED_STEP
        } else {
            1.0 / (s.limit * PROBE_ROUNDS)
        };
        s.limit = (s.limit + step).min(self.max as f64);
    }

    /// A call started at `started` was throttled: the limit is cut to
    /// [`DECREASE`] of itself (not below [`MIN_LIMIT`]: under one, calls
    /// are paced), once per round of calls.
    pub fn throttled(&self, started: Instant) {
        let mut s = self.lock();
        if s.last_decrease.is_some_and(|at| started < at) {
            return;
        }
        s.slow_start = false;
        s.limit = (s.limit * DECREASE).max(MIN_LIMIT);
        s.last_decrease = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn back_off_doubles_to_its_cap_with_full_jitter() {
        let b = Backoff::IN_INVOCATION;
        let ceilings: Vec<u64> = (0..8).map(|a| b.ceiling(a).as_millis() as u64).collect();
        assert_eq!(ceilings, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(b.wait_with(3, None, 0.0), Duration::ZERO);
        assert_eq!(b.wait_with(3, None, 0.5), Duration::from_millis(1000));
        assert_eq!(b.wait_with(3, None, 1.0), Duration::from_millis(2000));
        // Retry-After is a floor, whatever the draw.
        assert_eq!(
            b.wait_with(0, Some(Duration::from_secs(3)), 0.9),
            Duration::from_secs(3)
        );
        assert_eq!(
            b.wait_with(6, Some(Duration::from_secs(1)), 1.0),
            Duration::from_secs(8)
        );
        assert_eq!(b.ceiling(u32::MAX), b.cap, "no overflow");
        for _ in 0..100 {
            assert!(b.wait(2, None) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn a_returned_record_waits_longer_each_receive_up_to_fifteen_minutes() {
        let full: Vec<u64> = (1..=12)
            .map(|r| return_delay_with(r, 1.0).as_secs())
            .collect();
        assert_eq!(full, [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]);
        assert_eq!(return_delay_with(1, 0.0), Duration::from_secs(1));
        assert_eq!(return_delay_with(0, 1.0), Duration::from_secs(2));
        assert_eq!(return_delay_with(u32::MAX, 1.0), MAX_RETURN_DELAY);
        for r in 1..30 {
            let d = return_delay(r);
            assert!(
                d <= MAX_RETURN_DELAY && d >= Duration::from_secs(1),
                "{d:?}"
            );
        }
    }

    #[test]
    fn throttles_cut_the_limit_once_per_round_and_successes_grow_it_back() {
        let l = Limiter::adaptive(8);
        // Slow start: from one call, one more per success.
        assert_eq!(l.limit(), 1);
        for _ in 0..20 {
            l.succeeded();
        }
        assert_eq!(l.limit(), 8, "never above the maximum");
        let before = Instant::now();
        l.throttled(before);
        assert_eq!(l.limit(), 5, "8 x 0.7");
        // A second throttle of a call sent before the cut: no new cut.
        l.throttled(before);
        assert_eq!(l.limit(), 5);
        l.throttled(Instant::now());
        assert_eq!(l.limit(), 3, "5.6 x 0.7");
        for _ in 0..10 {
            l.throttled(Instant::now());
        }
        assert_eq!(l.limit(), 1, "never below one call");
        // After a throttle: about one call more per PROBE_ROUNDS rounds
        // (a round: `limit` successes): 4 x (2² - 1²) / 2 = 6 from one to
        // two, 4 x (3² - 2²) / 2 = 10 from two to three.
        let successes_to = |l: &Limiter, target: usize| {
            let mut n = 0;
            while l.limit() < target {
                l.succeeded();
                n += 1;
            }
            n
        };
        // Ten cuts took it below one (paced); back to one call at once
        // first, then about 6 more from one to two.
        assert!(l.pace() < 1.0, "{}", l.pace());
        while l.pace() < 1.0 {
            l.succeeded();
        }
        let to_two = successes_to(&l, 2);
        assert!((5..=7).contains(&to_two), "{to_two}");
        let to_three = successes_to(&l, 3);
        assert!((9..=11).contains(&to_three), "{to_three}");
        for _ in 0..1000 {
            l.succeeded();
        }
        assert_eq!(l.limit(), 8, "never above the maximum");
        assert_eq!(Limiter::new(0).limit(), 1);
    }

    #[tokio::test]
    async fn below_one_call_the_calls_are_paced() {
        let l = Limiter::new(1);
        // Two cuts: 0.49 of a call: after a call of d, d x (1/0.49 - 1) idle.
        l.throttled(Instant::now());
        l.throttled(Instant::now());
        assert!((l.pace() - 0.49).abs() < 1e-9, "{}", l.pace());
        let p = l.acquire().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(p);
        let freed = Instant::now();
        let _p = l.acquire().await;
        let idle = freed.elapsed();
        assert!(
            idle >= Duration::from_millis(100) && idle < Duration::from_millis(300),
            "{idle:?}"
        );
        // Successes bring it back toward one call at once, a twentieth each.
        for _ in 0..11 {
            l.succeeded();
        }
        assert!(l.pace() >= 1.0, "{}", l.pace());
        for _ in 0..40 {
            l.throttled(Instant::now());
        }
        assert!((l.pace() - MIN_LIMIT).abs() < 1e-9);
    }

    /// The most calls `n` tasks had under `l` at once.
    async fn most_at_once(l: &Arc<Limiter>, n: usize) -> usize {
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (l, now, most) = (Arc::clone(l), Arc::clone(&now), Arc::clone(&most));
                tokio::spawn(async move {
                    let _p = l.acquire().await;
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        most.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn no_more_calls_than_the_limit_are_in_flight() {
        let l = Arc::new(Limiter::new(3));
        assert_eq!(most_at_once(&l, 12).await, 3);
        assert_eq!(l.in_flight(), 0);
        // After a throttle, fewer.
        l.throttled(Instant::now());
        assert_eq!(most_at_once(&l, 6).await, 2, "3 x 0.7");
    }
}
