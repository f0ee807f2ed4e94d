//! The plan's permission section: every change to what anyone may do, one
//! statement per line, like the AWS CDK's "IAM Statement Changes" table, and
//! which of them grant more than before (**broadening**).
//!
//! Kinds translate their documents (a role's trust and inline policy, its
//! attached managed policies, a function's resource policy) into
//! [`Permission`]s with [`Resource::permissions`](super::Resource::permissions);
//! this module only compares them as sets of strings, so it knows no AWS.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One statement of a permission document, flattened to strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Permission {
    /// Which document of the resource: `inline policy`, `trust policy`,
    /// `resource policy`, `managed policy` (an attachment), ...
    pub document: String,
    /// `Allow` or `Deny`.
    pub effect: String,
    pub actions: Vec<String>,
    /// Empty for documents that name no resource (trust policies).
    pub resources: Vec<String>,
    /// `Service:lambda.amazonaws.com`, `Federated:arn:...`, `AWS:*`; empty for
    /// identity policies.
    pub principals: Vec<String>,
    pub conditions: Vec<Condition>,
}

/// One condition: `operator` on `key` with any of `values`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// `+` a statement the plan adds, `-` one it removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sign {
    #[serde(rename = "+")]
    Added,
    #[serde(rename = "-")]
    Removed,
}

impl Sign {
    pub fn symbol(self) -> &'static str {
        match self {
            Sign::Added => "+",
            Sign::Removed => "-",
        }
    }
}

/// One line of the permission section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionChange {
    /// The resource whose document changes (`role.worker`).
    pub address: String,
    pub change: Sign,
    #[serde(flatten)]
    pub permission: Permission,
    /// Whether this grants something no statement granted before: a new
    /// action, a wider resource, a new principal, a removed condition (or a
    /// removed `Deny`).
    pub broadening: bool,
}

/// The changes that take `before` to `after` for one resource: statements
/// only in `after` are added, only in `before` removed (identical statements
/// are no change, whatever their order).
pub fn changes(
    address: &str,
    before: &[Permission],
    after: &[Permission],
) -> Vec<PermissionChange> {
    let mut out = Vec::new();
    for p in after.iter().filter(|p| !before.contains(p)) {
        let broadening = match p.effect.as_str() {
            "Deny" => false,
            _ => !covered(p, before),
        };
        out.push(PermissionChange {
            address: address.to_owned(),
            change: Sign::Added,
            permission: p.clone(),
            broadening,
        });
    }
    for p in before.iter().filter(|p| !after.contains(p)) {
        // Removing an Allow only narrows; removing a Deny lifts a limit.
        let broadening =
            p.effect == "Deny" && !after.iter().any(|q| q.effect == "Deny" && covers(q, p));
        out.push(PermissionChange {
            address: address.to_owned(),
            change: Sign::Removed,
            permission: p.clone(),
            broadening,
        });
    }
    out
}

/// Whether everything `p` allows was already allowed by `before`: each
/// (action, resource, principal) of `p` is allowed by one statement of the
/// same document whose conditions `p` keeps (a condition narrows).
fn covered(p: &Permission, before: &[Permission]) -> bool {
    let or_none = |v: &[String]| -> Vec<String> {
        if v.is_empty() {
            vec![String::new()]
        } else {
            v.to_vec()
        }
    };
    let (resources, principals) = (or_none(&p.resources), or_none(&p.principals));
    p.actions.iter().all(|action| {
        resources.iter().all(|resource| {
            principals.iter().all(|principal| {
                before.iter().any(|old| {
                    old.document == p.document
                        && old.effect == "Allow"
                        && matches_any(&old.actions, action)
                        && (old.resources.is_empty() && resource.is_empty()
                            || matches_any(&old.resources, resource))
                        && (old.principals.is_empty() && principal.is_empty()
                            || matches_any(&old.principals, principal))
                        && narrower_conditions(&p.conditions, &old.conditions)
                })
            })
        })
    })
}

/// Whether `q` denies at least everything `p` denies (same document).
fn covers(q: &Permission, p: &Permission) -> bool {
    q.document == p.document
        && p.actions.iter().all(|a| matches_any(&q.actions, a))
        && p.resources.iter().all(|r| matches_any(&q.resources, r))
        && p.principals.iter().all(|r| matches_any(&q.principals, r))
        && narrower_conditions(&q.conditions, &p.conditions)
}

/// Whether `new` keeps every condition of `old`, with no value `old` did not allow.
fn narrower_conditions(new: &[Condition], old: &[Condition]) -> bool {
    let by_key: BTreeMap<(&str, &str), &Vec<String>> = new
        .iter()
        .map(|c| ((c.operator.as_str(), c.key.as_str()), &c.values))
        .collect();
    old.iter().all(|c| {
        by_key
            .get(&(c.operator.as_str(), c.key.as_str()))
            .is_some_and(|values| values.iter().all(|v| c.values.contains(v)))
    })
}

fn matches_any(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| glob(p, value))
}

/// IAM's wildcard matching: `*` any run of characters, `?` one character
/// (action names compare case-insensitively, as IAM does).
pub fn glob(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let v: Vec<char> = value.to_lowercase().chars().collect();
    // Iterative matching with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// One line for a terminal: `+ role.worker inline policy: Allow a, b on r when ...`.
pub fn line(c: &PermissionChange) -> String {
    let p = &c.permission;
    let mut out = format!(
        "{} {} {}: {} {}",
        c.change.symbol(),
        c.address,
        p.document,
        p.effect,
        p.actions.join(", ")
    );
    if !p.resources.is_empty() {
        out.push_str(&format!(" on {}", p.resources.join(", ")));
    }
    if !p.principals.is_empty() {
        out.push_str(&format!(" for {}", p.principals.join(", ")));
    }
    if !p.conditions.is_empty() {
        let conditions: Vec<String> = p.conditions.iter().map(condition).collect();
        out.push_str(&format!(" when {}", conditions.join(" and ")));
    }
    if c.broadening {
        out.push_str("  [broadening]");
    }
    out
}

pub fn condition(c: &Condition) -> String {
    format!("{} {} {}", c.key, c.operator, c.values.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(actions: &[&str], resources: &[&str]) -> Permission {
        Permission {
            document: "inline policy".into(),
            effect: "Allow".into(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            principals: Vec::new(),
            conditions: Vec::new(),
        }
    }

    fn broadening(before: &[Permission], after: &[Permission]) -> Vec<(Sign, bool)> {
        changes("role.x", before, after)
            .into_iter()
            .map(|c| (c.change, c.broadening))
            .collect()
    }

    #[test]
    fn the_same_statements_are_no_change() {
        let p = allow(&["sqs:SendMessage"], &["arn:q"]);
        assert!(changes("role.x", std::slice::from_ref(&p), std::slice::from_ref(&p)).is_empty());
    }

    #[test]
    fn a_new_action_a_wider_resource_and_a_new_statement_broaden() {
        let before = [allow(&["sqs:SendMessage"], &["arn:q"])];
        for after in [
            allow(&["sqs:SendMessage", "sqs:DeleteMessage"], &["arn:q"]),
            allow(&["sqs:SendMessage"], &["arn:*"]),
            allow(&["sqs:SendMessage"], &["arn:q", "arn:r"]),
        ] {
            assert_eq!(
                broadening(&before, std::slice::from_ref(&after)),
                [(Sign::Added, true), (Sign::Removed, false)],
                "{after:?}"
            );
        }
        assert_eq!(broadening(&[], &before), [(Sign::Added, true)]);
    }

    #[test]
    fn removing_or_splitting_a_grant_does_not_broaden() {
        let before = [allow(&["s3:GetObject", "s3:PutObject"], &["arn:b/*"])];
        assert_eq!(broadening(&before, &[]), [(Sign::Removed, false)]);
        let narrower = [
            allow(&["s3:GetObject"], &["arn:b/images/*"]),
            allow(&["s3:PutObject"], &["arn:b/*"]),
        ];
        assert_eq!(
            broadening(&before, &narrower),
            [
                (Sign::Added, false),
                (Sign::Added, false),
                (Sign::Removed, false)
            ]
        );
    }

    #[test]
    fn a_removed_condition_and_a_new_principal_broaden_an_added_condition_does_not() {
        let mut with = allow(&["bedrock:X"], &["*"]);
        with.conditions = vec![Condition {
            operator: "StringEquals".into(),
            key: "aws:RequestedRegion".into(),
            values: vec!["us-west-2".into()],
        }];
        let without = allow(&["bedrock:X"], &["*"]);
        assert_eq!(
            broadening(std::slice::from_ref(&with), std::slice::from_ref(&without)),
            [(Sign::Added, true), (Sign::Removed, false)]
        );
        assert_eq!(
            broadening(std::slice::from_ref(&without), std::slice::from_ref(&with)),
            [(Sign::Added, false), (Sign::Removed, false)]
        );
        let mut wider_values = with.clone();
        wider_values.conditions[0].values.push("eu-west-1".into());
        assert_eq!(
            broadening(std::slice::from_ref(&with), &[wider_values]),
            [(Sign::Added, true), (Sign::Removed, false)]
        );

        let trust = |principals: &[&str]| Permission {
            document: "trust policy".into(),
            principals: principals.iter().map(|s| s.to_string()).collect(),
            ..allow(&["sts:AssumeRole"], &[])
        };
        assert_eq!(
            broadening(
                &[trust(&["Service:lambda.amazonaws.com"])],
                &[trust(&[
                    "Service:lambda.amazonaws.com",
                    "Service:edgelambda.amazonaws.com"
                ])]
            ),
            [(Sign::Added, true), (Sign::Removed, false)]
        );
    }

    #[test]
    fn the_same_grant_in_another_document_is_new() {
        let inline = allow(&["s3:GetObject"], &["arn:b/*"]);
        let resource = Permission {
            document: "resource policy".into(),
            ..inline.clone()
        };
        assert_eq!(
            broadening(&[inline], &[resource]),
            [(Sign::Added, true), (Sign::Removed, false)]
        );
    }

    #[test]
    fn wildcards_match_as_iam_matches() {
        assert!(glob(
            "arn:aws:s3:::b/images/*",
            "arn:aws:s3:::b/images/1.png"
        ));
        assert!(glob("sqs:*", "SQS:SendMessage"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("arn:aws:s3:::b/images/*", "arn:aws:s3:::b/other"));
        assert!(!glob("a?c", "ac"));
    }

    #[test]
    fn lines_say_everything_and_mark_broadening() {
        let mut p = allow(&["bedrock:GetFoundationModelAvailability"], &["*"]);
        p.conditions = vec![Condition {
            operator: "StringEquals".into(),
            key: "aws:RequestedRegion".into(),
            values: vec!["us-west-2".into()],
        }];
        let c = &changes("role.github_plan", &[], &[p])[0];
        assert_eq!(
            line(c),
            "+ role.github_plan inline policy: Allow bedrock:GetFoundationModelAvailability on * when aws:RequestedRegion StringEquals us-west-2  [broadening]"
        );
    }
}
