//! `provisioner bootstrap --github-repo OWNER/NAME`: GitHub's OIDC provider
//! (created or adopted) and the stack's plan, apply and preview roles, with policies
//! derived from the declaration. Planned, confirmed and applied like the
//! stack itself, through the same engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use super::Session;
use crate::artifacts::Artifacts;
use crate::aws::managed_policies::{ManagedPolicy, ManagedPolicySpec};
use crate::aws::policies::PolicyDocument;
use crate::aws::roles::{IamRole, RoleSpec};
use crate::bootstrap::oidc::GithubOidcProvider;
use crate::bootstrap::{ACCOUNT, Role, check_repo, github_trust, policy, preview_name};
use crate::engine::{Attrs, Handle, Resource};

pub const PLAN_ROLE: &str = "role.github_plan";
pub const APPLY_ROLE: &str = "role.github_apply";
pub const PREVIEW_ROLE: &str = "role.github_preview";

/// Create or adopt GitHub's OIDC provider and the stack's three roles for
/// the `infrastructure` workflow: a plan role (any workflow run of the
/// repository; read-only), an apply role (only jobs in the `production`
/// environment, which the repository limits to main) and a preview role
/// (only jobs in the `preview` environment; only the stacks named
/// `{name}-pr-*`), with policies derived from the stack. Prints their ARNs.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// The repository whose workflows may assume the roles.
    #[arg(long, value_name = "OWNER/NAME")]
    pub github_repo: String,
    /// Do not ask for confirmation (also: CI=true).
    #[arg(long)]
    pub yes: bool,
    /// Grant the roles' new permissions without asking (every new role
    /// broadens what someone may do).
    #[arg(long)]
    pub approve_broadening: bool,
}

/// Every attribute a policy may name: the stack's resources as predicted
/// (ARNs follow from names, region and account) and the account itself.
pub async fn attributes(session: &Session) -> Result<BTreeMap<String, Attrs>> {
    // Concurrently: the predictions share one STS call for the account.
    let predicted = futures::future::join_all(session.resources().iter().map(|r| async move {
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

/// The CI roles' permission policies, and the boundaries the roles they
/// create must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Policies {
    pub plan: PolicyDocument,
    pub apply: PolicyDocument,
    pub preview: PolicyDocument,
    /// The stack's roles' boundary (`{name}-boundary`), references resolved.
    pub boundary: PolicyDocument,
    /// Every preview's roles' boundary (`{name}-preview-boundary`).
    pub preview_boundary: PolicyDocument,
}

/// `doc` with every reference resolved by `lookup`.
fn resolved(
    doc: &PolicyDocument,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
    what: &str,
) -> Result<PolicyDocument> {
    let value = serde_json::to_value(doc)?;
    let (value, known) = crate::engine::refs::resolve(&value, lookup);
    if !known {
        return Err(anyhow!(
            "{what}: names something not known before deployment: {value}"
        ));
    }
    Ok(serde_json::from_value(value)?)
}

/// The stack's declaration under the name every preview stack matches
/// (`{name}-pr-*`): its resources' names and ARNs are the patterns the
/// preview role's policy names.
pub fn preview_session(session: &Session) -> Session {
    let stack = session.stack.preview(&preview_name(&session.stack.name));
    Session::new(
        stack,
        &Artifacts::load(Path::new("")),
        Arc::clone(&session.aws),
    )
}

/// The plan role's, the apply role's and the preview role's policies.
pub async fn policies(session: &Session) -> Result<Policies> {
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
    // The operating verbs: `status` and `logs` read (every role), `redrive`
    // changes (apply and preview).
    let operate = |lookup: &dyn Fn(&str, &str) -> Option<String>,
                   doc: &mut PolicyDocument,
                   write: bool|
     -> Result<()> {
        let arn = |address: &str| {
            lookup(address, crate::aws::ARN)
                .ok_or_else(|| anyhow!("{address}: its ARN is not known before deployment"))
        };
        doc.statement
            .push(super::status::statement(&session.aws.region));
        doc.statement.push(super::logs::statement(
            &arn(crate::declare::WORKER_LOGS)?,
            &arn(crate::declare::HTTP_LOGS)?,
        ));
        if write {
            doc.statement.extend(super::redrive::statements(
                &arn(crate::declare::DLQ)?,
                &arn(crate::declare::QUEUE)?,
            ));
        }
        Ok(())
    };
    operate(&lookup, &mut plan, false)?;
    operate(&lookup, &mut apply, true)?;
    let boundary = resolved(&session.boundary, &lookup, crate::declare::BOUNDARY)?;
    let previews = preview_session(session);
    let known = attributes(&previews).await?;
    let lookup = |address: &str, attr: &str| known.get(address).and_then(|a| a.get(attr).cloned());
    let mut preview = policy(&previews.kinds, Role::Preview, &lookup)?;
    preview
        .statement
        .push(crate::lock::statement(&previews.stack, true));
    operate(&lookup, &mut preview, true)?;
    let preview_boundary = resolved(
        &previews.boundary,
        &lookup,
        crate::declare::PREVIEW_BOUNDARY,
    )?;
    Ok(Policies {
        plan,
        apply,
        preview,
        boundary,
        preview_boundary,
    })
}

/// The bootstrap resources as a session of their own: the provider, then
/// both roles (whose trust names the provider).
pub async fn declare(session: &Session, repo: &str) -> Result<Session> {
    let policies = policies(session).await?;
    let aws = Arc::clone(&session.aws);
    let provider = GithubOidcProvider::new(Arc::clone(&aws));
    let provider_arn = Handle::<GithubOidcProvider>::new(provider.address()).arn();
    let name = &session.stack.name;
    let role = |address: &str, role: Role, policy: PolicyDocument| {
        IamRole::new(
            address,
            format!("{name}-github-{}", role.suffix()),
            &RoleSpec {
                assume_role_policy: github_trust(provider_arn.clone().into(), repo, role),
                policy,
                other_inline_policies: Vec::new(),
                managed_policies: Vec::new(),
                // Made by a person: what holds them is their trust and policy.
                permissions_boundary: None,
                tags: session.stack.resource_tags(),
            },
            Arc::clone(&aws),
        )
    };
    let roles = [
        Arc::new(role(PLAN_ROLE, Role::Plan, policies.plan)),
        Arc::new(role(APPLY_ROLE, Role::Apply, policies.apply)),
        Arc::new(role(PREVIEW_ROLE, Role::Preview, policies.preview)),
    ];
    // The boundaries the apply and preview roles must put on every role
    // they create: made here, by a person, and never writable by CI. The
    // stack's own is the same declaration as the stack's (so its apply
    // finds it as declared); a preview's is made only here.
    let boundary = |address: &str, name: String, document: PolicyDocument| {
        Arc::new(ManagedPolicy::new(
            address,
            name,
            &ManagedPolicySpec {
                document,
                tags: session.stack.resource_tags(),
            },
            Arc::clone(&aws),
        ))
    };
    let boundaries = [
        boundary(
            crate::declare::BOUNDARY,
            session.stack.boundary_name(),
            policies.boundary.clone(),
        ),
        boundary(
            crate::declare::PREVIEW_BOUNDARY,
            session.stack.preview_boundary_name(),
            policies.preview_boundary.clone(),
        ),
    ];
    let arn = |address: &str| Handle::<IamRole>::new(address).arn().into();
    // In the order the plan shows them; `provisioner policies` prints the
    // documents of each (the provider has none).
    let mut kinds: Vec<Arc<dyn crate::kind::Kind>> = vec![Arc::new(provider)];
    kinds.extend(
        boundaries
            .into_iter()
            .map(|b| b as Arc<dyn crate::kind::Kind>),
    );
    kinds.extend(roles.into_iter().map(|r| r as Arc<dyn crate::kind::Kind>));
    Ok(Session {
        stack: session.stack.clone(),
        aws,
        kinds,
        boundary: policies.boundary,
        lock_timeout: session.lock_timeout,
        outputs: vec![
            ("AWS_PLAN_ROLE_ARN", arn(PLAN_ROLE)),
            ("AWS_APPLY_ROLE_ARN", arn(APPLY_ROLE)),
            ("AWS_PREVIEW_ROLE_ARN", arn(PREVIEW_ROLE)),
        ],
    })
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
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
                &super::apply::Converge {
                    broadening: super::apply::Broadening::approved_if(args.approve_broadening),
                    ..super::apply::Converge::asking(crate::engine::Mode::Apply, args.yes)
                },
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
    println!("{}", next_steps(&args.github_repo));
    Ok(ExitCode::SUCCESS)
}

/// What only the repository's settings can hold: the environments the roles
/// that change AWS trust (`crate::bootstrap::environment`).
pub fn next_steps(repo: &str) -> String {
    use crate::bootstrap::{PREVIEW, PRODUCTION};
    format!(
        "\nThen, in {repo}'s Settings > Environments (the apply and preview roles trust only these environments' jobs):\n  \
         1. `{PRODUCTION}`: Deployment branches and tags > Selected branches: `main` only; Required reviewers: who approves a deploy.\n  \
         2. `{PREVIEW}`: Required reviewers: who approves running a pull request's code with AWS credentials (a preview stack).\n\
         A pull request can change the workflow file, not these settings: without them, any job that names the environment gets its role."
    )
}
