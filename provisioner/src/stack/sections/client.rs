//! `client:` — the identity `couch-client` runs as: who may assume it.

use serde::Deserialize;

use crate::stack::Stack;

/// As written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub assumed_by: Vec<String>,
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    if let Some(client) = &s.client {
        if client.assumed_by.is_empty() {
            out.push((
                "client.assumed_by".into(),
                "names nobody: give the IAM principal ARNs that may assume the client role, or leave `client:` out".into(),
            ));
        }
        for (i, p) in client.assumed_by.iter().enumerate() {
            if !is_principal_arn(p) {
                out.push((
                    format!("client.assumed_by.{i}"),
                    format!(
                        "{p:?} is not an IAM principal ARN: arn:aws:iam::ACCOUNT:root, arn:aws:iam::ACCOUNT:user/NAME or arn:aws:iam::ACCOUNT:role/NAME"
                    ),
                ));
            }
        }
    }
}

/// An account, user or role ARN, as a trust policy's `Principal.AWS` takes it.
fn is_principal_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, "iam", "", account, resource] = parts.as_slice() else {
        return false;
    };
    let named = |prefix: &str| {
        resource.strip_prefix(prefix).is_some_and(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c))
        })
    };
    *arn == "arn"
        && ["aws", "aws-cn", "aws-us-gov"].contains(partition)
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && (*resource == "root" || named("user/") || named("role/"))
}
