//! `provisioner destroy`: delete what the stack owns, dependents first.
//! Resources without the stack's ownership tags are left alone.

use std::process::ExitCode;

use anyhow::Result;

use crate::engine::plan::Mode;

/// Delete every resource the stack owns, dependents first.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Do not ask for confirmation (also: CI=true).
    #[arg(long)]
    pub yes: bool,
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let (path, yes) = (args.file.stack.as_path(), args.yes);
    let session = super::Session::open(path, inputs).await?;
    session
        .locked(
            "destroy",
            super::apply::converge(
                &session,
                &super::apply::Converge::asking(Mode::Destroy, yes),
            ),
        )
        .await
}
