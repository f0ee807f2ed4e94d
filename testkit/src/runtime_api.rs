//! A stand-in for the Lambda Runtime API, so a function binary runs its real
//! `lambda_runtime` loop in a test: it hands out queued events on
//! `GET /2018-06-01/runtime/invocation/next` and collects what the function
//! posts back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::http::{self, Request, Response};

/// What the function answered for one invocation.
#[derive(Debug, Clone)]
pub enum Answer {
    Response { request_id: String, body: Value },
    Error { request_id: String, body: Value },
    InitError(Value),
}

pub struct FakeRuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    ready: Arc<Notify>,
    answers: mpsc::UnboundedReceiver<Answer>,
}

impl FakeRuntimeApi {
    /// Each invocation's deadline 60 s after it is handed out.
    pub async fn start() -> FakeRuntimeApi {
        FakeRuntimeApi::start_with_timeout(Duration::from_secs(60)).await
    }

    /// Each invocation's deadline (`Lambda-Runtime-Deadline-Ms`) `timeout`
    /// after it is handed out, as the function's timeout sets it on Lambda.
    pub async fn start_with_timeout(timeout: Duration) -> FakeRuntimeApi {
        let events: Arc<Mutex<VecDeque<(String, Value)>>> = Arc::default();
        let ready = Arc::new(Notify::new());
        let (tx, answers) = mpsc::unbounded_channel();
        let (ev, rd) = (Arc::clone(&events), Arc::clone(&ready));
        let addr = http::serve(Arc::new(move |req: Request| {
            let (events, ready, tx) = (Arc::clone(&ev), Arc::clone(&rd), tx.clone());
            Box::pin(async move {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let path = req.path.trim_start_matches("/2018-06-01/runtime");
                if req.method == "GET" && path == "/invocation/next" {
                    loop {
                        let next = events.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                        if let Some((id, event)) = next {
                            let deadline = SystemTime::now()
                                .duration_since(UNIX_EPOCH)
                                .unwrap_or_default()
                                + timeout;
                            return Response::json(200, &event)
                                .with_header("lambda-runtime-aws-request-id", &id)
                                .with_header(
                                    "lambda-runtime-deadline-ms",
                                    &deadline.as_millis().to_string(),
                                )
                                .with_header(
                                    "lambda-runtime-invoked-function-arn",
                                    "arn:aws:lambda:eu-west-1:123456789012:function:test",
                                )
                                .with_header(
                                    "lambda-runtime-trace-id",
                                    "Root=1-00000000-000000000000000000000000",
                                );
                        }
                        ready.notified().await;
                    }
                }
                let answer = if path == "/init/error" {
                    Answer::InitError(body)
                } else if let Some(rest) = path.strip_prefix("/invocation/") {
                    let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
                    if kind == "response" {
                        Answer::Response {
                            request_id: id.to_owned(),
                            body,
                        }
                    } else {
                        Answer::Error {
                            request_id: id.to_owned(),
                            body,
                        }
                    }
                } else {
                    return Response::json(404, &Value::Null);
                };
                let _ = tx.send(answer);
                Response::json(202, &serde_json::json!({"status": "OK"}))
            })
        }))
        .await;
        FakeRuntimeApi {
            address: addr.to_string(),
            events,
            ready,
            answers,
        }
    }

    /// Queues one invocation.
    pub fn invoke(&self, request_id: &str, event: Value) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((request_id.to_owned(), event));
        self.ready.notify_waiters();
        self.ready.notify_one();
    }

    /// The next answer, or `None` after `timeout`.
    pub async fn answer(&mut self, timeout: Duration) -> Option<Answer> {
        tokio::time::timeout(timeout, self.answers.recv())
            .await
            .ok()
            .flatten()
    }
}

/// Environment a function needs to start its runtime loop against `api`.
pub fn lambda_env(api: &FakeRuntimeApi, function: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.address.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", function),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A function binary running its runtime loop against a [`FakeRuntimeApi`];
/// killed when dropped. Its standard output (what Lambda sends to the log
/// group) is kept in a file, read with [`RunningFunction::json_lines`].
pub struct RunningFunction {
    child: std::process::Child,
    stdout: std::path::PathBuf,
}

impl RunningFunction {
    /// The JSON objects the function has written so far, one per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(serde_json::Value::is_object)
            .collect()
    }
}

impl Drop for RunningFunction {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stdout);
    }
}

/// Starts function binary `bin` against `api`, with S3 on moto, Bedrock at
/// `bedrock_endpoint`, test credentials and the `config` variables.
pub fn spawn_function(
    bin: &str,
    api: &FakeRuntimeApi,
    function_name: &str,
    bedrock_endpoint: &str,
    config: &[(&str, &str)],
) -> RunningFunction {
    let mut cmd = std::process::Command::new(bin);
    cmd.envs(lambda_env(api, function_name))
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL_S3", crate::moto_endpoint())
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock_endpoint)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .stderr(std::process::Stdio::null());
    for (k, v) in config {
        cmd.env(k, v);
    }
    let stdout = std::env::temp_dir().join(format!("{}.stdout", crate::unique(function_name)));
    let file = std::fs::File::create(&stdout)
        .unwrap_or_else(|e| panic!("create {}: {e}", stdout.display()));
    cmd.stdout(file);
    RunningFunction {
        child: cmd.spawn().unwrap_or_else(|e| panic!("start {bin}: {e}")),
        stdout,
    }
}
