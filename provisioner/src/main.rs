//! Command line of the provisioner: parses arguments and hands over to
//! `provisioner::commands`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use provisioner::commands;

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

#[derive(Subcommand)]
enum Command {
    /// Parse and check a stack file; no AWS call.
    Validate {
        #[arg(long, short)]
        stack: PathBuf,
    },
    /// Read the live state, diff it against the stack and print the plan.
    Plan {
        #[arg(long, short)]
        stack: PathBuf,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 2 when the plan has changes (0: none, 1: error).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Diff against an empty account without any AWS call.
        #[arg(long)]
        offline: bool,
        /// Print how many AWS calls the plan made, and how many were sequential.
        #[arg(long)]
        stats: bool,
        /// Also save the plan (JSON) to this file, for `apply --plan`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Plan, confirm, and bring the account to the declared state.
    Apply {
        #[arg(long, short)]
        stack: PathBuf,
        /// Do not ask for confirmation (also: CI=true).
        #[arg(long)]
        yes: bool,
        /// Take over same-named resources that lack this stack's ownership tags.
        #[arg(long)]
        adopt: bool,
        /// Apply a plan saved by `plan --out`, only if a fresh plan still makes exactly
        /// the same changes (no confirmation: it was reviewed when saved).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Grant the permission changes the plan marks [broadening] without
        /// asking (--yes never does; a saved plan that contains them does).
        #[arg(long)]
        approve_broadening: bool,
    },
    /// Delete every resource the stack owns, dependents first.
    Destroy {
        #[arg(long, short)]
        stack: PathBuf,
        #[arg(long)]
        yes: bool,
    },
    /// Print the deployed stack's identifiers (queue URL, ARNs, ...).
    Outputs {
        #[arg(long, short)]
        stack: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Create or adopt GitHub's OIDC provider and the stack's three roles for
    /// the `infrastructure` workflow: a plan role (any branch or pull request
    /// of the repository; read-only), an apply role (main and the `production`
    /// environment) and a preview role (pull requests; only the stacks named
    /// `{name}-pr-*`), with policies derived from the stack. Prints their ARNs.
    Bootstrap {
        #[arg(long, short)]
        stack: PathBuf,
        /// The repository whose workflows may assume the roles.
        #[arg(long, value_name = "OWNER/NAME")]
        github_repo: String,
        /// Do not ask for confirmation (also: CI=true).
        #[arg(long)]
        yes: bool,
        /// Grant the roles' new permissions without asking (every new role
        /// broadens what someone may do).
        #[arg(long)]
        approve_broadening: bool,
    },
    /// Both functions' log lines, interleaved by time and marked with their
    /// function; `--id` follows one prompt across both.
    Logs {
        #[arg(long, short)]
        stack: PathBuf,
        /// Only this function's lines.
        #[arg(value_enum)]
        function: Option<commands::logs::Function>,
        /// How far back: 30s, 10m, 2h, 1d.
        #[arg(long, default_value = "10m", value_parser = commands::logs::parse_since)]
        since: std::time::Duration,
        /// Keep printing new lines until Ctrl-C.
        #[arg(long)]
        follow: bool,
        /// Only lines containing this text.
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
        /// Only one prompt's lines: its message id or request id.
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// Each line as written (with its function and timestamp).
        #[arg(long)]
        json: bool,
    },
    /// Move each function's `live` alias (or one's) back to the version before
    /// the one it serves, without building. The next apply moves it forward.
    Rollback {
        #[arg(long, short)]
        stack: PathBuf,
        /// Only this function.
        #[arg(value_enum)]
        function: Option<commands::logs::Function>,
    },
    /// Invoke each function's `live` alias with the health check (its
    /// configuration, a write under the prefix, the model's family; no model
    /// call), as apply does on each new version. Exit 1 when one fails.
    Verify {
        #[arg(long, short)]
        stack: PathBuf,
        /// Also send one real prompt through the queue and one through the
        /// HTTP API and wait for both pictures (two model calls, billed).
        #[arg(long)]
        end_to_end: bool,
        /// With --end-to-end: POST to this URL instead of the deployed API
        /// (e.g. `provisioner local`'s).
        #[arg(long, value_name = "URL", requires = "end_to_end")]
        api_url: Option<String>,
        /// With --end-to-end: seconds to wait for each picture.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// How the deployed system is doing: queues, the dead-letter queue, every
    /// alarm, the functions' last hour. Exit 3 when an alarm is in ALARM or
    /// the dead-letter queue is not empty.
    Status {
        #[arg(long, short)]
        stack: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Send the dead-lettered prompts back to the prompts queue (SQS's message
    /// move task), with progress; Ctrl-C cancels what is not moved yet.
    Redrive {
        #[arg(long, short)]
        stack: PathBuf,
        /// At most this many messages a second (1..500; default: SQS chooses).
        #[arg(long, value_name = "N")]
        max_per_second: Option<u32>,
        /// Do not ask for confirmation (also: CI=true).
        #[arg(long)]
        yes: bool,
    },
    /// Print every IAM policy document the stack and its bootstrap roles
    /// would carry (trust, inline and resource policies), with the ARNs AWS
    /// will derive. With --account, no AWS call is made.
    Policies {
        #[arg(long, short)]
        stack: PathBuf,
        /// Include the CI roles' trust policies for this repository.
        #[arg(long, value_name = "OWNER/NAME")]
        github_repo: Option<String>,
        /// The account the ARNs name (otherwise: one sts:GetCallerIdentity).
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Leave an old CloudFormation (SAM) stack: show what it holds and what
    /// replaces it, refuse while this stack is not fully deployed, then delete
    /// it keeping the --retain'ed resources. Without --yes, a dry run.
    Retire {
        #[arg(long, short)]
        stack: PathBuf,
        /// The old CloudFormation stack's name.
        #[arg(long, value_name = "NAME")]
        cloudformation_stack: String,
        /// Keep this resource (its logical id in the old stack); repeatable.
        #[arg(long, value_name = "LOGICAL_ID")]
        retain: Vec<String>,
        /// Delete the old stack (otherwise: a dry run).
        #[arg(long)]
        yes: bool,
    },
    /// Write the stack as a CloudFormation template (same physical names,
    /// settings, tags and IAM policies); no AWS call. Says which local zip
    /// belongs at each code location.
    Export {
        #[arg(long, short)]
        stack: PathBuf,
        #[arg(long, value_enum)]
        format: commands::export::Format,
        /// Write the template here [default: standard output].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The S3 bucket the function zips are uploaded to.
        #[arg(long, value_name = "BUCKET")]
        code_bucket: String,
        /// Key prefix: code lives at {PREFIX}/{function}/{CodeSha256 as hex}.zip.
        #[arg(long, value_name = "PREFIX", default_value = "")]
        code_prefix: String,
    },
    /// Remove the stack's lock left by a run that is gone: a stale lock (its
    /// lease lapsed) always, a live one only with --force.
    Unlock {
        #[arg(long, short)]
        stack: PathBuf,
        /// Remove it even though its holder renewed it recently.
        #[arg(long)]
        force: bool,
    },
    /// List the image models Bedrock offers in a Region (lifecycle, whether
    /// the functions speak their family), marking the one the stack declares.
    Models {
        /// The Region [default: the stack's model.region, else us-west-2].
        #[arg(long)]
        region: Option<String>,
        /// Mark this stack file's model (and default to its model.region).
        #[arg(long, short)]
        stack: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Run the deployed stack's functions on this machine against the emulator
    /// (AWS_ENDPOINT_URL): cargo lambda watch serves them, a local trigger feeds
    /// the worker from the queue, a local API Gateway serves the HTTP route.
    Local {
        #[arg(long, short)]
        stack: PathBuf,
        /// Port of the local HTTP API.
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Port of cargo-lambda's emulated Lambda API.
        #[arg(long, default_value_t = 9000)]
        lambda_port: u16,
        /// The model the functions call (e.g. the printed endpoint of `model-standin`).
        #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME")]
        model_endpoint: Option<String>,
        /// The cargo-lambda executable [default: .venv/bin/cargo-lambda, else on PATH].
        #[arg(long, value_name = "PATH")]
        cargo_lambda: Option<PathBuf>,
        /// Do not build the functions first (they are built on first invocation).
        #[arg(long)]
        no_build: bool,
    },
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let artifacts = cli.artifacts;
    let name = cli.name;
    let lock_timeout = std::time::Duration::from_secs(cli.lock_timeout);
    let inputs = |needs_code| commands::Inputs {
        artifacts: artifacts.clone(),
        name: name.clone(),
        needs_code,
        lock_timeout,
    };
    match cli.command {
        Command::Validate { stack } => commands::validate::run(&stack, &inputs(false)),
        Command::Plan {
            stack,
            json,
            detailed_exitcode,
            offline,
            stats,
            out,
        } => {
            let args = commands::plan::Args {
                json,
                detailed_exitcode,
                offline,
                stats,
                out,
            };
            commands::plan::run(&stack, &args, &inputs(!offline)).await
        }
        Command::Apply {
            stack,
            yes,
            adopt,
            plan,
            approve_broadening,
        } => {
            let args = commands::apply::Args {
                yes,
                adopt,
                plan,
                approve_broadening,
            };
            commands::apply::run(&stack, &args, &inputs(true)).await
        }
        Command::Destroy { stack, yes } => {
            commands::destroy::run(&stack, yes, &inputs(false)).await
        }
        Command::Outputs { stack, json } => {
            commands::outputs::run(&stack, json, &inputs(false)).await
        }
        Command::Bootstrap {
            stack,
            github_repo,
            yes,
            approve_broadening,
        } => {
            let args = commands::bootstrap::Args {
                github_repo,
                yes,
                approve_broadening,
            };
            commands::bootstrap::run(&stack, &args, &inputs(false)).await
        }
        Command::Retire {
            stack,
            cloudformation_stack,
            retain,
            yes,
        } => {
            let args = commands::retire::Args {
                cloudformation_stack,
                retain,
                yes,
            };
            commands::retire::run(&stack, &args, &inputs(false)).await
        }
        Command::Export {
            stack,
            format,
            out,
            code_bucket,
            code_prefix,
        } => {
            let args = commands::export::Args {
                format,
                out,
                code: provisioner::cloudformation::CodeLocation {
                    bucket: code_bucket,
                    prefix: code_prefix,
                },
            };
            commands::export::run(&stack, &args, &inputs(true)).await
        }
        Command::Unlock { stack, force } => {
            commands::unlock::run(&stack, force, &inputs(false)).await
        }
        Command::Logs {
            stack,
            function,
            since,
            follow,
            filter,
            id,
            json,
        } => {
            let args = commands::logs::Args {
                function,
                since,
                follow,
                filter,
                id,
                json,
            };
            commands::logs::run(&stack, &args, &inputs(false)).await
        }
        Command::Rollback { stack, function } => {
            commands::rollback::run(&stack, function, &inputs(false)).await
        }
        Command::Verify {
            stack,
            end_to_end,
            api_url,
            timeout,
        } => {
            let args = commands::verify::Args {
                end_to_end,
                api_url,
                timeout: std::time::Duration::from_secs(timeout),
            };
            commands::verify::run(&stack, &args, &inputs(false)).await
        }
        Command::Status { stack, json } => {
            let args = commands::status::Args { json };
            commands::status::run(&stack, &args, &inputs(false)).await
        }
        Command::Redrive {
            stack,
            max_per_second,
            yes,
        } => {
            let args = commands::redrive::Args {
                max_per_second,
                yes,
            };
            commands::redrive::run(&stack, &args, &inputs(false)).await
        }
        Command::Policies {
            stack,
            github_repo,
            account,
            json,
        } => {
            let args = commands::policies::Args {
                github_repo,
                account,
                json,
            };
            commands::policies::run(&stack, &args, &inputs(false)).await
        }
        Command::Models {
            region,
            stack,
            json,
        } => {
            let args = commands::models::Args {
                region,
                stack,
                json,
            };
            commands::models::run(&args, name.as_deref()).await
        }
        Command::Local {
            stack,
            port,
            lambda_port,
            model_endpoint,
            cargo_lambda,
            no_build,
        } => {
            let args = commands::local::Args {
                port,
                lambda_port,
                model_endpoint,
                cargo_lambda,
                no_build,
            };
            commands::local::run(&stack, &args, &inputs(false)).await
        }
    }
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
        Command::Local { .. } | Command::Redrive { .. } | Command::Logs { .. }
    ) {
        return match run(cli).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("Error: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    tokio::select! {
        result = run(cli) => match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("Error: {e:#}");
                ExitCode::from(1)
            }
        },
        _ = tokio::signal::ctrl_c() => {
            provisioner::lock::release_held().await;
            eprintln!("\nInterrupted. Operations in flight may or may not have completed; run the same command again: it reads the live state and converges.");
            ExitCode::from(130)
        }
    }
}
