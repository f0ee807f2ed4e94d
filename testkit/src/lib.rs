//! Test support shared by the workspace's integration tests and benchmarks:
//! - [`moto`]: a moto server on 127.0.0.1 (started once per test binary, or the
//!   one named by `COUCH_MOTO_ENDPOINT`), and an `SdkConfig` that points at it;
//! - [`http`]: a minimal HTTP/1.1 server used by the fake Bedrock and the fake
//!   Lambda Runtime API.
//!
//! Nothing here talks to anything but 127.0.0.1.

pub mod http;
pub mod moto;

pub use moto::{moto_endpoint, sdk_config, unique};
