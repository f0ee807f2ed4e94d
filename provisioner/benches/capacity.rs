//! Issue 30's load benchmark, as a ratio to the physical limit: a burst of
//! 100 prompts (25x the capacity) through the emulator's queue, the local
//! SQS trigger and the real worker code against the model stand-in with a
//! capacity of 4 calls in flight x 1 s each. Three configurations in the
//! same run: the capacity stated (`model.max_in_flight: 4`, so the trigger
//! runs 2 workers x 2 calls) and not stated (10 calls per worker: the
//! worker must find the capacity from throttles), with 2 workers and with
//! the default stack's 5 (more workers than the model has places). Prints images made,
//! prompts dead-lettered, throttled calls per image, the drain time against
//! the ideal (prompts x latency / capacity), throughput as a fraction of
//! capacity and the p50/p99 prompt-to-picture latency; checks that every
//! prompt is a picture and none is dead-lettered.
//! `cargo bench -p provisioner --profile dev --bench capacity` (PROMPTS=N).

use std::time::Duration;

// Each includer uses part of the shared scenario.
#[allow(dead_code)]
#[path = "../tests/scenarios/volume.rs"]
mod volume;

fn main() {
    let prompts = std::env::var("PROMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let latency = Duration::from_secs(1);
    // Adaptive twice: fewer instances than the model's places (2), and the
    // default stack's 5 (each must go below one call at once: paced).
    for (label, pollers, per_worker) in [
        ("stated", 2, 2),
        ("adaptive", 2, 10),
        ("adaptive, 5 instances", 5, 10),
    ] {
        let settings = volume::Settings::burst(prompts, 4, latency, pollers, per_worker);
        let report = rt.block_on(volume::run(&settings));
        print!("{label}: ");
        report.print_capacity(&settings);
        volume::check(&report, &settings);
        assert_eq!(report.dead_lettered, 0, "{label}: prompts dead-lettered");
    }
}
