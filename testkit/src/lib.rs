//! Test support shared by the workspace's integration tests and benchmarks:
//! - [`moto`]: a moto server on 127.0.0.1 (started once per test binary, or the
//!   one named by `COUCH_MOTO_ENDPOINT`), an `SdkConfig` that points at it, and
//!   the functions' host builds the emulator runs on `Invoke`;
//! - [`http`]: a minimal HTTP/1.1 server for the test doubles below;
//! - [`bedrock`]: Bedrock's InvokeModel wire format, returning a real PNG
//!   painted from the prompt and seed ([`png`]);
//! - [`runtime_api`]: the Lambda Runtime API, to drive a function binary's
//!   real `lambda_runtime` loop;
//! - [`proxy`]: a proxy in front of moto that adds network delay and can
//!   answer or rewrite where moto differs from AWS;
//! - [`races`]: AWS's documented races and eventual consistency, played in
//!   front of moto (conflicts, propagation, transitional states, paging);
//! - [`zips`]: small valid zips standing in for the function artifacts.
//!
//! Nothing here talks to anything but 127.0.0.1.

pub mod bedrock;
pub mod faults;
pub mod http;
pub mod moto;
pub mod png;
pub mod proxy;
pub mod queues;
pub mod races;
pub mod runtime_api;
pub mod sigv4;
pub mod zips;

pub use moto::{
    bucket, create_bucket, enforce_iam, function_builds, host_binary, moto_endpoint, private_moto,
    sdk_config, set_concurrency_quota, set_function_environment, unique,
};
