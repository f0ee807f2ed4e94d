//! `provisioner rollback --stack F [worker|http]`: moves each function's
//! `live` alias to the published version before the one it serves, with no
//! weights, without building anything (both functions when none is named).
//! Under the stack lock, like every verb that changes the stack. The code
//! stays as deployed: the next `plan` shows the alias one version behind, and
//! the next `apply` moves it forward again (by the declared strategy), so
//! the fix goes in first.

use std::process::ExitCode;

use anyhow::{Result, anyhow};

use super::Session;
use super::logs::Function;
use crate::aws::aliases::LIVE;
use crate::aws::aws_error;

/// The published version just before `current` among `versions`.
pub fn previous(versions: &[u64], current: u64) -> Option<u64> {
    versions.iter().copied().filter(|v| *v < current).max()
}

/// Moves one function's alias back; returns `(from, to)`.
async fn roll_back(session: &Session, function: &str) -> Result<(String, String)> {
    let lambda = &session.aws.lambda;
    let alias = lambda
        .get_alias()
        .function_name(function)
        .name(LIVE)
        .send()
        .await
        .map_err(|e| anyhow!(aws_error(&format!("lambda:GetAlias {function}:{LIVE}"), e)))?;
    let current = alias.function_version().unwrap_or_default().to_owned();
    let current_number: u64 = current
        .parse()
        .map_err(|_| anyhow!("{function}:{LIVE} points at {current:?}, not a version"))?;
    let mut numbers: Vec<u64> = Vec::new();
    let mut pages = lambda
        .list_versions_by_function()
        .function_name(function)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow!(aws_error(
                &format!("lambda:ListVersionsByFunction {function}"),
                e
            ))
        })?;
        numbers.extend(
            page.versions()
                .iter()
                .filter_map(|v| v.version()?.parse::<u64>().ok()),
        );
    }
    let Some(to) = previous(&numbers, current_number) else {
        return Err(anyhow!(
            "{function}:{LIVE} serves version {current}, and no earlier version is kept (deploy.keep_versions)"
        ));
    };
    let to = to.to_string();
    lambda
        .update_alias()
        .function_name(function)
        .name(LIVE)
        .function_version(&to)
        .routing_config(
            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .set_additional_version_weights(Some(Default::default()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            anyhow!(aws_error(
                &format!("lambda:UpdateAlias {function}:{LIVE}"),
                e
            ))
        })?;
    Ok((current, to))
}

/// Move each function's `live` alias (or one's) back to the version before
/// the one it serves, without building. The next apply moves it forward.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Only this function.
    #[arg(value_enum)]
    pub function: Option<Function>,
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let (path, only) = (args.file.stack.as_path(), args.function);
    let session = Session::open(path, inputs).await?;
    let stack = &session.stack;
    let mut functions = Vec::new();
    if only != Some(Function::Http) {
        functions.push(("worker", stack.worker_name()));
    }
    if only != Some(Function::Worker) {
        functions.push(("http", stack.http_name()));
    }
    session
        .locked("rollback", async {
            for (label, name) in &functions {
                let (from, to) = roll_back(&session, name).await?;
                println!("function.{label}: {LIVE} {from} -> {to}");
            }
            println!(
                "Rolled back. The deployed code is unchanged: `plan` now shows the alias behind it, and the next `apply` moves it forward again."
            );
            Ok(ExitCode::SUCCESS)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_version_is_the_newest_older_one() {
        assert_eq!(previous(&[1, 3, 4, 7], 7), Some(4));
        assert_eq!(previous(&[5, 6], 5), None);
        assert_eq!(previous(&[2, 9], 4), Some(2));
    }
}
