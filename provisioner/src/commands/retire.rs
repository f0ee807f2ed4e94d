//! `provisioner retire --cloudformation-stack NAME`: shows what the old
//! CloudFormation (SAM) stack holds and what replaces it, refuses while this
//! stack is not fully deployed, and (with `--yes`) deletes the old stack,
//! keeping `--retain`ed resources, waiting with progress.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus, TemplateStage};

use super::Session;
use crate::aws::aws_error;
use crate::cloudformation::CodeLocation;
use crate::cloudformation::retire::{
    Fate, OldResource, Ours, fates, refusals, retaining, summary, table,
};
use crate::engine::{Action, Mode};

/// Leave an old CloudFormation (SAM) stack: show what it holds and what
/// replaces it, refuse while this stack is not fully deployed, then delete
/// it keeping the --retain'ed resources. Without --yes, a dry run.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// The old CloudFormation stack's name.
    #[arg(long, value_name = "NAME")]
    pub cloudformation_stack: String,
    /// Keep this resource (its logical id in the old stack); repeatable.
    #[arg(long, value_name = "LOGICAL_ID")]
    pub retain: Vec<String>,
    /// Delete the old stack (otherwise: a dry run).
    #[arg(long)]
    pub yes: bool,
}

/// How often the stack's status is read while CloudFormation works.
const POLL: Duration = Duration::from_millis(1000);

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    let session = Session::open(path, inputs).await?;
    if args.yes {
        // Deleting the old stack while another run changes this one would
        // judge "fully deployed" on a moving target.
        return session.locked("retire", retire(&session, args)).await;
    }
    retire(&session, args).await
}

/// The refusal while this stack is not fully deployed: the old stack keeps
/// serving until the new one does.
async fn not_deployed(session: &Session) -> Result<Option<String>> {
    let (plan, _) = session.plan(Mode::Apply, false).await?;
    let missing: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::NotOwned))
        .map(|c| c.address.as_str())
        .collect();
    Ok((!missing.is_empty()).then(|| {
        format!(
            "stack {:?} is not fully deployed ({} missing: {}): run `provisioner apply` first, so the old stack keeps serving until the new one does",
            session.stack.name,
            missing.len(),
            missing.join(", ")
        )
    }))
}

/// Deletes the old stack; when CloudFormation fails only on what is kept,
/// deletes it again naming them to retain. Its last status.
async fn delete_keeping(
    session: &Session,
    stack_id: &str,
    old_name: &str,
    keep: &BTreeSet<String>,
) -> Result<StackStatus> {
    delete(session, stack_id, old_name, None).await?;
    let mut last = wait(session, stack_id, "deleting").await?;
    if last == StackStatus::DeleteFailed {
        let failed: Vec<OldResource> = resources(session, stack_id)
            .await?
            .into_iter()
            .filter(|r| r.status == "DELETE_FAILED")
            .collect();
        let ids: BTreeSet<String> = failed.iter().map(|r| r.logical_id.clone()).collect();
        if !ids.is_subset(keep) {
            bail!(
                "CloudFormation could not delete {}; the old stack {old_name:?} is DELETE_FAILED. Fix what blocks them, or keep them with --retain, and run retire again.",
                failed
                    .iter()
                    .map(|r| format!("{} ({})", r.logical_id, r.physical_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        // The retained ones failed (CloudFormation requires naming them now).
        delete(session, stack_id, old_name, Some(ids.into_iter().collect())).await?;
        last = wait(session, stack_id, "deleting (retaining)").await?;
    }
    Ok(last)
}

async fn retire(session: &Session, args: &Args) -> Result<ExitCode> {
    let old_name = &args.cloudformation_stack;
    let retain: BTreeSet<String> = args.retain.iter().cloned().collect();

    let stack = describe(session, old_name).await?;
    let status = stack.stack_status().cloned().context("no stack status")?;
    let stack_id = stack.stack_id().unwrap_or(old_name).to_owned();
    if status == StackStatus::DeleteComplete {
        println!("CloudFormation stack {old_name:?} is already deleted.");
        return Ok(ExitCode::SUCCESS);
    }
    if status.as_str().ends_with("_IN_PROGRESS") {
        bail!(
            "CloudFormation stack {old_name:?} is {status}: wait until it settles, then run retire again (nothing was changed)"
        );
    }

    let old = resources(session, &stack_id).await?;
    let ours = declared(session);
    let fates = fates(&old, &ours, &retain);
    println!(
        "CloudFormation stack {old_name:?} ({status}) holds {} resource(s):",
        old.len()
    );
    print!("{}", table(&old, &fates));

    let mut problems = refusals(&old, &fates, &retain);
    problems.extend(not_deployed(session).await?);
    if !problems.is_empty() {
        eprintln!("\nNothing was changed:");
        for p in &problems {
            eprintln!("  - {p}");
        }
        return Ok(ExitCode::from(1));
    }
    let counts = summary(&fates);
    println!(
        "\nRetire: delete stack {old_name:?}: {} resource(s) deleted, {} kept.",
        counts.get("deleted").unwrap_or(&0),
        counts.get("kept").unwrap_or(&0)
    );
    if !args.yes {
        println!("Dry run: nothing was changed. Run again with --yes to delete the old stack.");
        return Ok(ExitCode::SUCCESS);
    }

    // Keep what must be kept: DeletionPolicy Retain, through a stack update.
    let keep: BTreeSet<String> = old
        .iter()
        .zip(&fates)
        .filter(|(_, f)| matches!(f, Fate::Retained | Fate::Shared(_)))
        .map(|(r, _)| r.logical_id.clone())
        .collect();
    if !keep.is_empty() {
        mark_retained(session, &stack_id, &stack, &keep).await?;
    }

    let last = delete_keeping(session, &stack_id, old_name, &keep).await?;
    if last != StackStatus::DeleteComplete {
        bail!("CloudFormation stack {old_name:?} ended {last}");
    }
    println!(
        "\nRetired: CloudFormation stack {old_name:?} is {last}; kept: {}.",
        if keep.is_empty() {
            "nothing".to_owned()
        } else {
            keep.into_iter().collect::<Vec<_>>().join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `DeleteStack`, naming the resources to retain when CloudFormation asks for them.
async fn delete(
    session: &Session,
    stack_id: &str,
    old_name: &str,
    retain: Option<Vec<String>>,
) -> Result<()> {
    session
        .aws
        .cloudformation
        .delete_stack()
        .stack_name(stack_id)
        .set_retain_resources(retain)
        .send()
        .await
        .map_err(|e| {
            anyhow!(aws_error(
                &format!("cloudformation:DeleteStack {old_name}"),
                e
            ))
        })?;
    Ok(())
}

async fn describe(session: &Session, name: &str) -> Result<aws_sdk_cloudformation::types::Stack> {
    let out = session
        .aws
        .cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| {
            anyhow!(aws_error(
                &format!("cloudformation:DescribeStacks {name}"),
                e
            ))
        })?;
    out.stacks()
        .first()
        .cloned()
        .with_context(|| format!("no CloudFormation stack {name:?}"))
}

async fn resources(session: &Session, stack: &str) -> Result<Vec<OldResource>> {
    let mut found = Vec::new();
    let mut pages = session
        .aws
        .cloudformation
        .list_stack_resources()
        .stack_name(stack)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow!(aws_error(
                &format!("cloudformation:ListStackResources {stack}"),
                e
            ))
        })?;
        found.extend(page.stack_resource_summaries().iter().map(|r| {
            OldResource {
                logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
                type_name: r.resource_type().unwrap_or_default().to_owned(),
                physical_id: r.physical_resource_id().unwrap_or_default().to_owned(),
                status: r
                    .resource_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            }
        }));
    }
    Ok(found)
}

/// This stack's resources as CloudFormation would type them.
fn declared(session: &Session) -> Vec<Ours> {
    let anywhere = CodeLocation {
        bucket: String::new(),
        prefix: String::new(),
    };
    session
        .kinds
        .iter()
        .filter_map(|k| {
            let parts = k.cloudformation(&anywhere).ok()?;
            let main = parts.first()?;
            Some(Ours {
                address: k.address().to_owned(),
                type_name: main.type_name.to_owned(),
                physical_name: k.name().to_owned(),
            })
        })
        .collect()
}

/// Updates the old stack's (processed) template so `keep` survive deletion.
async fn mark_retained(
    session: &Session,
    stack_id: &str,
    stack: &aws_sdk_cloudformation::types::Stack,
    keep: &BTreeSet<String>,
) -> Result<()> {
    let cfn = &session.aws.cloudformation;
    let got = cfn
        .get_template()
        .stack_name(stack_id)
        .template_stage(TemplateStage::Processed)
        .send()
        .await
        .map_err(|e| anyhow!(aws_error("cloudformation:GetTemplate", e)))?;
    let body = got.template_body().unwrap_or_default();
    let template: serde_json::Value = serde_json::from_str(body)
        .or_else(|_| serde_yaml::from_str(body))
        .map_err(|e| {
            anyhow!("the old stack's template could not be read ({e}); set DeletionPolicy: Retain on {} yourself, then run retire again", keep.iter().cloned().collect::<Vec<_>>().join(", "))
        })?;
    let Some(updated) = retaining(&template, keep) else {
        return Ok(());
    };
    println!(
        "Marking {} DeletionPolicy: Retain...",
        keep.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    let parameters: Vec<Parameter> = stack
        .parameters()
        .iter()
        .filter_map(|p| {
            Some(
                Parameter::builder()
                    .parameter_key(p.parameter_key()?)
                    .use_previous_value(true)
                    .build(),
            )
        })
        .collect();
    cfn.update_stack()
        .stack_name(stack_id)
        .template_body(updated.to_string())
        .set_parameters(Some(parameters))
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .capabilities(Capability::CapabilityAutoExpand)
        .send()
        .await
        .map_err(|e| anyhow!(aws_error("cloudformation:UpdateStack", e)))?;
    let status = wait(session, stack_id, "updating").await?;
    if status != StackStatus::UpdateComplete {
        bail!(
            "marking the retained resources failed: the old stack is {status}; nothing was deleted"
        );
    }
    Ok(())
}

/// Polls until the stack leaves `*_IN_PROGRESS`, printing each new status.
async fn wait(session: &Session, stack_id: &str, doing: &str) -> Result<StackStatus> {
    let start = Instant::now();
    let mut shown: Option<StackStatus> = None;
    loop {
        let stack = describe(session, stack_id).await?;
        let status = stack.stack_status().cloned().context("no stack status")?;
        if shown.as_ref() != Some(&status) {
            let why = stack
                .stack_status_reason()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            println!(
                "  {doing}: {status}{why} after {:.0}s",
                start.elapsed().as_secs_f64()
            );
            shown = Some(status.clone());
        }
        if !status.as_str().ends_with("_IN_PROGRESS") {
            return Ok(status);
        }
        tokio::time::sleep(POLL).await;
    }
}
