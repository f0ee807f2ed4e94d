//! The Couch Explorers provisioner: typed stack declaration, live reads,
//! diff, plan and apply. See ARCHITECTURE.md for the map.

pub mod stack;
