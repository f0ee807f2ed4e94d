//! `client:` — the identity `couch-client` runs as: who may assume it.

use serde::Deserialize;

use super::{Converting, Section};
use crate::stack::{Client, Stack};

/// As written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub assumed_by: Vec<String>,
}

impl Section for Option<Raw> {
    type Typed = Option<Client>;
    fn placeholder() -> Self {
        None
    }
    /// A preview declares none: `client:` grants the principals it names
    /// access to the stack's queue and pictures, and a preview is what a
    /// pull request deploys.
    fn typed(self, c: &mut Converting<'_>) -> Option<Client> {
        let raw = self?;
        if c.preview {
            c.problems.push((
                "client".into(),
                format!(
                    "a preview stack (--name {}) declares no client identity: `client:` grants the principals it names access to the stack's queue and pictures, and a preview is what a pull request deploys. Remove `client:` from this file, or plan the file's own stack (without --name)",
                    c.name
                ),
            ));
            return None;
        }
        Some(Client {
            assumed_by: raw.assumed_by,
        })
    }
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

#[cfg(test)]
mod tests {
    use crate::stack::parse;
    use crate::stack::validate::tests::*;
    use std::path::Path;

    #[test]
    fn the_client_identity_names_iam_principals() {
        let with = |line: &str| format!("{GOOD}{line}\n");
        let s = parse(
            Path::new("stacks/t.yaml"),
            &with("client: { assumed_by: [\"arn:aws:iam::123456789012:user/phone\", \"arn:aws:iam::123456789012:root\"] }"),
        )
        .unwrap();
        assert_eq!(
            s.client.unwrap().assumed_by,
            [
                "arn:aws:iam::123456789012:user/phone",
                "arn:aws:iam::123456789012:root"
            ]
        );
        for (line, path, needle) in [
            (
                "client: { assumed_by: [] }",
                "client.assumed_by",
                "names nobody",
            ),
            (
                "client: { assumed_by: [\"123456789012\"] }",
                "client.assumed_by.0",
                "not an IAM principal ARN",
            ),
            (
                "client: { assumed_by: [\"arn:aws:iam::12345:role/x\"] }",
                "client.assumed_by.0",
                "not an IAM principal ARN",
            ),
            (
                "client: { assumed_by: [\"arn:aws:sts::123456789012:role/x\"] }",
                "client.assumed_by.0",
                "not an IAM principal ARN",
            ),
            ("client: { trusted: [] }", "client.trusted", "unknown field"),
        ] {
            let ps = problems(&with(line));
            assert_eq!(ps.len(), 1, "{line}: {ps:#?}");
            assert_eq!(ps[0].path, path, "{line}");
            assert!(ps[0].message.contains(needle), "{line}: {}", ps[0]);
            assert_eq!(
                ps[0].line,
                with(line).lines().count(),
                "{line}: located on its line"
            );
        }
    }
}
