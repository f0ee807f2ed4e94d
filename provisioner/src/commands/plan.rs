//! `provisioner plan`: read, diff, print. Never changes anything.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{EXIT_CHANGES, Session, exit, report_to_github};
use crate::artifacts::Artifacts;
use crate::aws::Aws;
use crate::aws::calls::stats;
use crate::engine::plan::{Mode, Plan, Snapshot, compute};
use crate::engine::render;
use crate::stack;

/// Read the live state, diff it against the stack and print the plan.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 2 when the plan has changes (0: none, 1: error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Diff against an empty account without any AWS call.
    #[arg(long)]
    pub offline: bool,
    /// Print how many AWS calls the plan made, and how many were sequential.
    #[arg(long)]
    pub stats: bool,
    /// Also save the plan (JSON) to this file, for `apply --plan`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

/// The plan against an empty account, reading nothing (`--offline`).
fn offline(path: &Path, inputs: &super::Inputs) -> Result<(Plan, Session)> {
    let s = stack::load_named(path, inputs.name.as_deref())?;
    let artifacts = Artifacts::load(&inputs.artifacts);
    if let Some(why) = artifacts.missing() {
        eprintln!(
            "Note: {why}
(an offline plan shows the code as not built)"
        );
    }
    let session = Session::new(s.clone(), &artifacts, Arc::new(Aws::offline(&s.region)));
    let mut plan = compute(
        &session.resources(),
        &Snapshot::default(),
        &session.options(Mode::Apply, false),
    );
    plan.warnings.extend(crate::declare::warnings(&s));
    plan.warnings.push(format!(
        "offline: the model {} in {} was not checked with Bedrock (lifecycle, access); a plan that reads the account checks it",
        s.model.id, s.model.region
    ));
    Ok((plan, session))
}

/// The plan against the account; never takes the stack lock, but says when
/// another run holds it (read in the same round).
async fn online(path: &Path, inputs: &super::Inputs) -> Result<(Plan, Session)> {
    let session = Session::open(path, inputs).await?;
    let (planned, lock) = tokio::join!(
        session.plan(Mode::Apply, false),
        crate::lock::read(&session.aws, &session.stack)
    );
    let (mut plan, _) = planned?;
    match lock {
        Ok(Some(seen)) if !seen.stale() => plan.warnings.push(format!(
            "the stack lock is held by {}: an apply now would wait for it, and this plan may be outdated when it finishes",
            seen.describe()
        )),
        Ok(Some(seen)) => plan.warnings.push(format!(
            "a stale stack lock of {} is left (the next apply takes it over; `provisioner unlock` removes it)",
            seen.describe()
        )),
        Ok(None) => {}
        Err(e) => plan.warnings.push(format!("could not read the stack lock: {e}")),
    }
    Ok((plan, session))
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    let (plan, session) = if args.offline {
        offline(path, inputs)?
    } else {
        online(path, inputs).await?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&render::json(&plan))?);
    } else {
        if args.offline {
            println!("Offline plan: compared with an empty account, nothing was read.\n");
        }
        print!("{}", render::text(&plan));
        if let Ok(c) = session.stack.capacity() {
            println!("\n{}", c.line(session.stack.queue.burst));
        }
    }
    report_to_github(&plan);
    if let Some(out) = &args.out {
        let text = serde_json::to_string_pretty(&render::json(&plan))?;
        std::fs::write(out, text)
            .with_context(|| format!("writing the plan to {}", out.display()))?;
        if !args.json {
            println!(
                "Saved the plan to {}: `provisioner apply --plan {}` applies exactly these changes.",
                out.display(),
                out.display()
            );
        }
    }
    if args.stats {
        let s = stats(&session.aws.calls.snapshot());
        eprintln!(
            "AWS calls: {} ({} sequential rounds) in {:.0} ms",
            s.calls,
            s.sequential,
            s.span.as_secs_f64() * 1000.0
        );
    }
    if !plan.problems.is_empty() {
        return Ok(exit(1));
    }
    if args.detailed_exitcode && plan.has_changes() {
        return Ok(exit(EXIT_CHANGES));
    }
    Ok(ExitCode::SUCCESS)
}
