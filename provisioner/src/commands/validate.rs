//! `provisioner validate`: parse and check the stack file offline.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::stack;

pub fn run(path: &Path) -> Result<ExitCode> {
    let s = stack::load(path)?;
    println!(
        "{} is valid: stack {:?} in {}, queue {}, alarm after {} s to {}.",
        path.display(),
        s.name,
        s.region,
        s.queue_name(),
        s.alarm.threshold_seconds,
        s.alarm.email
    );
    Ok(ExitCode::SUCCESS)
}
