//! `provisioner destroy`: delete what the stack owns, dependents first.
//! Resources without the stack's ownership tags are left alone.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::engine::plan::Mode;

pub async fn run(path: &Path, yes: bool, inputs: &super::Inputs) -> Result<ExitCode> {
    let session = super::Session::open(path, inputs).await?;
    session
        .locked(
            "destroy",
            super::apply::converge(
                &session,
                Mode::Destroy,
                false,
                yes,
                super::apply::Broadening::Ask,
                None,
            ),
        )
        .await
}
