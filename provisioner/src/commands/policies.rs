//! `provisioner policies --stack F [--github-repo OWNER/NAME] [--account ID]
//! [--json]`: every IAM policy document the stack and its bootstrap roles
//! would carry, with the ARNs AWS will derive. With `--account` no AWS call
//! is made (the account is the only thing the ARNs need from AWS). What
//! `scripts/check-policies` checks against AWS's Service Authorization
//! Reference.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use serde::Serialize;
use serde_json::Value;

use super::Session;
use super::bootstrap::attributes;
use crate::artifacts::Artifacts;
use crate::aws::Aws;
use crate::aws::clients::region_for;
use crate::engine::Attrs;
use crate::engine::plan::resolve_fields;
use crate::engine::refs::{reference, resolve};
use crate::kind::DocumentType;
use crate::stack;

/// Print every IAM policy document the stack and its bootstrap roles
/// would carry (trust, inline and resource policies), with the ARNs AWS
/// will derive. With --account, no AWS call is made.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Include the CI roles' trust policies for this repository.
    #[arg(long, value_name = "OWNER/NAME")]
    pub github_repo: Option<String>,
    /// The account the ARNs name (otherwise: one sts:GetCallerIdentity).
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// Print them as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One document, named so a finding can point at it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Named {
    /// `role.worker` (`couch-prod-worker`): address and physical name.
    pub address: String,
    pub resource: String,
    /// `trust policy`, `inline policy least-privilege`, `resource policy`.
    pub policy: String,
    #[serde(rename = "type")]
    pub kind: DocumentType,
    pub document: Value,
}

/// A placeholder for an attribute AWS invents at creation (an API's id):
/// `${api.http.id}` is kept as written.
fn lookup_or_placeholder<'a>(
    known: &'a BTreeMap<String, Attrs>,
) -> impl Fn(&str, &str) -> Option<String> + 'a {
    move |address: &str, attr: &str| {
        Some(
            known
                .get(address)
                .and_then(|a| a.get(attr).cloned())
                .unwrap_or_else(|| reference(address, attr)),
        )
    }
}

/// Every document of the session's kinds, references resolved.
async fn documents_of(session: &Session) -> Result<Vec<Named>> {
    let known = attributes(session).await?;
    let lookup = lookup_or_placeholder(&known);
    let mut out = Vec::new();
    // A resource declared absent carries no document (apply deletes it).
    for k in session.kinds.iter().filter(|k| !k.declared().absent) {
        let (fields, _) = resolve_fields(k.as_ref(), &lookup);
        for d in k.documents(&fields) {
            let (document, _) = resolve(&d.document, &lookup);
            out.push(Named {
                address: k.address().to_owned(),
                resource: k.name().to_owned(),
                policy: d.name,
                kind: d.kind,
                document,
            });
        }
    }
    Ok(out)
}

/// The stack's documents, then (with a repository) the bootstrap roles'.
pub async fn documents(session: &Session, repo: Option<&str>) -> Result<Vec<Named>> {
    let mut out = documents_of(session).await?;
    match repo {
        Some(repo) => {
            let boot = super::bootstrap::declare(session, repo).await?;
            // The stack's boundary is in both: shown once.
            let shown: Vec<String> = out.iter().map(|d| d.address.clone()).collect();
            out.extend(
                documents_of(&boot)
                    .await?
                    .into_iter()
                    .filter(|d| !shown.contains(&d.address)),
            );
        }
        None => {
            // Without a repository there is no trust to show; the policies are the same.
            let policies = super::bootstrap::policies(session).await?;
            let name = &session.stack.name;
            // The preview boundary is bootstrap's alone.
            if session.stack.preview_of.is_none() {
                out.push(Named {
                    address: crate::declare::PREVIEW_BOUNDARY.into(),
                    resource: session.stack.preview_boundary_name(),
                    policy: crate::aws::managed_policies::BOUNDARY_POLICY.into(),
                    kind: DocumentType::Identity,
                    document: serde_json::to_value(&policies.preview_boundary)?,
                });
            }
            for (role, doc) in [
                (crate::bootstrap::Role::Plan, policies.plan),
                (crate::bootstrap::Role::Apply, policies.apply),
                (crate::bootstrap::Role::Preview, policies.preview),
            ] {
                out.push(Named {
                    address: format!("role.github_{}", role.suffix()),
                    resource: format!("{name}-github-{}", role.suffix()),
                    policy: format!(
                        "{} {}",
                        crate::aws::roles::INLINE_POLICY,
                        crate::aws::roles::POLICY_NAME
                    ),
                    kind: DocumentType::Identity,
                    document: serde_json::to_value(doc)?,
                });
            }
        }
    }
    Ok(out)
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    if let Some(repo) = &args.github_repo {
        crate::bootstrap::check_repo(repo).map_err(|e| anyhow!(e))?;
    }
    let stack = stack::load_named(path, inputs.name.as_deref())?;
    let region = region_for(&stack.region);
    let aws = match &args.account {
        Some(account) => {
            if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
                return Err(anyhow!(
                    "--account {account:?}: an AWS account id is 12 digits"
                ));
            }
            Aws::offline(&region).with_account(account)
        }
        None => Aws::load(&region).await,
    };
    let session = Session::new(stack, &Artifacts::load(&inputs.artifacts), Arc::new(aws));
    let docs = documents(&session, args.github_repo.as_deref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
    } else {
        for d in &docs {
            println!(
                "# {} ({}): {}\n{}\n",
                d.address,
                d.resource,
                d.policy,
                serde_json::to_string_pretty(&d.document)?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
