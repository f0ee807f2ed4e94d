//! What the engine needs from a resource kind: read its live form, and create,
//! update or delete it. Kinds implement it through the typed adapter
//! ([`crate::typed::TypedKind`]).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Field name → value, in the canonical form a kind's `read` also produces
/// (numbers as numbers, policies as parsed JSON, tags as an object).
pub type Fields = BTreeMap<String, Value>;

/// Attribute name → value (`arn`, `url`, `name`, ...), what references resolve to.
pub type Attrs = BTreeMap<String, String>;

/// A kind's typed spec as the engine's serialised fields.
pub fn fields_of<S: Serialize>(spec: &S) -> Fields {
    match serde_json::to_value(spec) {
        Ok(Value::Object(m)) => m.into_iter().collect(),
        // Specs are structs of strings, numbers and string-keyed maps: they
        // always serialise to an object.
        other => unreachable!("a resource spec serialises to an object, got {other:?}"),
    }
}

/// Resolved fields back as a kind's typed spec (in `create` and `update`).
pub fn spec_of<S: DeserializeOwned>(address: &str, fields: &Fields) -> Result<S, ResourceError> {
    let object = Value::Object(fields.clone().into_iter().collect());
    serde_json::from_value(object)
        .map_err(|e| ResourceError::new(format!("{address}: declared fields do not fit: {e}")))
}

/// A resource as it exists in the account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// Comparable fields, normalised like [`Resource::desired`].
    pub fields: Fields,
    /// Identifiers other resources can reference (`arn`, `url`, `name`, ...).
    pub attrs: BTreeMap<String, String>,
    /// What reading it found that the plan must report (for a referenced
    /// resource: it exists, but is unusable or about to be).
    pub findings: Vec<Finding>,
    /// Other resources owned by this stack that match this one where AWS does
    /// not make names unique (HTTP APIs, event source mappings), by id: the
    /// kind kept this one by its documented rule; the plan deletes the others.
    pub duplicates: Vec<(String, Live)>,
}

/// Something a read found about a resource, beyond its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `apply` must refuse: the plan exits 1.
    Problem(String),
    /// Shown with the plan; does not stop `apply`.
    Warning(String),
}

/// The result of a delete that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// AWS does not allow the delete now (e.g. a pending e-mail subscription);
    /// the reason is shown to the user as a warning.
    Skipped(String),
}

/// What kind of failure an AWS answer was: the engine's retry policy
/// ([`super::retry`]) decides on it, and no kind needs to know AWS's codes
/// for another service. Kinds classify (`crate::aws::aws_error`), the engine
/// decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorKind {
    /// The thing is not there (read as absent, or already deleted).
    NotFound,
    /// The service asked to slow down; nothing was done.
    Throttled,
    /// Another change of the same thing is in progress (409 Conflict,
    /// `ResourceConflictException`, `ResourceInUseException`,
    /// `QueueDeletedRecently`); nothing was done, and the same call succeeds
    /// once the other change ends.
    Conflict,
    /// A change made moments ago has not reached every AWS endpoint yet (a
    /// role not assumable, a policy not yet effective); nothing was done.
    Propagating,
    /// Not allowed to the caller.
    Denied,
    /// The request is wrong; repeating it gives the same answer.
    Invalid,
    /// The answer of a create AWS does not deduplicate was lost after the
    /// request may have been carried out: repeated only after looking for
    /// its result (`aws::create_once`, the only source of this kind).
    Lost,
    /// Anything else (transport failures the SDK already retried, 5xx).
    #[default]
    Other,
}

impl ErrorKind {
    /// Whether the same call, repeated later, can succeed.
    pub fn transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled | ErrorKind::Conflict | ErrorKind::Propagating | ErrorKind::Lost
        )
    }
}

/// A failed AWS operation, already rendered for a person: the AWS error code and
/// message, and what was being attempted; its [`ErrorKind`] and AWS's code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ResourceError {
    pub message: String,
    pub kind: ErrorKind,
    /// AWS's error code (`ConflictException`), when AWS answered.
    pub code: Option<String>,
}

impl ResourceError {
    pub fn new(message: impl Into<String>) -> Self {
        ResourceError {
            message: message.into(),
            kind: ErrorKind::Other,
            code: None,
        }
    }

    /// An AWS answer with its code, classified.
    pub fn answered(message: impl Into<String>, kind: ErrorKind, code: Option<&str>) -> Self {
        ResourceError {
            message: message.into(),
            kind,
            code: code.map(str::to_owned),
        }
    }

    /// What a referenced kind (`managed() == false`) answers to create,
    /// update and delete.
    pub fn referenced(address: &str) -> Self {
        ResourceError::new(format!(
            "{address} is referenced, not managed: the provisioner never changes it"
        ))
    }
}

/// What every declared resource has: its logical address, its deterministic
/// physical name, its desired fields (which may contain references) and the
/// attributes the declaration alone determines (e.g. `name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub address: String,
    pub name: String,
    /// Declared as not wanted (an optional section left out of the stack
    /// file): `apply` deletes it if this stack owns it, and plans nothing
    /// otherwise, as `count = 0` does in Terraform.
    pub absent: bool,
    pub fields: Fields,
    /// Attributes known before the resource exists, without any AWS call.
    pub known: Attrs,
}

impl Declared {
    pub fn new(address: &str, name: impl Into<String>, fields: Fields) -> Self {
        Declared {
            address: address.to_owned(),
            name: name.into(),
            absent: false,
            fields,
            known: Attrs::new(),
        }
    }
    /// A declaration from a kind's typed spec.
    pub fn of<S: Serialize>(address: &str, name: impl Into<String>, spec: &S) -> Self {
        Declared::new(address, name, fields_of(spec))
    }
    /// Marks the resource as not wanted ([`Declared::absent`]).
    pub fn absent(mut self) -> Self {
        self.absent = true;
        self
    }
    /// Marks attribute `attr` as known from the declaration.
    pub fn knowing(mut self, attr: &str, value: impl Into<String>) -> Self {
        self.known.insert(attr.to_owned(), value.into());
        self
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
    fn replace_on(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// Whether the kind carries tags (and so ownership tags). Untaggable kinds
    /// (e.g. subscriptions) belong to whoever owns what they hang from.
    fn taggable(&self) -> bool {
        true
    }
    /// Attributes that change whenever the resource is created, updated or
    /// replaced (a function's published `version`): while a change to it is
    /// planned, they are unknown to what references them ("known after
    /// apply"), and after an update they are read again.
    fn volatile(&self) -> &'static [&'static str] {
        &[]
    }
    /// `false` for resources the stack only references (the images bucket):
    /// they are read and must exist, but are never created or deleted.
    fn managed(&self) -> bool {
        true
    }
    /// What these fields (desired, resolved, or live) let anyone do: the
    /// statements of the resource's permission documents, for the plan's
    /// permission section. Kinds that grant nothing keep the default.
    fn permissions(&self, _fields: &Fields) -> Vec<super::permission_changes::Permission> {
        Vec::new()
    }
    /// Attributes AWS derives from the name, region and account (e.g. an
    /// ARN), predicted for a resource that does not exist yet so the plan can
    /// show them. Only what AWS invents (ids, chosen URLs) stays unknown.
    async fn predict(&self) -> Result<Attrs, ResourceError> {
        Ok(self.declared().known.clone())
    }
    /// What the plan must know whether or not the resource exists (e.g.
    /// that the alarms a deploy will watch exist): read with `read`, shown
    /// like [`Live::findings`].
    async fn check(&self) -> Result<Vec<Finding>, ResourceError> {
        Ok(Vec::new())
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
