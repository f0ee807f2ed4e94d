//! The functions, served locally by `cargo lambda watch` (cargo-lambda's
//! emulation of the Lambda control plane: `cargo run --bin FUNCTION` on first
//! invocation, recompiled when the sources change), and invoked through its
//! Lambda `Invoke` API with the real SDK client, as `cargo lambda invoke` does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, retry::RetryConfig};
use serde_json::Value;
use tokio::process::{Child, Command};

use super::LocalError;
use super::trigger::Invoke;

/// How to start `cargo lambda watch`.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The `cargo-lambda` executable (the project's own is `.venv/bin/cargo-lambda`).
    pub cargo_lambda: PathBuf,
    /// Port of the emulated Lambda API (`--invoke-port`).
    pub port: u16,
    /// Instances per function (`--concurrency`): the worker's maximum concurrency.
    pub concurrency: u32,
    /// The functions' configuration (`--env-var KEY=VALUE`), as deployed.
    pub function_env: BTreeMap<String, String>,
    /// Set in cargo-lambda's own environment, which the functions inherit
    /// (endpoints, region); credentials are inherited from ours, never put on
    /// a command line.
    pub process_env: BTreeMap<String, String>,
}

/// A running `cargo lambda watch`, in its own process group so that stopping
/// it also stops the `cargo run` and function processes it started.
pub struct Watch {
    child: Child,
    pub endpoint: String,
}

impl Watch {
    /// Starts cargo-lambda and waits until its Lambda API accepts connections.
    pub async fn start(config: &WatchConfig) -> Result<Watch, LocalError> {
        let mut command = Command::new(&config.cargo_lambda);
        command
            .args(["lambda", "watch", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &config.port.to_string()])
            .args(["--concurrency", &config.concurrency.max(1).to_string()]);
        for (k, v) in &config.function_env {
            command.arg("--env-var").arg(format!("{k}={v}"));
        }
        command
            .envs(&config.process_env)
            .stdin(Stdio::null())
            // Read by `local::logs::LogSink::forward` (printed and sent on).
            .stdout(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().map_err(|e| {
            LocalError::Start(format!(
                "cannot run {} ({e}); `scripts/setup --lambda` installs cargo-lambda into .venv",
                config.cargo_lambda.display()
            ))
        })?;
        let mut watch = Watch {
            child,
            endpoint: format!("http://127.0.0.1:{}", config.port),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = watch.child.try_wait() {
                return Err(LocalError::Start(format!(
                    "cargo lambda watch exited ({status}) before serving; is port {} free?",
                    config.port
                )));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", config.port))
                .await
                .is_ok()
            {
                return Ok(watch);
            }
            if tokio::time::Instant::now() > deadline {
                watch.stop().await;
                return Err(LocalError::Start(format!(
                    "cargo lambda watch did not listen on port {} within 60 s",
                    config.port
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What cargo-lambda prints (the functions' lines among it), once.
    pub fn take_output(&mut self) -> Option<tokio::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Resolves when cargo-lambda exits on its own.
    pub async fn exited(&mut self) -> String {
        match self.child.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        }
    }

    /// SIGTERM to the whole group, SIGKILL after 10 s.
    pub async fn stop(&mut self) {
        let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) else {
            return; // already reaped
        };
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            signal_group(pid, libc::SIGKILL);
            let _ = self.child.wait().await;
        }
        // Whatever the leader left behind in its group.
        signal_group(pid, libc::SIGKILL);
    }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: killpg only sends a signal; the group is the one we created
    // with `process_group(0)` for this child, whose leader id is `pgid`.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Runs `cargo build --bin NAME` the way cargo-lambda's `cargo run --bin NAME`
/// will, so the first invocation does not wait for a compile.
pub async fn prebuild(bins: &[&str]) -> Result<(), LocalError> {
    for bin in bins {
        let status = Command::new("cargo")
            .args(["build", "--bin", bin])
            .stdin(Stdio::null())
            .status()
            .await
            .map_err(|e| LocalError::Start(format!("cannot run cargo: {e}")))?;
        if !status.success() {
            return Err(LocalError::Start(format!(
                "`cargo build --bin {bin}` failed ({status})"
            )));
        }
    }
    Ok(())
}

/// One function behind the emulated Lambda API.
pub struct LambdaApi {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaApi {
    /// A Lambda client for `endpoint` (no retries: an invocation is not
    /// repeated behind the caller's back, the trigger's redelivery does that).
    pub fn new(endpoint: &str, region: &str, function: &str) -> LambdaApi {
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(couch_https::client())
            .region(Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "cargo-lambda",
            ))
            .retry_config(RetryConfig::disabled())
            .build();
        LambdaApi {
            client: aws_sdk_lambda::Client::from_conf(conf),
            function: function.to_owned(),
        }
    }
}

#[async_trait]
impl Invoke for LambdaApi {
    async fn invoke(&self, event: Value) -> Result<Value, String> {
        let out = self
            .client
            .invoke()
            .function_name(&self.function)
            .payload(aws_smithy_types::Blob::new(event.to_string()))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "lambda:Invoke {}: {}",
                    self.function,
                    aws_sdk_lambda::error::DisplayErrorContext(e)
                )
            })?;
        let payload = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if let Some(kind) = out.function_error() {
            return Err(format!(
                "{} failed ({kind}): {}",
                self.function,
                String::from_utf8_lossy(payload)
            ));
        }
        if payload.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(payload).map_err(|e| {
            format!(
                "{} answered something that is not JSON ({e}): {}",
                self.function,
                String::from_utf8_lossy(payload)
            )
        })
    }
}
