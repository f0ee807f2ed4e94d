//! The command line: the global flags, one subcommand per verb whose flags
//! are that verb's `Args` (`commands/<verb>.rs`), the dispatch, and the
//! reference made from them (`docs/reference/cli.md`, kept current by a
//! test). `main.rs` only parses, sets up logging and handles Ctrl-C.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, CommandFactory, Parser, Subcommand};

use crate::commands::{self, Inputs};

#[derive(Parser)]
#[command(
    name = "provisioner",
    version,
    about = "Plan and apply the Couch Explorers stack on AWS"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Where the function zips are: {DIR}/image-worker/bootstrap.zip and
    /// {DIR}/image-http/bootstrap.zip, as `scripts/build-functions` makes them.
    #[arg(long, global = true, value_name = "DIR", default_value = crate::artifacts::DEFAULT_DIR)]
    pub artifacts: PathBuf,
    /// Use this stack name instead of the file's `name` (e.g. a preview stack
    /// `couch-pr-42`): every physical name derives from it.
    #[arg(long, global = true, value_name = "NAME")]
    pub name: Option<String>,
    /// How long apply, destroy, bootstrap, rollback and retire --yes wait for
    /// the stack lock another run holds (0: fail at once).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = crate::lock::DEFAULT_TIMEOUT.as_secs())]
    pub lock_timeout: u64,
}

/// Each verb's help is its `Args`' doc comment.
#[derive(Subcommand)]
pub enum Command {
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
    Openapi(commands::openapi::Args),
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

    /// Whether the verb handles Ctrl-C itself: `local` stops what it
    /// started, `redrive` cancels its move task, `logs --follow` just stops.
    pub fn handles_interrupt(&self) -> bool {
        matches!(
            self.command,
            Command::Local(_) | Command::Redrive(_) | Command::Logs(_)
        )
    }

    /// Runs the verb.
    pub async fn run(&self) -> anyhow::Result<ExitCode> {
        let read = self.inputs(false);
        match &self.command {
            Command::Validate(a) => commands::validate::run(a, &read),
            Command::Plan(a) => commands::plan::run(a, &self.inputs(!a.offline)).await,
            Command::Apply(a) => commands::apply::run(a, &self.inputs(true)).await,
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
            Command::Export(a) => commands::export::run(a, &self.inputs(true)).await,
            Command::Unlock(a) => commands::unlock::run(a, &read).await,
            Command::Models(a) => commands::models::run(a, self.name.as_deref()).await,
            Command::Openapi(a) => commands::openapi::run(a, &read),
            Command::Local(a) => commands::local::run(a, &read).await,
        }
    }
}

/// Every exit code the provisioner gives, and when.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (
        0,
        "Success. `plan --detailed-exitcode`: the plan has no changes.",
    ),
    (
        1,
        "An error (printed as `Error: ...`), a plan or stack file with problems, a stale saved plan, or an apply, destroy, retire or redrive that was declined or cancelled: nothing more was changed.",
    ),
    (
        2,
        "`plan --detailed-exitcode`: the plan has changes (and no problems). Also a command line clap cannot parse (an unknown verb or flag, a missing required flag).",
    ),
    (
        3,
        "`status`: the stack needs attention (an alarm firing, prompts in the dead-letter queue).",
    ),
    (
        130,
        "Interrupted (Ctrl-C): operations in flight may or may not have completed; run the same command again, it reads the live state and converges.",
    ),
];

/// Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// One flag or positional argument as a table row.
fn row(arg: &Arg) -> String {
    let values: Vec<String> = arg
        .get_value_names()
        .unwrap_or_default()
        .iter()
        .map(|v| format!("<{v}>"))
        .collect();
    let takes_value = arg.get_action().takes_values();
    let name = match (arg.get_long(), arg.get_short()) {
        (Some(long), Some(short)) => format!("`-{short}`, `--{long}`"),
        (Some(long), None) => format!("`--{long}`"),
        _ => format!("`{}`", values.join(" ")),
    };
    let value = if arg.is_positional() || !takes_value {
        String::new()
    } else if values.is_empty() {
        format!("`<{}>`", arg.get_id().as_str().to_uppercase())
    } else {
        format!("`{}`", values.join(" "))
    };
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| format!("`{}`", p.get_name()))
        .collect();
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    let default = match (arg.is_required_set(), defaults.as_slice()) {
        (true, _) => "required".to_owned(),
        // A switch: present or not.
        (false, _) if !takes_value => String::new(),
        (false, []) => String::new(),
        (false, [d]) if d.is_empty() => "`\"\"`".to_owned(),
        (false, ds) => format!("`{}`", ds.join(" ")),
    };
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let help = if possible.is_empty() || (arg.is_positional() && !takes_value) {
        help
    } else {
        format!("{help} One of: {}.", possible.join(", "))
    };
    format!(
        "| {name} | {value} | {} | {} |",
        cell(&default),
        cell(&help)
    )
}

/// The reference of every verb, flag, default and exit code
/// (`docs/reference/cli.md`), made from the clap definitions.
pub fn reference() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = String::new();
    let table_head = "| Flag | Value | Default | Description |\n|---|---|---|---|\n";
    let _ = writeln!(
        out,
        "# `provisioner` command reference\n\n<!-- Generated from the clap definitions (provisioner/src/cli.rs and each verb's `Args` in provisioner/src/commands/<verb>.rs): do not edit. `COUCH_UPDATE_DOCS=1 cargo test -p provisioner --lib cli::` writes it again; `scripts/test` fails while it is stale. -->\n\n{}\n\n```text\n{}\n```\n",
        cmd.get_about().map(|a| a.to_string()).unwrap_or_default(),
        cmd.render_usage().to_string().trim_start_matches("Usage: ")
    );
    let _ = writeln!(
        out,
        "Verbs: {}.\n",
        cmd.get_subcommands()
            .filter(|s| s.get_name() != "help")
            .map(|s| format!("[`{0}`](#provisioner-{0})", s.get_name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = write!(
        out,
        "## Global flags\n\nAccepted by every verb, before or after it.\n\n{table_head}"
    );
    for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
        let _ = writeln!(out, "{}", row(arg));
    }
    let _ = writeln!(out, "\n## Exit codes\n\n| Code | Meaning |\n|---|---|");
    for (code, meaning) in EXIT_CODES {
        let _ = writeln!(out, "| {code} | {} |", cell(meaning));
    }
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n## provisioner {}\n\n{}\n\n```text\n{}\n```\n",
            sub.get_name(),
            about.trim(),
            sub.clone()
                .render_usage()
                .to_string()
                .trim_start_matches("Usage: ")
        );
        let args: Vec<&Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && !a.is_hide_set() && a.get_id() != "help")
            .collect();
        if !args.is_empty() {
            let _ = write!(out, "{table_head}");
            for arg in args {
                let _ = writeln!(out, "{}", row(arg));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_reference_is_current() {
        let path = crate::docs::repository().join("docs/reference/cli.md");
        let made = reference();
        if std::env::var_os("COUCH_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &made).unwrap();
        }
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            written == made,
            "docs/reference/cli.md is not what the clap definitions make: run `COUCH_UPDATE_DOCS=1 cargo test -p provisioner --lib cli::` and commit it"
        );
    }

    #[test]
    fn the_reference_names_every_verb_flag_default_and_exit_code() {
        let made = reference();
        for verb in ["plan", "apply", "destroy", "local", "export", "status"] {
            assert!(
                made.contains(&format!("\n## provisioner {verb}\n")),
                "{verb}"
            );
        }
        // Optional flags are not shown as required (the README's old drift).
        assert!(
            made.contains("| `--yes` |  |  |"),
            "destroy --yes is optional"
        );
        assert!(
            made.contains("| `--out` | `<FILE>` |  |"),
            "export --out is optional"
        );
        assert!(made.contains("| `--lock-timeout` | `<SECONDS>` | `300` |"));
        assert!(made.contains("| `-s`, `--stack` | `<FILE>` | required |"));
        for (code, _) in EXIT_CODES {
            assert!(made.contains(&format!("\n| {code} | ")), "exit code {code}");
        }
    }
}
