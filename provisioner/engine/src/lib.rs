//! The provisioner's engine, and the contract its resource kinds implement.
//! It is generic over kinds and knows no AWS: this crate depends on no SDK and
//! no stack type, so the boundary is the compiler's, not a convention.
//!
//! - [`resource`]: the [`Resource`] trait every kind implements, and [`Live`].
//! - [`refs`]: `${address.attr}` references between resources.
//! - [`diff`]: field-level comparison of desired and live values.
//! - [`plan`]: reading live state concurrently and computing a [`Plan`].
//! - [`apply`]: executing a plan as a dependency graph.
//! - [`permission_changes`]: the plan's permission section and broadening.
//! - [`render`]: a plan as text, JSON or Markdown.
//! - [`retry`]: the one retry-and-wait policy for AWS's transient answers.
//! - [`typed`]: the typed kind adapter every kind implements ([`TypedKind`]).

pub mod apply;
pub mod diff;
pub mod json_lines;
pub mod permission_changes;
pub mod plan;
pub mod refs;
pub mod render;
pub mod resource;
pub mod retry;
pub mod saved;
pub mod typed;

/// The kind contract (what a kind says beyond the engine: CloudFormation, IAM).
pub mod kind;

pub use apply::{ApplyError, Event, execute};
pub use permission_changes::{Permission, PermissionChange};
pub use plan::{Action, Change, Mode, Plan, PlanOptions, Snapshot, Summary, compute, read_all};
pub use refs::{Handle, Ref, Text};
pub use resource::{
    Attrs, Declared, DeleteOutcome, ErrorKind, Fields, Finding, Live, Resource, ResourceError,
    fields_of, spec_of,
};
pub use typed::{Field, TAGS, Tagging, Tags, TypedKind, Update};

#[cfg(test)]
mod tests;
