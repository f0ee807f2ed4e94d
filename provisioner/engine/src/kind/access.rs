//! What a kind says about the IAM access its own SDK calls take
//! ([`Access`]): reads (the plan role) and writes (the apply role), on its own
//! ARNs, as [`Grant`]s. Consumed by `bootstrap` (the CI roles' policies) and
//! checked against the real calls by `tests/access.rs`.

use serde::Serialize;
use serde_json::Value;

use crate::{Fields, Resource, Text};

/// Some IAM actions on some resources, optionally under conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub actions: Vec<&'static str>,
    /// ARNs; may hold `${address.attr}` references (resolved from predictions).
    pub resources: Vec<Text>,
    /// `(operator, key, values)`, all of which must hold.
    pub conditions: Vec<(&'static str, &'static str, Vec<Text>)>,
}

impl Grant {
    pub fn on(actions: &[&'static str], resources: Vec<Text>) -> Grant {
        Grant {
            actions: actions.to_vec(),
            resources,
            conditions: Vec::new(),
        }
    }

    /// For actions AWS authorises on no resource type (the Service
    /// Authorization Reference lists none: the resource must be `*`), the
    /// narrowest form left: `*` in the stack's Region only
    /// (`aws:RequestedRegion`, a global condition key). Narrow further with
    /// [`Grant::when`] where the action has condition keys of its own.
    pub fn unscoped(actions: &[&'static str]) -> Grant {
        Grant::on(actions, vec![Text::literal("*")]).when(
            "StringEquals",
            "aws:RequestedRegion",
            vec![Text::from(format!("${{{ACCOUNT}.region}}"))],
        )
    }

    pub fn when(mut self, operator: &'static str, key: &'static str, values: Vec<Text>) -> Grant {
        self.conditions.push((operator, key, values));
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
    Text::from(crate::refs::reference(resource.address(), attr))
}

/// What a kind's SDK calls need from IAM. Implemented next to each kind's
/// `impl Resource`; `tests/access.rs` checks the actions against the calls
/// plan, apply, update and destroy really make.
pub trait Access: Resource {
    /// What `plan` (and every verb) calls to read it.
    fn read_access(&self) -> Vec<Grant>;
    /// What `apply` and `destroy` call besides reading.
    fn write_access(&self) -> Vec<Grant>;
    /// Whether only a person (or `bootstrap`) may change it: the apply and
    /// preview roles get its reads, never its writes (a permissions
    /// boundary: the ceiling CI itself is held to).
    fn held_from_ci(&self) -> bool {
        false
    }
    /// The IAM policy documents these fields give the resource (a role's
    /// trust and inline policy, a function's resource-policy statement), as
    /// IAM stores them; strings may still hold `${address.attr}` references.
    /// For `provisioner policies` and the authorization-reference check.
    fn documents(&self, _fields: &Fields) -> Vec<Document> {
        Vec::new()
    }
}

/// What kind of IAM document: who it is attached to decides how IAM reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentType {
    /// Attached to a principal (a role's inline policy): actions on resources.
    Identity,
    /// A role's trust policy: who may assume it (no `Resource`).
    Trust,
    /// Attached to a resource: which principals may act on it.
    Resource,
}

/// One IAM document a resource carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    /// `trust policy`, `inline policy least-privilege`, `resource policy`.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: DocumentType,
    pub document: Value,
}
