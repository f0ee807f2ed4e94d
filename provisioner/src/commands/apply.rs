//! `provisioner apply`: plan, show, confirm, execute, then re-read to prove
//! that nothing is left to change. Also the engine of `destroy`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};

use super::{Session, confirm, github_summary};
use crate::engine::plan::{Mode, compute};
use crate::engine::saved::stale_reasons;
use crate::engine::{Action, Event, execute, render};

pub struct Args {
    pub yes: bool,
    pub adopt: bool,
    /// A plan saved by `plan --out`: apply only if it is still exactly right.
    pub plan: Option<std::path::PathBuf>,
}

fn verb(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("Creating", "Creation"),
        Action::Update => ("Modifying", "Modifications"),
        Action::Replace => ("Replacing", "Replacement"),
        Action::Delete => ("Destroying", "Destruction"),
        Action::NoOp | Action::NotOwned => ("Reading", "Read"),
    }
}

/// Prints apply progress, Terraform style.
pub fn print_event(e: Event) {
    match e {
        Event::Started { address, action } => println!("{address}: {}...", verb(action).0),
        Event::StillRunning {
            address,
            action,
            elapsed,
        } => {
            println!(
                "{address}: Still {}... [{}s elapsed]",
                verb(action).0.to_lowercase(),
                elapsed.as_secs()
            )
        }
        Event::Finished {
            address,
            action,
            elapsed,
            id,
        } => {
            let id = id.map(|i| format!(" [id={i}]")).unwrap_or_default();
            println!(
                "{address}: {} complete after {:.1}s{id}",
                verb(action).1,
                elapsed.as_secs_f64()
            )
        }
        Event::Warning { address, message } => println!("{address}: Warning: {message}"),
        Event::Failed {
            address,
            action,
            error,
        } => println!("{address}: {} failed: {error}", verb(action).1),
        Event::Skipped { address, reason } => println!("{address}: Not attempted: {reason}"),
    }
}

/// Plans in `mode`, asks (unless `saved` is a plan that still matches),
/// executes, verifies. Shared by apply and destroy.
pub async fn converge(
    session: &Session,
    mode: Mode,
    adopt: bool,
    yes: bool,
    saved: Option<&serde_json::Value>,
) -> Result<ExitCode> {
    let (plan, snapshot) = session.plan(mode, adopt).await?;
    print!("{}", render::text(&plan));
    if let Some(saved) = saved {
        let reasons = stale_reasons(saved, &plan);
        if !reasons.is_empty() {
            return Err(anyhow!(
                "nothing was changed: the saved plan is stale (the live state or the stack changed since it was made):\n  {}\nRun `provisioner plan --out` again and review it.",
                reasons.join("\n  ")
            ));
        }
    }
    github_summary(&render::markdown(&plan));
    if !plan.problems.is_empty() {
        return Err(anyhow!(
            "nothing was changed: {} problem(s) above must be fixed first",
            plan.problems.len()
        ));
    }
    if !plan.has_changes() {
        println!(
            "\nNothing to do: the live state matches stack {:?}.",
            session.stack.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    let question = match mode {
        Mode::Apply => format!("\nApply these changes to stack {:?}?", session.stack.name),
        Mode::Destroy => format!(
            "\nDestroy every resource stack {:?} owns?",
            session.stack.name
        ),
    };
    // A saved plan was reviewed when it was made, as with `terraform apply PLANFILE`.
    if saved.is_none() && !confirm(&question, yes)? {
        println!("Cancelled: nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    println!();
    execute(&plan, &session.resources, &snapshot, &print_event).await?;

    // The live object is the truth: re-read and check that nothing is left to do.
    let after = session.read().await?;
    let check = compute(&session.resources, &after, &session.options(mode, adopt));
    if check.has_changes() {
        print!("\n{}", render::text(&check));
        let differing: Vec<String> = check
            .changes
            .iter()
            .filter(|c| c.action.mutates())
            .map(|c| {
                let fields: Vec<&str> = c.fields.iter().map(|f| f.path.as_str()).collect();
                if fields.is_empty() {
                    format!("  {}: {:?}", c.address, c.action)
                } else {
                    format!("  {}: {}", c.address, fields.join(", "))
                }
            })
            .collect();
        return Err(anyhow!(
            "the changes were made but the live state still differs (plan above); re-run to converge:\n{}",
            differing.join("\n")
        ));
    }
    let s = plan.summary;
    println!(
        "\n{} complete! Resources: {} added, {} changed, {} destroyed. A new plan shows no changes.",
        if mode == Mode::Apply {
            "Apply"
        } else {
            "Destroy"
        },
        s.create + s.replace,
        s.update,
        s.delete + s.replace
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run(path: &Path, args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let saved =
        match &args.plan {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading the saved plan {}", p.display()))?;
                Some(serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a plan saved by `plan --out`", p.display())
                })?)
            }
            None => None,
        };
    let session = Session::open(path, inputs).await?;
    session
        .locked(
            "apply",
            converge(&session, Mode::Apply, args.adopt, args.yes, saved.as_ref()),
        )
        .await
}
