//! `provisioner unlock`: removes the stack lock a run left behind (see
//! `crate::lock`). A stale lock (not renewed for a whole lease) is removed; a
//! live one only with `--force`.

use std::process::ExitCode;

use anyhow::Result;

/// Remove the stack's lock left by a run that is gone: a stale lock (its
/// lease lapsed) always, a live one only with --force.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Remove it even though its holder renewed it recently.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let (path, force) = (args.file.stack.as_path(), args.force);
    let session = super::Session::open(path, inputs).await?;
    match crate::lock::unlock(&session.aws, &session.stack, force).await? {
        None => println!(
            "Stack {:?} is not locked (s3://{}/{}).",
            session.stack.name,
            session.stack.images.bucket,
            crate::lock::key(&session.stack)
        ),
        Some(seen) => println!(
            "Removed the stack lock of {:?} held by {}.",
            session.stack.name,
            seen.describe()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
