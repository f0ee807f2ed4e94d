//! The stack file's sections, one file each: its raw form as written (with
//! its defaults), its conversion into the typed `Stack` section, and its own
//! limits (`check`). [`KEYS`] is the one table of top-level keys.
//! `validate.rs` calls each section's `check` and holds the rules that span
//! sections (and `name`, `region`: scalars).

pub mod alarm;
pub mod alarms;
pub mod client;
pub mod deploy;
pub mod http;
pub mod images;
pub mod logs;
pub mod model;
pub mod queue;
pub mod tags;
pub mod worker;

pub(super) use super::parse::closed;
pub(super) use super::validate::{check_period, check_prefix, is_email, is_region, range};

/// Every top-level key a stack file may have, in the order they are read.
pub const KEYS: &[&str] = &[
    "name", "region", "images", "model", "queue", "worker", "http", "alarm", "alarms", "logs",
    "deploy", "client", "tags",
];
