//! Volume, small enough for every CI run: 200 prompts through the emulator's
//! queue, the local trigger and the real worker code, 10% poison, 5% of model
//! calls throttled. `cargo bench -p provisioner --profile dev --bench volume`
//! runs the same scenario with 1000 prompts and prints the figures.

#[path = "scenarios/volume.rs"]
mod volume;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_valid_prompt_is_one_image_and_every_poison_message_dead_lettered() {
    let settings = volume::Settings::issue_10(200);
    let report = volume::run(&settings).await;
    report.print();
    volume::check(&report, &settings);
}
