//! `provisioner validate`: parse and check the stack file offline.

use std::process::ExitCode;

use anyhow::Result;

use crate::artifacts::{Artifacts, short};
use crate::stack;

/// Parse and check a stack file; no AWS call.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
}

pub fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    let s = stack::load_named(path, inputs.name.as_deref())?;
    println!(
        "{} is valid: stack {:?} in {}, queue {}, alarm after {} s to {}.",
        path.display(),
        s.name,
        s.region,
        s.queue_name(),
        s.alarm.threshold_seconds,
        s.alarm.email
    );
    // A valid stack has a capacity (validation checked it).
    if let Ok(c) = s.capacity() {
        println!("{}", c.line(s.queue.burst));
    }
    for w in crate::declare::capacity_warnings(&s) {
        println!("warning: {w}");
    }
    let code = Artifacts::load(&inputs.artifacts);
    for a in [&code.worker, &code.http] {
        match &a.code_sha256 {
            Ok(sha) => println!(
                "  code {}: {} (CodeSha256 {})",
                a.package,
                a.path.display(),
                short(sha)
            ),
            Err(why) => println!("  code {}: not built: {why}", a.package),
        }
    }
    Ok(ExitCode::SUCCESS)
}
