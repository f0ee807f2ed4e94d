//! The whole stack under injected faults: every AWS call of the provisioner
//! goes through testkit's fault proxy (20% of requests: added latency, 500,
//! 503, throttling in the service's own format, dropped connections, some
//! of them after moto carried the request out). For each seed, apply from
//! empty, an update and a destroy are re-run until they succeed; each must
//! end in the declared state with no duplicate of anything, destroy with
//! nothing left, and a failed run must say which resource and which error.
//! Seeds 1..=20 by default (COUCH_FAULT_SEEDS=N for more), ten tests in
//! parallel (the time is the SDK's back-off, not work). At 20% the SDK's
//! retries (five attempts) and the engine's policy hide every fault; a second
//! test adds outages no retry hides (1% of requests fail on each of their
//! first eight tries) and checks how failures are reported and that re-runs
//! converge.
//! Behind the fault proxy, AWS's races are played too (testkit::races, short
//! windows): conflicts, propagation, transitional states and pages.

mod common;

use common::*;
use testkit::faults::{self, Faults};
use testkit::races::{Races, Windows};

const RATE: f64 = 0.2;
const LANES: u64 = 10;
/// Runs of one command before giving up on convergence.
const MAX_RUNS: usize = 8;

fn seeds(lane: u64) -> impl Iterator<Item = u64> {
    let n: u64 = std::env::var("COUCH_FAULT_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    (1..=n).filter(move |s| s % LANES == lane)
}

/// Re-runs `args` through the proxy until it succeeds; returns how many runs
/// failed. A failed run must name a resource and the AWS error.
fn converge(f: &Fixture, proxy: &str, args: &[&str], seed: u64) -> usize {
    for run in 0..MAX_RUNS {
        // The proxy runs on this test's runtime: block another thread.
        let out = tokio::task::block_in_place(|| {
            f.command(args)
                .env("AWS_ENDPOINT_URL", proxy)
                .output()
                .expect("run provisioner")
        });
        if out.status.success() {
            return run;
        }
        let err = stderr(&out);
        let first: Vec<&str> = err
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(4)
            .collect();
        println!(
            "seed {seed}: {args:?} run {run} failed:\n    {}",
            first.join("\n    ")
        );
        if err.contains("still differs") {
            println!("{}", stdout(&out));
        }
        // A failure names the resource it hit, or the stack lock's object
        // when taking or releasing the lock failed (no resource was touched).
        assert!(
            ALL.iter().any(|a| err.contains(a)) || err.contains("the stack lock s3://"),
            "seed {seed}, {args:?} run {run}: the failure names no resource:\n{err}"
        );
        assert!(
            !err.contains("panicked"),
            "seed {seed}: the provisioner panicked:\n{err}"
        );
        // Each failing resource is reported once, not once per retry.
        for a in ALL {
            let lines = err
                .lines()
                .filter(|l| l.trim_start().starts_with(&format!("{a}:")))
                .count();
            assert!(
                lines <= 1,
                "seed {seed}: {a} reported {lines} times:\n{err}"
            );
        }
    }
    panic!("seed {seed}: {args:?} did not converge in {MAX_RUNS} runs");
}

/// Apply, update, destroy through the proxy at `rate` (and a share
/// `outages` of requests failing more often than retries hide); returns how
/// many runs failed.
async fn one_seed(seed: u64, rate: f64, outages: f64) -> usize {
    let f = Fixture::new(&format!("t-fault{seed}-")).await;
    // The stack name is unique per run: left out, the seed alone decides.
    let faults = Faults::with_outages(seed, rate, outages, &[&f.name]);
    let races = Races::with_windows(seed, Windows::quick());
    let racing = races.start(testkit::moto_endpoint()).await;
    let proxy = faults::start(&racing, faults.clone()).await;

    let failed = converge(
        &f,
        &proxy,
        &["apply", "--yes", "--approve-broadening"],
        seed,
    );
    assert_eq!(f.inventory().await, DEPLOYED, "seed {seed}: after apply");
    assert!(
        changing(&f.plan().await).is_empty(),
        "seed {seed}: apply did not reach the declared state"
    );

    f.write(300, "team@example.com");
    let failed_update = converge(
        &f,
        &proxy,
        &["apply", "--yes", "--approve-broadening"],
        seed,
    );
    assert_eq!(f.inventory().await, DEPLOYED, "seed {seed}: after update");
    assert!(changing(&f.plan().await).is_empty(), "seed {seed}: update");

    let failed_destroy = converge(&f, &proxy, &["destroy", "--yes"], seed);
    assert_eq!(
        f.inventory().await,
        Inventory::default(),
        "seed {seed}: left after destroy"
    );
    let injected = faults.injected();
    let after = injected.iter().filter(|i| i.after_upstream).count();
    println!(
        "seed {seed}: {} requests, {} faults ({after} after the emulator acted); failed runs: apply {failed}, update {failed_update}, destroy {failed_destroy}; races: {}",
        faults.requests(),
        injected.len(),
        races.played.summary()
    );
    assert!(!injected.is_empty(), "seed {seed}: no fault was injected");
    failed + failed_update + failed_destroy
}

async fn lane(lane: u64) {
    for seed in seeds(lane) {
        one_seed(seed, RATE, 0.0).await;
    }
}

lanes!(
    faults_lane_0 = 0,
    faults_lane_1 = 1,
    faults_lane_2 = 2,
    faults_lane_3 = 3,
    faults_lane_4 = 4,
    faults_lane_5 = 5,
    faults_lane_6 = 6,
    faults_lane_7 = 7,
    faults_lane_8 = 8,
    faults_lane_9 = 9
);

/// Faults no retry hides (1% of requests fail on each of their first eight
/// occurrences, on top of 35% transient faults): runs fail, each failure
/// names the resource and the AWS error once, and re-running converges.
/// (The engine's retry policy hides nearly every transient fault, so the
/// rate alone no longer made a run fail.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retries_cannot_hide_are_reported_and_the_next_run_converges() {
    let failed = one_seed(101, 0.35, 0.01).await;
    assert!(
        failed > 0,
        "no run failed: the reporting path was not exercised"
    );
}
