//! The `provisioner` binary: parses the command line (`cli.rs` holds the
//! flags and the dispatch), sets up logging, and handles Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use provisioner::cli::Cli;

/// A closed standard output (`provisioner plan | head`) ends the process
/// quietly with 141 (128 + SIGPIPE), as it ends other Unix tools, instead of
/// a panic's backtrace: Rust ignores SIGPIPE, so that a closed socket is an
/// error the SDK can retry (a default SIGPIPE would kill the process on
/// one), and `println!` panics on the broken pipe.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn finished(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("Error: {e:#}");
        ExitCode::from(1)
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    quiet_on_closed_stdout();
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
