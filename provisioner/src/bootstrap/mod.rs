//! `provisioner bootstrap`: the AWS side of the `infrastructure` workflow.
//! GitHub's OIDC identity provider (one per account, shared) and two roles
//! per stack whose policies are derived from the declaration, like the
//! functions' policies: each kind says, next to its SDK calls, which IAM
//! actions reading it ([`Access::read_access`], the plan role) and changing it
//! ([`Access::write_access`], the apply role) take, on which of its ARNs.

pub mod oidc;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::aws::policies::{PolicyDocument, Principal, Statement};
use crate::engine::Text;
use crate::engine::refs::resolve;
pub use crate::kind::access::{ACCOUNT, Access, Grant, account_arn, own};
use crate::kind::export::logical_id;

/// GitHub Actions' OIDC issuer.
pub const GITHUB_OIDC_HOST: &str = "token.actions.githubusercontent.com";
/// The audience `aws-actions/configure-aws-credentials` asks tokens for.
pub const AUDIENCE: &str = "sts.amazonaws.com";

/// The three roles bootstrap makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Any job of the repository: reads only.
    Plan,
    /// Jobs in the `production` environment: reads and changes.
    Apply,
    /// Jobs in the `preview` environment: reads and changes, only on the
    /// resources of preview stacks ([`preview_name`]).
    Preview,
}

/// The GitHub environment a role that changes AWS is held to (its token's
/// `sub` is `repo:OWNER/NAME:environment:NAME`); `None` for the plan role.
/// An environment's protection rules (required reviewers, the branches that
/// may deploy to it) are settings of the repository, which a pull request
/// cannot change; a workflow file is not (a pull request may edit it).
pub fn environment(role: Role) -> Option<&'static str> {
    match role {
        Role::Plan => None,
        Role::Apply => Some(PRODUCTION),
        Role::Preview => Some(PREVIEW),
    }
}

/// The environment the apply job runs in: limit it to `main` (a deployment
/// branch policy) and give it required reviewers.
pub const PRODUCTION: &str = "production";
/// The environment preview jobs run in: give it required reviewers, so a
/// pull request's code reaches AWS only after a person approved that run.
pub const PREVIEW: &str = "preview";

impl Role {
    /// `plan`, `apply`, `preview`: the role's name is `{stack}-github-{suffix}`.
    pub fn suffix(self) -> &'static str {
        match self {
            Role::Plan => "plan",
            Role::Apply => "apply",
            Role::Preview => "preview",
        }
    }
}

/// The stack name every preview stack of `stack` matches: `{stack}-pr-*`
/// (the infrastructure workflow names them `{stack}-pr-{number}`). Policies
/// derived for this name cover every preview stack and never the stack itself.
pub fn preview_name(stack: &str) -> String {
    format!("{stack}-pr-*")
}

#[derive(Debug, thiserror::Error)]
#[error("{address}: {what} is not known before deployment, so no policy can name it")]
pub struct AccessError {
    pub address: String,
    pub what: String,
}

/// The role's policy for these resources, references resolved with `lookup`
/// (the resources' predicted attributes: ARNs follow from names, region and
/// account). One statement per resource and kind of access.
pub fn policy<A: Access + ?Sized>(
    resources: &[Arc<A>],
    role: Role,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<PolicyDocument, AccessError> {
    let mut statements = Vec::new();
    for r in resources {
        let mut grants = r.read_access();
        if role != Role::Plan && !r.held_from_ci() {
            grants.extend(r.write_access());
        }
        // Merge grants on the same resources and condition.
        let mut merged: BTreeMap<String, Grant> = BTreeMap::new();
        for g in grants {
            let key = format!("{:?}{:?}", g.resources, g.conditions);
            match merged.get_mut(&key) {
                Some(m) => m.actions.extend(g.actions),
                None => {
                    merged.insert(key, g);
                }
            }
        }
        for (i, mut g) in merged.into_values().enumerate() {
            g.actions.sort_unstable();
            g.actions.dedup();
            let sid = format!("{}{}", logical_id(r.address()), i + 1);
            let resolved = |texts: &[Text]| -> Result<Vec<Text>, AccessError> {
                texts
                    .iter()
                    .map(|t| {
                        let (v, known) = resolve(&Value::String(t.as_str().to_owned()), lookup);
                        match (known, v) {
                            (true, Value::String(s)) => Ok(Text::literal(s)),
                            _ => Err(AccessError {
                                address: r.address().to_owned(),
                                what: t.as_str().to_owned(),
                            }),
                        }
                    })
                    .collect()
            };
            let mut st = Statement::allow(&sid, &g.actions, resolved(&g.resources)?);
            for (op, key, values) in &g.conditions {
                st = st.when(op, key, resolved(values)?);
            }
            statements.push(st);
        }
    }
    Ok(PolicyDocument::new(statements))
}

/// The trust policy of a role GitHub Actions assumes with its OIDC token:
/// only tokens for `sts.amazonaws.com` whose subject is one of [`subjects`]
/// (the plan role's is a pattern).
pub fn github_trust(provider_arn: Text, repo: &str, role: Role) -> PolicyDocument {
    let mut st = Statement {
        sid: Some("GitHubActions".into()),
        effect: "Allow".into(),
        principal: Some(Principal {
            service: Vec::new(),
            federated: vec![provider_arn],
            aws: Vec::new(),
        }),
        action: vec!["sts:AssumeRoleWithWebIdentity".into()],
        resource: Vec::new(),
        condition: BTreeMap::new(),
    };
    st = st.when(
        "StringEquals",
        &format!("{GITHUB_OIDC_HOST}:aud"),
        vec![AUDIENCE.into()],
    );
    let operator = match role {
        Role::Plan => "StringLike",
        Role::Apply | Role::Preview => "StringEquals",
    };
    st = st.when(
        operator,
        &format!("{GITHUB_OIDC_HOST}:sub"),
        subjects(repo, role)
            .into_iter()
            .map(Text::literal)
            .collect(),
    );
    PolicyDocument::new(vec![st])
}

/// Who may assume `role` in `repo` (`OWNER/NAME`): GitHub's `sub` claims
/// (docs.github.com, "About security hardening with OpenID Connect",
/// example subject claims: a job that names an environment gets
/// `repo:OWNER/NAME:environment:NAME` instead of its branch or event).
///
/// The roles that change AWS trust only their environment's subject: a
/// branch subject (`ref:refs/heads/main`) or `pull_request` would let any
/// job of that branch or pull request assume them, and a pull request can
/// write such a job into the workflow file it changes. The plan role keeps
/// every subject of the repository: it only reads (the stack's resources,
/// its lock, logs and status, and where AWS names no resource the Region's
/// HTTP APIs and log groups), so a pull request's plan runs without waiting
/// for anyone.
pub fn subjects(repo: &str, role: Role) -> Vec<String> {
    match environment(role) {
        Some(env) => vec![format!("repo:{repo}:environment:{env}")],
        None => vec![format!("repo:{repo}:*")],
    }
}

/// `OWNER/NAME` as GitHub allows it.
pub fn check_repo(repo: &str) -> Result<(), String> {
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if ok(owner) && ok(name) => Ok(()),
        _ => Err(format!(
            "--github-repo {repo:?}: expected OWNER/NAME (letters, digits, '-', '_', '.')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_owner_slash_name() {
        assert!(check_repo("couch-explorers/couch").is_ok());
        for bad in ["couch", "a/b/c", "/b", "a/", "a b/c", "a/*"] {
            assert!(check_repo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_preview_role_trusts_its_environment_only() {
        let doc = serde_json::to_value(github_trust(
            "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com".into(),
            "o/n",
            Role::Preview,
        ))
        .unwrap();
        assert_eq!(
            doc["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
            serde_json::json!(["repo:o/n:environment:preview"])
        );
        assert_eq!(preview_name("couch-prod"), "couch-prod-pr-*");
    }

    #[test]
    fn the_apply_role_trusts_the_production_environment_only() {
        let doc = serde_json::to_value(github_trust(
            "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com".into(),
            "o/n",
            Role::Apply,
        ))
        .unwrap();
        let st = &doc["Statement"][0];
        assert_eq!(
            st["Action"],
            serde_json::json!(["sts:AssumeRoleWithWebIdentity"])
        );
        assert_eq!(
            st["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
            serde_json::json!(["repo:o/n:environment:production"])
        );
        assert_eq!(
            st["Condition"]["StringEquals"]["token.actions.githubusercontent.com:aud"],
            serde_json::json!(["sts.amazonaws.com"])
        );
    }
}
