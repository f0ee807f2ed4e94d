//! `provisioner bootstrap --github-repo OWNER/NAME`: GitHub's OIDC provider
//! (created or adopted) and the stack's plan and apply roles, with policies
//! derived from the declaration. Planned, confirmed and applied like the
//! stack itself, through the same engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use super::Session;
use crate::aws::policies::PolicyDocument;
use crate::aws::roles::{IamRole, RoleSpec};
use crate::bootstrap::oidc::GithubOidcProvider;
use crate::bootstrap::{ACCOUNT, Role, check_repo, github_trust, policy};
use crate::engine::{Attrs, Handle, Resource};

pub const PLAN_ROLE: &str = "role.github_plan";
pub const APPLY_ROLE: &str = "role.github_apply";

pub struct Args {
    pub github_repo: String,
    pub yes: bool,
    pub approve_broadening: bool,
}

/// Every attribute a policy may name: the stack's resources as predicted
/// (ARNs follow from names, region and account) and the account itself.
pub async fn attributes(session: &Session) -> Result<BTreeMap<String, Attrs>> {
    // Concurrently: the predictions share one STS call for the account.
    let predicted = futures::future::join_all(session.resources.iter().map(|r| async move {
        r.predict()
            .await
            .map(|attrs| (r.address().to_owned(), attrs))
            .map_err(|e| anyhow!("{}: {e}", r.address()))
    }))
    .await;
    let mut known = predicted.into_iter().collect::<Result<BTreeMap<_, _>>>()?;
    let account = session.aws.account_id().await.map_err(|e| anyhow!("{e}"))?;
    known.insert(
        ACCOUNT.to_owned(),
        [
            ("partition".to_owned(), session.aws.partition().to_owned()),
            ("region".to_owned(), session.aws.region.clone()),
            ("account".to_owned(), account),
        ]
        .into(),
    );
    Ok(known)
}

/// The plan role's and the apply role's policies.
pub async fn policies(session: &Session) -> Result<(PolicyDocument, PolicyDocument)> {
    let known = attributes(session).await?;
    let lookup = |address: &str, attr: &str| known.get(address).and_then(|a| a.get(attr).cloned());
    let mut plan = policy(&session.kinds, Role::Plan, &lookup)?;
    let mut apply = policy(&session.kinds, Role::Apply, &lookup)?;
    // The stack lock (crate::lock): read by plan, taken by apply and destroy.
    plan.statement
        .push(crate::lock::statement(&session.stack, false));
    apply
        .statement
        .push(crate::lock::statement(&session.stack, true));
    Ok((plan, apply))
}

/// The bootstrap resources as a session of their own: the provider, then
/// both roles (whose trust names the provider).
pub async fn declare(session: &Session, repo: &str) -> Result<Session> {
    let (plan_policy, apply_policy) = policies(session).await?;
    let aws = Arc::clone(&session.aws);
    let provider = GithubOidcProvider::new(Arc::clone(&aws));
    let provider_arn = Handle::<GithubOidcProvider>::new(provider.address()).arn();
    let name = &session.stack.name;
    let role = |address: &str, suffix: &str, role: Role, policy: PolicyDocument| {
        IamRole::new(
            address,
            format!("{name}-github-{suffix}"),
            &RoleSpec {
                assume_role_policy: github_trust(provider_arn.clone().into(), repo, role),
                policy,
                other_inline_policies: Vec::new(),
                managed_policies: Vec::new(),
                tags: session.stack.resource_tags(),
            },
            Arc::clone(&aws),
        )
    };
    let plan_role = role(PLAN_ROLE, "plan", Role::Plan, plan_policy);
    let apply_role = role(APPLY_ROLE, "apply", Role::Apply, apply_policy);
    let plan_arn = Handle::<IamRole>::new(PLAN_ROLE).arn();
    let apply_arn = Handle::<IamRole>::new(APPLY_ROLE).arn();
    Ok(Session {
        stack: session.stack.clone(),
        aws,
        resources: vec![
            Arc::new(provider),
            Arc::new(plan_role),
            Arc::new(apply_role),
        ],
        kinds: Vec::new(),
        lock_timeout: session.lock_timeout,
        outputs: vec![
            ("AWS_PLAN_ROLE_ARN", plan_arn.into()),
            ("AWS_APPLY_ROLE_ARN", apply_arn.into()),
        ],
    })
}

pub async fn run(path: &Path, args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    check_repo(&args.github_repo).map_err(|e| anyhow!(e))?;
    let session = Session::open(path, inputs).await?;
    let boot = declare(&session, &args.github_repo)
        .await
        .context("deriving the roles' policies")?;
    // The stack's lock: bootstrap changes what may change the stack.
    let code = session
        .locked(
            "bootstrap",
            super::apply::converge(
                &boot,
                crate::engine::Mode::Apply,
                false,
                args.yes,
                if args.approve_broadening {
                    super::apply::Broadening::Approved
                } else {
                    super::apply::Broadening::Ask
                },
                None,
            ),
        )
        .await?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let snapshot = boot.read().await?;
    println!(
        "\nSet these as variables of {} (Settings > Secrets and variables > Actions > Variables):",
        args.github_repo
    );
    for (name, value) in boot.outputs(&snapshot) {
        let value = value.unwrap_or_else(|| "(not created)".into());
        println!(
            "  {name}={value}    # gh variable set {name} --repo {} --body {value}",
            args.github_repo
        );
    }
    Ok(ExitCode::SUCCESS)
}
