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
    /// Any branch or pull request: reads only.
    Plan,
    /// `main` and the `production` environment: reads and changes.
    Apply,
    /// The repository's pull requests: reads and changes, only on the
    /// resources of preview stacks ([`preview_name`]).
    Preview,
}

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
        if role != Role::Plan {
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

/// Who may assume `role` in `repo` (`OWNER/NAME`): GitHub's `sub` claims.
pub fn subjects(repo: &str, role: Role) -> Vec<String> {
    match role {
        // Every branch, tag, environment and pull request of the repository.
        Role::Plan => vec![format!("repo:{repo}:*")],
        // A job on main, or a job in the `production` environment (whose
        // token's subject names the environment instead of the branch).
        Role::Apply => vec![
            format!("repo:{repo}:ref:refs/heads/main"),
            format!("repo:{repo}:environment:production"),
        ],
        // A job of a `pull_request` event (GitHub's subject for it; no
        // environment, which would change the subject).
        Role::Preview => vec![format!("repo:{repo}:pull_request")],
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
    fn the_preview_role_trusts_pull_requests_only() {
        let doc = serde_json::to_value(github_trust(
            "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com".into(),
            "o/n",
            Role::Preview,
        ))
        .unwrap();
        assert_eq!(
            doc["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
            serde_json::json!(["repo:o/n:pull_request"])
        );
        assert_eq!(preview_name("couch-prod"), "couch-prod-pr-*");
    }

    #[test]
    fn the_apply_role_trusts_main_and_production_only() {
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
            serde_json::json!([
                "repo:o/n:ref:refs/heads/main",
                "repo:o/n:environment:production"
            ])
        );
        assert_eq!(
            st["Condition"]["StringEquals"]["token.actions.githubusercontent.com:aud"],
            serde_json::json!(["sts.amazonaws.com"])
        );
    }
}
