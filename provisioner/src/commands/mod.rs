//! The verbs of the command line, one per file. [`Session`] ties a parsed stack
//! to its resources and the AWS clients; the verbs print and return exit codes.

pub mod apply;
pub mod bootstrap;
pub mod destroy;
pub mod export;
pub mod local;
pub mod logs;
pub mod models;
pub mod openapi;
pub mod outputs;
pub mod plan;
pub mod policies;
pub mod redrive;
pub mod retire;
pub mod rollback;
pub mod status;
pub mod unlock;
pub mod validate;
pub mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use crate::artifacts::Artifacts;
use crate::aws::Aws;
use crate::aws::clients::region_for;
use crate::declare;
use crate::engine::plan::{Mode, PlanOptions, Snapshot, compute, read_all};
use crate::engine::refs::resolve;
use crate::engine::{Plan, Resource, Text};
use crate::stack::{self, Stack};

/// Exit code of `plan --detailed-exitcode` when there are changes.
pub const EXIT_CHANGES: u8 = 2;

pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// The stack file every verb but `models` reads (`--stack F`).
#[derive(Debug, Clone, clap::Args)]
pub struct StackFile {
    /// The stack file (YAML).
    #[arg(long, short, value_name = "FILE")]
    pub stack: PathBuf,
}

/// A deployed stack's output, or the error that says it is not deployed.
pub fn deployed(
    outputs: &std::collections::BTreeMap<String, Option<String>>,
    output: couch_contract::outputs::Output,
) -> Result<&str> {
    let name = output.name();
    outputs.get(name).and_then(|v| v.as_deref()).ok_or_else(|| {
        anyhow!("the stack is not deployed ({name} is unknown): run `provisioner apply` first")
    })
}

/// A stack bound to AWS clients.
pub struct Session {
    pub stack: Stack,
    pub aws: Arc<Aws>,
    /// The declared resources, once: the engine's view is [`Session::resources`].
    pub kinds: Vec<Arc<dyn declare::Kind>>,
    pub outputs: Vec<(&'static str, Text)>,
    /// The document of the permissions boundary its roles carry
    /// ([`declare::Declaration::boundary`]).
    pub boundary: crate::aws::policies::PolicyDocument,
    /// How long a verb that changes the stack waits for its lock (`--lock-timeout`).
    pub lock_timeout: std::time::Duration,
}

/// What every verb that reads the account is given besides the stack file.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Where the function zips are (`--artifacts`).
    pub artifacts: PathBuf,
    /// `--name`: replaces the stack file's name.
    pub name: Option<String>,
    /// Whether the verb deploys code (plan, apply): then missing zips are an
    /// error before any AWS call.
    pub needs_code: bool,
    /// `--lock-timeout`: how long to wait for the stack lock.
    pub lock_timeout: std::time::Duration,
}

impl Session {
    /// Parses the stack file (all problems at once), hashes the function zips
    /// and loads credentials. No AWS call.
    pub async fn open(path: &Path, inputs: &Inputs) -> Result<Session> {
        let stack = stack::load_named(path, inputs.name.as_deref())?;
        let artifacts = Artifacts::load(&inputs.artifacts);
        if inputs.needs_code
            && let Some(why) = artifacts.missing()
        {
            return Err(anyhow!(
                "{why}
(nothing was read or changed in AWS)"
            ));
        }
        let aws = Arc::new(Aws::load(&region_for(&stack.region)).await);
        let mut session = Session::new(stack, &artifacts, aws);
        session.lock_timeout = inputs.lock_timeout;
        Ok(session)
    }

    pub fn new(stack: Stack, artifacts: &Artifacts, aws: Arc<Aws>) -> Session {
        let declare::Declaration {
            kinds,
            outputs,
            boundary,
        } = declare::declare(&stack, artifacts, &aws);
        Session {
            stack,
            aws,
            kinds,
            outputs,
            boundary,
            lock_timeout: crate::lock::DEFAULT_TIMEOUT,
        }
    }

    /// The declared resources as the engine drives them.
    pub fn resources(&self) -> Vec<Arc<dyn Resource>> {
        declare::resources(&self.kinds)
    }

    /// Reads every resource concurrently.
    pub async fn read(&self) -> Result<Snapshot> {
        read_all(&self.resources()).await.map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|(a, e)| format!("  {a}: {e}")).collect();
            anyhow!("reading the live state failed:\n{}", lines.join("\n"))
        })
    }

    pub fn options(&self, mode: Mode, adopt: bool) -> PlanOptions {
        PlanOptions {
            stack: self.stack.name.clone(),
            mode,
            adopt,
        }
    }

    /// Takes the stack lock for `verb`, runs `work`, releases the lock (also
    /// when `work` fails; Ctrl-C releases it in `main`).
    pub async fn locked<T, F>(&self, verb: &str, work: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let lock = match crate::lock::acquire(&self.aws, &self.stack, verb, self.lock_timeout).await
        {
            Ok(lock) => lock,
            // Nowhere to keep a lock: apply's plan refuses a missing bucket
            // anyway, and destroy must still be able to clean up.
            Err(e @ crate::lock::LockError::NoBucket(_)) => {
                eprintln!("Warning: {e}; going on without it");
                return work.await;
            }
            Err(e) => return Err(e.into()),
        };
        // Another run took the lock over (this one did not renew it in
        // time): stop at once, as on Ctrl-C; the next run reads and converges.
        let result = tokio::select! {
            r = work => r,
            _ = lock.lost() => Err(anyhow!(
                "stopped: another run took over the stack lock of {:?} (this run did not renew it within its lease), so this one made no further change; run it again to converge",
                self.stack.name
            )),
        };
        lock.release().await;
        result
    }

    /// Reads, then plans.
    pub async fn plan(&self, mode: Mode, adopt: bool) -> Result<(Plan, Snapshot)> {
        let snapshot = self.read().await?;
        let mut plan = compute(&self.resources(), &snapshot, &self.options(mode, adopt));
        if mode == Mode::Apply {
            plan.warnings.extend(crate::declare::warnings(&self.stack));
        }
        Ok((plan, snapshot))
    }

    /// Output name → value (`None` for what is not deployed).
    pub fn outputs(&self, snapshot: &Snapshot) -> BTreeMap<String, Option<String>> {
        self.outputs
            .iter()
            .map(|(name, expr)| {
                let expr = serde_json::Value::String(expr.to_string());
                let (v, known) = resolve(&expr, &|a, attr| snapshot.attr(a, attr));
                (
                    (*name).to_owned(),
                    known.then(|| v.as_str().unwrap_or_default().to_owned()),
                )
            })
            .collect()
    }
}

/// Whether the user agreed; `--yes` and `CI=true` agree without asking.
pub fn confirm(question: &str, yes: bool) -> Result<bool> {
    if yes || std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        return Ok(true);
    }
    ask(question)?
        .ok_or_else(|| anyhow!("not running on a terminal: pass --yes (or set CI=true) to confirm"))
}

/// Asks `question` on the terminal; `Ok(None)` when there is none.
pub fn ask(question: &str) -> Result<Option<bool>> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    print!("{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stdout()
        .flush()
        .context("writing to the terminal")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(Some(answer.trim() == "yes"))
}

/// In GitHub Actions: the plan in the job summary, and a `::warning::`
/// annotation on the run when it broadens permissions.
pub fn report_to_github(plan: &Plan) {
    github_summary(&crate::engine::render::markdown(plan));
    let broadening = plan.broadening().count();
    if broadening > 0 && std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        println!(
            "::warning title=Permissions broaden::stack {}: {broadening} permission statement(s) grant more than before (see the permission section of the plan)",
            plan.stack
        );
    }
}

/// Appends Markdown to GitHub's job summary when running in GitHub Actions.
pub fn github_summary(markdown: &str) {
    use std::io::Write;
    let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(markdown.as_bytes()));
    if let Err(e) = written {
        tracing::warn!("cannot write the job summary to {path}: {e}");
    }
}
