//! A moto server for tests.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_types::SdkConfig;
use aws_types::region::Region;

/// The command that serves moto: `scripts/moto_server.py` (moto plus the
/// CloudFormation types it lacks) under `.venv`'s Python, or `$MOTO_SERVER`.
fn moto_command() -> (PathBuf, Vec<String>) {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return (PathBuf::from(p), Vec::new());
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = repo.join(".venv/bin/python");
    let launcher = repo.join("scripts/moto_server.py");
    if python.exists() {
        return (python, vec![launcher.display().to_string()]);
    }
    (PathBuf::from("moto_server"), Vec::new())
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port on 127.0.0.1");
    l.local_addr().expect("local address").port()
}

fn wait_for(port: u16, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Starts moto on a free port from a thread that lives as long as the test
/// process: the server gets SIGKILL when the process ends (PR_SET_PDEATHSIG is
/// tied to the spawning thread, so that thread must not exit).
fn start() -> String {
    let port = free_port();
    let (bin, launcher) = moto_command();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut cmd = Command::new(&bin);
        cmd.args(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        let ok = spawned.is_ok();
        let _ = tx.send(
            spawned
                .map(|_| ())
                .map_err(|e| format!("cannot start {}: {e}", bin.display())),
        );
        if ok {
            loop {
                std::thread::park();
            }
        }
    });
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!(
            "{e}. Install it with `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'` (scripts/test does this)."
        ),
        Err(e) => panic!("moto launcher thread died: {e}"),
    }
    assert!(
        wait_for(port, Duration::from_secs(30)),
        "moto_server did not listen on 127.0.0.1:{port} within 30 s"
    );
    format!("http://127.0.0.1:{port}")
}

/// A server of its own for this caller (tests that switch on IAM
/// enforcement, which would refuse every other test's calls).
pub fn private_moto() -> String {
    start()
}

/// The emulator's endpoint: `COUCH_MOTO_ENDPOINT` if set, else a server of this process.
pub fn moto_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        std::env::var("COUCH_MOTO_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(start)
    })
}

/// Builds the functions' host binaries once per test process (`cargo build
/// --bin image-worker --bin image-http`, a no-op when they are fresh): the
/// emulator runs them when a deployed function is invoked
/// (`scripts/moto_lambda_invoke.py`), as `apply`'s pre-traffic health check
/// and `provisioner verify` do. And `couch-client`, which tests of the
/// stack's client identity run ([`host_binary`]).
pub fn function_builds() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // Not what cargo sets for this test process (CARGO_MANIFEST_DIR,
        // CARGO_PKG_*, ...): build scripts that read them (ring's) would be
        // rebuilt here and again by the next `cargo test`.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            let configures_cargo = ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_INCREMENTAL"]
                .contains(&key.as_str())
                || [
                    "CARGO_BUILD_",
                    "CARGO_PROFILE_",
                    "CARGO_NET_",
                    "CARGO_REGISTR",
                ]
                .iter()
                .any(|p| key.starts_with(p));
            if (key.starts_with("CARGO_") && !configures_cargo) || key == "OUT_DIR" {
                cmd.env_remove(&key);
            }
        }
        let out = cmd
            .current_dir(&repo)
            .args([
                "build",
                "--locked",
                "--bin",
                "image-worker",
                "--bin",
                "image-http",
                "--bin",
                "couch-client",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = built {
        panic!("building the functions' host binaries failed:\n{e}");
    }
}

/// Where `cargo build` put a host binary of the workspace (built by
/// [`function_builds`]).
pub fn host_binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug").join(name)
}

/// POSTs `body` to the emulator's `path` and returns the status line's code.
fn control(endpoint: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let address = endpoint
        .strip_prefix("http://")
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(address).expect("connect to the emulator");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the control call");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("read the control call's answer");
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer)
}

/// Makes every later invocation of `function` in the emulator at `endpoint`
/// run with `variables` over its configured environment (none: as
/// configured again), through the launcher's control call
/// `POST /moto-api/couch/lambda-environment`: a version that is broken as
/// deployed, for tests of the health check.
pub fn set_function_environment(endpoint: &str, function: &str, variables: &[(&str, &str)]) {
    let vars: serde_json::Map<String, serde_json::Value> = variables
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    let body = serde_json::json!({"function": function, "variables": vars}).to_string();
    let (code, answer) = control(endpoint, "/moto-api/couch/lambda-environment", &body);
    assert_eq!(code, 201, "the emulator refused the control call: {answer}");
}

/// The account's Lambda concurrency quota the emulator reports and enforces
/// (`MOTO_LAMBDA_CONCURRENCY_QUOTA`; `None`: AWS's default, 1,000), through
/// the launcher's `POST /moto-api/couch/lambda-concurrency-quota`.
pub fn set_concurrency_quota(endpoint: &str, quota: Option<u32>) {
    let body = serde_json::json!({ "quota": quota }).to_string();
    let (code, answer) = control(endpoint, "/moto-api/couch/lambda-concurrency-quota", &body);
    assert_eq!(code, 201, "the emulator refused the control call: {answer}");
}

/// Switches on moto's IAM enforcement after `free` more unauthenticated
/// calls (`/moto-api/reset-auth`): from then on every call needs the keys of
/// an IAM identity that may make it. Only on a [`private_moto`].
pub fn enforce_iam(endpoint: &str, free: u32) {
    let (code, answer) = control(endpoint, "/moto-api/reset-auth", &free.to_string());
    assert_eq!(code, 200, "the emulator refused reset-auth: {answer}");
}

/// SDK configuration for the emulator: static test credentials, `region`.
pub fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    SdkConfig::builder()
        .http_client(couch_https::client())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "testkit",
            )),
        )
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

/// A name unique in this test run (for stacks, buckets, queues sharing one emulator).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 10_000;
    format!("{prefix}{pid}x{n}")
}

/// An S3 client for the emulator and a new bucket in eu-west-1 named `prefix` + a unique suffix.
pub async fn bucket(prefix: &str) -> (aws_sdk_s3::Client, String) {
    let conf = sdk_config(moto_endpoint(), "eu-west-1");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    let name = unique(prefix);
    create_bucket(&s3, &name).await;
    (s3, name)
}

/// Creates bucket `name` in eu-west-1.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
}
