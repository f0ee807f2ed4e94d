//! `provisioner apply`: plan, show, confirm, execute, then re-read to prove
//! that nothing is left to change. Also the engine of `destroy`.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};

use super::{Session, ask, confirm, report_to_github};
use crate::engine::plan::{Mode, compute};
use crate::engine::saved::{SavedPlan, stale_reasons};
use crate::engine::{Action, Event, Plan, execute, render};

/// Plan, confirm, and bring the account to the declared state.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Do not ask for confirmation (also: CI=true).
    #[arg(long)]
    pub yes: bool,
    /// Take over same-named resources that lack this stack's ownership tags.
    #[arg(long)]
    pub adopt: bool,
    /// Apply a plan saved by `plan --out`, only if a fresh plan still makes exactly
    /// the same changes (no confirmation: it was reviewed when saved).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<std::path::PathBuf>,
    /// Grant the permission changes the plan marks [broadening] without
    /// asking (--yes never does; a saved plan that contains them does).
    #[arg(long)]
    pub approve_broadening: bool,
}

/// How a plan that grants more than before is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadening {
    /// Ask on a terminal; off one, refuse.
    Ask,
    /// `--approve-broadening`.
    Approved,
}

/// Whether the plan's broadening permission changes may be made: approved by
/// the flag, already in a reviewed saved plan, or by the person at the terminal.
/// `--yes` and `CI=true` never approve them.
fn broadening_approved(plan: &Plan, how: Broadening, saved: Option<&SavedPlan>) -> Result<bool> {
    let broadening: Vec<_> = plan.broadening().collect();
    if broadening.is_empty() {
        return Ok(true);
    }
    if how == Broadening::Approved {
        println!(
            "\n{} broadening permission change(s) approved by --approve-broadening.",
            broadening.len()
        );
        return Ok(true);
    }
    if let Some(saved) = saved {
        let reviewed = &saved.permission_changes;
        let unseen: Vec<_> = broadening
            .iter()
            .filter(|c| {
                let c = serde_json::to_value(c).unwrap_or_default();
                !reviewed.contains(&c)
            })
            .collect();
        if unseen.is_empty() {
            println!(
                "\n{} broadening permission change(s) approved: the reviewed saved plan contains them.",
                broadening.len()
            );
            return Ok(true);
        }
    }
    let question = format!(
        "\nThese changes grant more than before: {} permission statement(s) marked [broadening] above. Grant them?",
        broadening.len()
    );
    match ask(&question)? {
        Some(answer) => Ok(answer),
        None => Err(anyhow!(
            "nothing was changed: the plan broadens permissions ({} statement(s) marked [broadening] in the permission section). Review them, then re-run with --approve-broadening, or apply a plan saved with `plan --out` that contains them (`apply --plan FILE`). --yes does not approve a broadening.",
            broadening.len()
        )),
    }
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
            note,
        } => {
            let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
            println!(
                "{address}: Still {}... [{}s elapsed]{note}",
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

/// How a changing verb converges: what it plans, and what it may do
/// without asking.
pub struct Converge<'a> {
    pub mode: Mode,
    /// Take over same-named resources without the stack's ownership tags.
    pub adopt: bool,
    /// Do not ask (also CI=true); never approves a broadening.
    pub yes: bool,
    pub broadening: Broadening,
    /// A reviewed plan that must still match.
    pub saved: Option<&'a SavedPlan>,
}

impl Converge<'_> {
    /// Plans in `mode`, asking as usual, nothing adopted, nothing saved.
    pub fn asking(mode: Mode, yes: bool) -> Converge<'static> {
        Converge {
            mode,
            adopt: false,
            yes,
            broadening: Broadening::Ask,
            saved: None,
        }
    }
}

impl Broadening {
    /// `--approve-broadening` given or not.
    pub fn approved_if(flag: bool) -> Broadening {
        if flag {
            Broadening::Approved
        } else {
            Broadening::Ask
        }
    }
}

/// Plans in `how.mode`, asks (unless `how.saved` is a plan that still
/// matches), executes, verifies. Shared by apply, destroy and bootstrap.
pub async fn converge(session: &Session, how: &Converge<'_>) -> Result<ExitCode> {
    let Converge {
        mode,
        adopt,
        yes,
        broadening,
        saved,
    } = *how;
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
    report_to_github(&plan);
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
    if !broadening_approved(&plan, broadening, saved)? {
        println!("Cancelled: nothing was changed.");
        return Ok(ExitCode::from(1));
    }
    println!();
    execute(&plan, &session.resources(), &snapshot, &print_event).await?;

    // The live object is the truth: re-read and check that nothing is left to do.
    converged(session, mode, adopt).await?;
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

/// Reads the stack again: an error naming what still differs from the
/// declaration when a new plan has changes.
async fn converged(session: &Session, mode: Mode, adopt: bool) -> Result<()> {
    let after = session.read().await?;
    let check = compute(&session.resources(), &after, &session.options(mode, adopt));
    if !check.has_changes() {
        return Ok(());
    }
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
    Err(anyhow!(
        "the changes were made but the live state still differs (plan above); re-run to converge:\n{}",
        differing.join("\n")
    ))
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    let saved = match &args.plan {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the saved plan {}", p.display()))?;
            Some(
                SavedPlan::parse(&text)
                    .with_context(|| format!("{} cannot be applied", p.display()))?,
            )
        }
        None => None,
    };
    let session = Session::open(path, inputs).await?;
    session
        .locked(
            "apply",
            converge(
                &session,
                &Converge {
                    mode: Mode::Apply,
                    adopt: args.adopt,
                    yes: args.yes,
                    broadening: Broadening::approved_if(args.approve_broadening),
                    saved: saved.as_ref(),
                },
            ),
        )
        .await
}
