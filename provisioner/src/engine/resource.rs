//! What the engine needs from a resource kind: read its live form, and create,
//! update or delete it. One implementation per kind, under `crate::aws`.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::Value;

/// Field name → value, in the canonical form a kind's `read` also produces
/// (numbers as numbers, policies as parsed JSON, tags as an object).
pub type Fields = BTreeMap<String, Value>;

/// A resource as it exists in the account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// Comparable fields, normalised like [`Resource::desired`].
    pub fields: Fields,
    /// Identifiers other resources can reference (`arn`, `url`, `name`, ...).
    pub attrs: BTreeMap<String, String>,
}

/// The result of a delete that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// AWS does not allow the delete now (e.g. a pending e-mail subscription);
    /// the reason is shown to the user as a warning.
    Skipped(String),
}

/// A failed AWS operation, already rendered for a person: the AWS error code and
/// message, and what was being attempted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ResourceError {
    pub message: String,
}

impl ResourceError {
    pub fn new(message: impl Into<String>) -> Self {
        ResourceError {
            message: message.into(),
        }
    }
}

/// What every declared resource has: its logical address, its deterministic
/// physical name and its desired fields (which may contain references).
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub address: String,
    pub name: String,
    pub fields: Fields,
}

impl Declared {
    pub fn new(address: &str, name: impl Into<String>, fields: Fields) -> Self {
        Declared {
            address: address.to_owned(),
            name: name.into(),
            fields,
        }
    }
}

/// One resource kind's behaviour. The desired value is plain data; the methods
/// that talk to AWS receive desired fields with every reference resolved.
#[async_trait]
pub trait Resource: Send + Sync {
    /// Address, physical name and desired fields.
    fn declared(&self) -> &Declared;
    /// Kind name shown in plans, e.g. `sqs-queue`.
    fn kind(&self) -> &'static str;
    /// Stable logical address, e.g. `queue.prompts`.
    fn address(&self) -> &str {
        &self.declared().address
    }
    /// Deterministic physical name.
    fn name(&self) -> &str {
        &self.declared().name
    }
    /// Desired fields; strings may contain `${address.attr}` references.
    fn desired(&self) -> Fields {
        self.declared().fields.clone()
    }
    /// Top-level fields whose change needs a new resource (create, then delete the old one).
    fn replace_on(&self) -> &'static [&'static str] {
        &[]
    }
    /// Whether the kind carries tags (and so ownership tags). Untaggable kinds
    /// (e.g. subscriptions) belong to whoever owns what they hang from.
    fn taggable(&self) -> bool {
        true
    }
    /// `false` for resources the stack only references (the images bucket):
    /// they are read and must exist, but are never created or deleted.
    fn managed(&self) -> bool {
        true
    }
    /// The live form, or `None` when it does not exist.
    async fn read(&self) -> Result<Option<Live>, ResourceError>;
    /// Creates it from resolved desired fields; returns its live form.
    async fn create(&self, desired: &Fields) -> Result<Live, ResourceError>;
    /// Brings the top-level fields named in `changed` to their desired values.
    async fn update(
        &self,
        live: &Live,
        desired: &Fields,
        changed: &BTreeSet<String>,
    ) -> Result<(), ResourceError>;
    /// Deletes it.
    async fn delete(&self, live: &Live) -> Result<DeleteOutcome, ResourceError>;
}
