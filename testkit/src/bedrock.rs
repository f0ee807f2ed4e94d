//! A stand-in for Bedrock's `InvokeModel` (`POST /model/{modelId}/invoke`),
//! answering in the real wire format. What it does depends on the prompt:
//! - contains `FILTER`: 400 ValidationException, the content filter's message;
//! - contains `THROTTLE`: 429 ThrottlingException;
//! - contains `BROKEN`: 500 InternalServerException;
//! - otherwise: 200 with `{"images": [base64 PNG]}` after the configured delay.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{self, Request, Response};

/// The PNG the fake model returns.
pub const PNG: &[u8] = include_bytes!("../fixtures/tiny.png");

#[derive(Clone, Default)]
pub struct FakeBedrock {
    /// Every request body received, with the model id of its path.
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
    pub endpoint: String,
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(status, &json!({"message": message})).with_header("x-amzn-ErrorType", kind)
}

impl FakeBedrock {
    pub async fn start(delay: Duration) -> FakeBedrock {
        let calls: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let recorded = Arc::clone(&calls);
        let addr = http::serve(Arc::new(move |req: Request| {
            let recorded = Arc::clone(&recorded);
            Box::pin(async move {
                let Some(model) = req
                    .path
                    .strip_prefix("/model/")
                    .and_then(|p| p.strip_suffix("/invoke"))
                else {
                    return error(404, "UnknownOperationException", "not InvokeModel");
                };
                let model = model.replace("%3A", ":");
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                recorded
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((model, body.clone()));
                let text = body["textToImageParams"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if text.contains("FILTER") {
                    return error(
                        400,
                        "ValidationException",
                        "This request has been blocked by our content filters.",
                    );
                }
                if text.contains("THROTTLE") {
                    return error(
                        429,
                        "ThrottlingException",
                        "Too many requests, please wait before trying again.",
                    );
                }
                if text.contains("BROKEN") {
                    return error(
                        500,
                        "InternalServerException",
                        "secret internal detail 12345",
                    );
                }
                tokio::time::sleep(delay).await;
                use base64::Engine as _;
                let image = base64::engine::general_purpose::STANDARD.encode(PNG);
                Response::json(200, &json!({"images": [image], "error": null}))
            })
        }))
        .await;
        FakeBedrock {
            calls,
            endpoint: format!("http://{addr}"),
        }
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
