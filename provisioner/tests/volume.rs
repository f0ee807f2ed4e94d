//! Volume, small enough for every CI run: 200 prompts through the emulator's
//! queue, the local trigger and the real worker code, 10% poison, 5% of model
//! calls throttled. `cargo bench -p provisioner --profile dev --bench volume`
//! runs the same scenario with 1000 prompts and prints the figures.

use std::time::Duration;

// Each includer uses part of the shared scenario.
#[allow(dead_code)]
#[path = "scenarios/volume.rs"]
mod volume;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_valid_prompt_is_one_image_and_every_poison_message_dead_lettered() {
    let settings = volume::Settings::issue_10(200);
    let report = volume::run(&settings).await;
    report.print();
    volume::check(&report, &settings);
}

/// Issue 30: a burst of 10x the model's capacity, through a worker that
/// offers 5x the capacity (no capacity stated: it must find it), with one
/// receive for failures. Throttling costs no prompt: every one is a
/// picture, none in the dead-letter queue. (Figures: `cargo bench -p
/// provisioner --profile dev --bench capacity`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_above_the_models_capacity_becomes_every_picture_and_nothing_dead_lettered() {
    let settings = volume::Settings::burst(40, 4, Duration::from_millis(200), 2, 10);
    let report = volume::run(&settings).await;
    report.print_capacity(&settings);
    volume::check(&report, &settings);
    assert_eq!(report.images, 40);
    assert_eq!(report.dead_lettered, 0);
    assert!(
        report.throttled > 0,
        "the worker offered more than the capacity: some calls were throttled"
    );
}
