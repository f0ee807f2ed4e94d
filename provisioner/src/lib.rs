//! The Couch Explorers provisioner: typed stack declaration, live reads,
//! diff, plan and apply. See ARCHITECTURE.md for the map.

pub mod artifacts;
pub mod aws;
pub mod bootstrap;
pub mod cloudformation;
pub mod commands;
pub mod declare;
pub mod engine;
pub mod kind;
pub mod local;
pub mod lock;
pub mod stack;
