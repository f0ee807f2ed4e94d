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
use crate::cloudformation::logical_id;
use crate::engine::refs::resolve;
use crate::engine::{Resource, Text};

/// GitHub Actions' OIDC issuer.
pub const GITHUB_OIDC_HOST: &str = "token.actions.githubusercontent.com";
/// The audience `aws-actions/configure-aws-credentials` asks tokens for.
pub const AUDIENCE: &str = "sts.amazonaws.com";

/// Some IAM actions on some resources, optionally under a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub actions: Vec<&'static str>,
    /// ARNs; may hold `${address.attr}` references (resolved from predictions).
    pub resources: Vec<Text>,
    /// `(operator, key, values)`.
    pub condition: Option<(&'static str, &'static str, Vec<Text>)>,
}

impl Grant {
    pub fn on(actions: &[&'static str], resources: Vec<Text>) -> Grant {
        Grant {
            actions: actions.to_vec(),
            resources,
            condition: None,
        }
    }

    pub fn when(mut self, operator: &'static str, key: &'static str, values: Vec<Text>) -> Grant {
        self.condition = Some((operator, key, values));
        self
    }
}

/// The pseudo-address whose attributes `partition`, `region` and `account`
/// every policy lookup answers.
pub const ACCOUNT: &str = "aws";

/// `arn:{partition}:{service}:{region}:{account}:{rest}` of this stack's account.
pub fn account_arn(service: &str, rest: impl Into<Text>) -> Text {
    Text::from(format!(
        "arn:${{{ACCOUNT}.partition}}:{service}:${{{ACCOUNT}.region}}:${{{ACCOUNT}.account}}:"
    ))
    .then(rest)
}

/// A resource's own attribute, as a reference the policy lookup resolves.
pub fn own(resource: &(impl Resource + ?Sized), attr: &str) -> Text {
    Text::from(crate::engine::refs::reference(resource.address(), attr))
}

/// What a kind's SDK calls need from IAM. Implemented next to each kind's
/// `impl Resource`; `tests/access.rs` checks the actions against the calls
/// plan, apply, update and destroy really make.
pub trait Access: Resource {
    /// What `plan` (and every verb) calls to read it.
    fn read_access(&self) -> Vec<Grant>;
    /// What `apply` and `destroy` call besides reading.
    fn write_access(&self) -> Vec<Grant>;
}

/// The two roles bootstrap makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Any branch or pull request: reads only.
    Plan,
    /// `main` and the `production` environment: reads and changes.
    Apply,
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
        if role == Role::Apply {
            grants.extend(r.write_access());
        }
        // Merge grants on the same resources and condition.
        let mut merged: BTreeMap<String, Grant> = BTreeMap::new();
        for g in grants {
            let key = format!("{:?}{:?}", g.resources, g.condition);
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
            if let Some((op, key, values)) = &g.condition {
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
        Role::Apply => "StringEquals",
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
