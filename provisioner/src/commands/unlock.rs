//! `provisioner unlock`: removes the stack lock a run left behind (see
//! `crate::lock`). A stale lock (not renewed for a whole lease) is removed; a
//! live one only with `--force`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

pub async fn run(path: &Path, force: bool, inputs: &super::Inputs) -> Result<ExitCode> {
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
