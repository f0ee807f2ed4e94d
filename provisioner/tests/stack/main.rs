//! The queue, topic and alarm part of a stack against a real AWS emulator
//! (moto server on 127.0.0.1), with the same SDK clients and the same binary
//! users run. One module per behaviour; what belongs in each opens it.

#[path = "../common/mod.rs"]
mod common;
mod lifecycle;
mod ownership;
mod reads;
mod refusals;
mod saved_plans;
mod subscriptions;

use std::process::{Command, Stdio};

use aws_sdk_sqs::types::QueueAttributeName;
use common::*;
use provisioner::declare;
use provisioner::engine::plan::{Mode, compute};
use provisioner::engine::{Action, execute};
use serde_json::{Value, json};

/// Runs the binary on a pseudo-terminal (util-linux `script`), typing `answer`.
fn on_terminal(f: &Fixture, args: &str, answer: &str) -> String {
    use std::io::Write;
    let bin = env!("CARGO_BIN_EXE_provisioner");
    let line = format!(
        "{bin} {args} --stack {} --artifacts {}",
        f.file.display(),
        f.artifacts.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("AWS_ENDPOINT_URL", &f.endpoint)
        .env("AWS_ENDPOINT_URL_BEDROCK", &f.bedrock.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_REGION")
        .env_remove("CI")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the provisioner on a pseudo-terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// Multi-threaded: the proxy must keep serving while the test waits for the binary.
