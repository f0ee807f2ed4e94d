//! Shared library of the Couch Explorers functions (see ARCHITECTURE.md):
//! prompt validation, the Bedrock model families' requests and responses
//! (`families/`), where images are stored, and the generate-and-store use case behind two traits
//! ([`ImageModel`], [`ImageStore`]) so it is tested without AWS.

pub mod clients;
pub mod config;
pub mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod families;
pub mod generate;
pub mod health;
pub mod model;
pub mod queue;
/// The prompt rule, shared with the client (crate `couch-contract`).
pub use couch_contract::prompt;
/// The asynchronous path's request status, shared with the client.
pub use couch_contract::status;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use error::{ErrorKind, GenerateError};
pub use families::{BedrockModel, UnknownModel};
pub use generate::{Generator, NEW_KEY_ATTEMPTS, Stored, new_image_id};
pub use model::ImageModel;
pub use prompt::{Prompt, PromptError, PromptRule};
pub use queue::{PromptQueue, SqsPrompts};
pub use store::{ImageMetadata, ImageStore, S3Store, image_key};
