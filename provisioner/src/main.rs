//! The `provisioner` binary: parses the command line (`cli.rs` holds the
//! flags and the dispatch), sets up logging, and handles Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use provisioner::cli::Cli;

fn finished(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("Error: {e:#}");
        ExitCode::from(1)
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // Warnings, and each step of a traffic shift.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,provisioner::aws::aliases=info")
                }),
        )
        .init();
    let cli = Cli::parse();
    if cli.handles_interrupt() {
        return finished(cli.run().await);
    }
    tokio::select! {
        result = cli.run() => finished(result),
        _ = tokio::signal::ctrl_c() => {
            provisioner::lock::release_held().await;
            eprintln!("\nInterrupted. Operations in flight may or may not have completed; run the same command again: it reads the live state and converges.");
            ExitCode::from(130)
        }
    }
}
