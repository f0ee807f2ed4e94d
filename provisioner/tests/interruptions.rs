//! The provisioner binary SIGKILLed at seeded moments spread over a
//! full-stack apply (and over a destroy), then run again: it converges, with
//! no duplicate of anything and nothing unowned; a killed destroy, re-run,
//! leaves nothing. A moment is "after the k-th completed change, plus a
//! seeded delay": k runs over every change of the run (the apply makes 14,
//! the destroy 14), so the moments cover the whole run whatever the
//! machine's speed. COUCH_KILL_SEEDS (default 20) seeds.

mod common;

use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use provisioner::engine::Action;
use testkit::races::{Races, Windows};

const LANES: u64 = 5;
/// Changes in a full apply or destroy of the stack.
const CHANGES: u64 = MANAGED as u64;

fn seeds() -> u64 {
    std::env::var("COUCH_KILL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// Seed `seed`'s moment: after `k` completed changes (0..CHANGES, spread over
/// the seeds) and `delay` more.
fn moment(seed: u64) -> (u64, Duration) {
    let k = (seed - 1) * CHANGES / seeds();
    let mixed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let delay = Duration::from_millis((mixed >> 33) % 120);
    (k, delay)
}

/// Runs `args`, SIGKILLs the process after `k` completed changes and
/// `delay`; says whether it was still running then.
fn run_killed(f: &Fixture, args: &[&str], (k, delay): (u64, Duration)) -> bool {
    let mut child = f
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn provisioner");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut completed = 0;
    while completed < k {
        match lines.next() {
            Some(Ok(line)) if line.contains(" complete after ") => completed += 1,
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    // Keep reading (a full pipe would stall the child) while waiting.
    let drain = std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(delay);
    let running = child.try_wait().ok().flatten().is_none();
    child.kill().ok(); // SIGKILL
    child.wait().ok();
    drain.join().ok();
    running
}

async fn one_seed(seed: u64) {
    let races = Races::with_windows(seed, Windows::quick());
    let racing = races.start(testkit::moto_endpoint()).await;
    let mut f = Fixture::new(&format!("t-kill{seed}-")).await;
    // The binary goes through the races; the test's own reads go to moto.
    f.endpoint = racing;
    let at = moment(seed);
    let killed = tokio::task::block_in_place(|| {
        run_killed(&f, &["apply", "--yes", "--approve-broadening"], at)
    });
    assert_ok(&tokio::task::block_in_place(|| {
        f.cli(&["apply", "--yes", "--approve-broadening"])
    }));
    assert_eq!(
        f.inventory().await,
        DEPLOYED,
        "seed {seed}: after the re-run apply"
    );
    let plan = f.plan().await;
    assert!(changing(&plan).is_empty(), "seed {seed}: not converged");
    assert!(
        !plan.changes.iter().any(|c| c.action == Action::NotOwned),
        "seed {seed}: unowned resources: {:?}",
        actions(&plan)
    );

    let at_destroy = at;
    let killed_destroy =
        tokio::task::block_in_place(|| run_killed(&f, &["destroy", "--yes"], at_destroy));
    assert_ok(&tokio::task::block_in_place(|| {
        f.cli(&["destroy", "--yes"])
    }));
    assert_eq!(
        f.inventory().await,
        Inventory::default(),
        "seed {seed}: left after destroy"
    );
    println!(
        "seed {seed}: apply and destroy killed after {} changes + {} ms{}{}; races: {}",
        at.0,
        at.1.as_millis(),
        if killed { "" } else { " (apply had finished)" },
        if killed_destroy {
            ""
        } else {
            " (destroy had finished)"
        },
        races.played.summary()
    );
}

async fn lane(lane: u64) {
    for seed in (1..=seeds()).filter(|s| s % LANES == lane) {
        one_seed(seed).await;
    }
}

lanes!(
    kill_lane_0 = 0,
    kill_lane_1 = 1,
    kill_lane_2 = 2,
    kill_lane_3 = 3,
    kill_lane_4 = 4
);
