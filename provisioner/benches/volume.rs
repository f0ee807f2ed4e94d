//! 1000 prompts through the emulator's queue, the local SQS trigger and the
//! real worker code (real S3 and Bedrock clients; moto and the model stand-in),
//! 10% poison messages, 5% of model calls throttled. Prints images per second
//! and model calls per image, and checks what `tests/volume.rs` checks.
//! `cargo bench -p provisioner --profile dev --bench volume` (PROMPTS=N to change).

// Each includer uses part of the shared scenario.
#[allow(dead_code)]
#[path = "../tests/scenarios/volume.rs"]
mod volume;

fn main() {
    let prompts = std::env::var("PROMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let settings = volume::Settings::issue_10(prompts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = rt.block_on(volume::run(&settings));
    report.print();
    volume::check(&report, &settings);
}
