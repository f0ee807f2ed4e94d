//! Command line of the provisioner: the global flags, and one subcommand per
//! verb whose flags are that verb's `Args` (`commands/<verb>.rs`). This file
//! only parses and dispatches.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use provisioner::commands::{self, Inputs};

#[derive(Parser)]
#[command(
    name = "provisioner",
    version,
    about = "Plan and apply the Couch Explorers stack on AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where the function zips are: {DIR}/image-worker/bootstrap.zip and
    /// {DIR}/image-http/bootstrap.zip, as `scripts/build-functions` makes them.
    #[arg(long, global = true, value_name = "DIR", default_value = provisioner::artifacts::DEFAULT_DIR)]
    artifacts: PathBuf,
    /// Use this stack name instead of the file's `name` (e.g. a preview stack
    /// `couch-pr-42`): every physical name derives from it.
    #[arg(long, global = true, value_name = "NAME")]
    name: Option<String>,
    /// How long apply, destroy, bootstrap and retire --yes wait for the stack
    /// lock another run holds (0: fail at once).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = provisioner::lock::DEFAULT_TIMEOUT.as_secs())]
    lock_timeout: u64,
}

/// Each verb's help is its `Args`' doc comment.
#[derive(Subcommand)]
enum Command {
    Validate(commands::validate::Args),
    Plan(commands::plan::Args),
    Apply(commands::apply::Args),
    Destroy(commands::destroy::Args),
    Outputs(commands::outputs::Args),
    Bootstrap(commands::bootstrap::Args),
    Logs(commands::logs::Args),
    Rollback(commands::rollback::Args),
    Verify(commands::verify::Args),
    Status(commands::status::Args),
    Redrive(commands::redrive::Args),
    Policies(commands::policies::Args),
    Retire(commands::retire::Args),
    Export(commands::export::Args),
    Unlock(commands::unlock::Args),
    Models(commands::models::Args),
    Local(commands::local::Args),
}

impl Cli {
    /// What every verb that reads the account is given; `needs_code`: the
    /// verb deploys code, so missing zips are an error before any AWS call.
    fn inputs(&self, needs_code: bool) -> Inputs {
        Inputs {
            artifacts: self.artifacts.clone(),
            name: self.name.clone(),
            needs_code,
            lock_timeout: Duration::from_secs(self.lock_timeout),
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let read = cli.inputs(false);
    match &cli.command {
        Command::Validate(a) => commands::validate::run(a, &read),
        Command::Plan(a) => commands::plan::run(a, &cli.inputs(!a.offline)).await,
        Command::Apply(a) => commands::apply::run(a, &cli.inputs(true)).await,
        Command::Destroy(a) => commands::destroy::run(a, &read).await,
        Command::Outputs(a) => commands::outputs::run(a, &read).await,
        Command::Bootstrap(a) => commands::bootstrap::run(a, &read).await,
        Command::Logs(a) => commands::logs::run(a, &read).await,
        Command::Rollback(a) => commands::rollback::run(a, &read).await,
        Command::Verify(a) => commands::verify::run(a, &read).await,
        Command::Status(a) => commands::status::run(a, &read).await,
        Command::Redrive(a) => commands::redrive::run(a, &read).await,
        Command::Policies(a) => commands::policies::run(a, &read).await,
        Command::Retire(a) => commands::retire::run(a, &read).await,
        Command::Export(a) => commands::export::run(a, &cli.inputs(true)).await,
        Command::Unlock(a) => commands::unlock::run(a, &read).await,
        Command::Models(a) => commands::models::run(a, cli.name.as_deref()).await,
        Command::Local(a) => commands::local::run(a, &read).await,
    }
}

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
    // `local` stops what it started on Ctrl-C itself; `redrive` cancels its
    // move task; `logs --follow` just stops.
    if matches!(
        cli.command,
        Command::Local(_) | Command::Redrive(_) | Command::Logs(_)
    ) {
        return finished(run(cli).await);
    }
    tokio::select! {
        result = run(cli) => finished(result),
        _ = tokio::signal::ctrl_c() => {
            provisioner::lock::release_held().await;
            eprintln!("\nInterrupted. Operations in flight may or may not have completed; run the same command again: it reads the live state and converges.");
            ExitCode::from(130)
        }
    }
}
