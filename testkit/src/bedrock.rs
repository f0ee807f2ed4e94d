//! A stand-in for Bedrock's `InvokeModel` (`POST /model/{modelId}/invoke`),
//! answering in the real wire format. What it does depends on the prompt:
//! - contains `FILTER`: 400 ValidationException, the content filter's message;
//! - contains `THROTTLE`: 429 ThrottlingException;
//! - contains `BROKEN`: 500 InternalServerException;
//! - otherwise: 200 with `{"images": [base64 PNG]}` after the configured
//!   delay: a real PNG of the requested size, painted from the prompt and the
//!   seed ([`crate::png::paint`]), so every prompt gives another picture.
//!
//! With [`Options::throttle_every`] = n, every n-th request is throttled
//! (429), whatever its prompt: the 429 path, shown locally on request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{self, Request, Response};

/// What the stand-in paints for a request body (the Titan text-to-image shape).
pub fn picture_for(body: &Value) -> Vec<u8> {
    let text = body["textToImageParams"]["text"]
        .as_str()
        .unwrap_or_default();
    let conf = &body["imageGenerationConfig"];
    let dim = |k: &str| {
        conf[k]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| (1..=4096).contains(v))
            .unwrap_or(512)
    };
    crate::png::paint(
        text,
        conf["seed"].as_u64().unwrap_or(0),
        dim("width"),
        dim("height"),
    )
}

/// How the stand-in behaves besides the prompt markers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Answer time of a successful call.
    pub delay: Duration,
    /// Throttle every n-th request (429 ThrottlingException).
    pub throttle_every: Option<u64>,
}

#[derive(Clone, Default)]
pub struct FakeBedrock {
    /// Every request body received, with the model id of its path.
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
    /// Calls answered with a throttling error.
    pub throttled: Arc<std::sync::atomic::AtomicUsize>,
    pub endpoint: String,
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(status, &json!({"message": message})).with_header("x-amzn-ErrorType", kind)
}

impl FakeBedrock {
    pub async fn start(delay: Duration) -> FakeBedrock {
        FakeBedrock::start_with(Options {
            delay,
            throttle_every: None,
        })
        .await
    }

    pub async fn start_with(options: Options) -> FakeBedrock {
        FakeBedrock::start_on(0, options).await
    }

    /// On a given 127.0.0.1 port (0: any free one).
    pub async fn start_on(port: u16, options: Options) -> FakeBedrock {
        let calls: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let recorded = Arc::clone(&calls);
        let throttled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let throttles = Arc::clone(&throttled);
        let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let delay = options.delay;
        let addr = http::serve_on(
            port,
            Arc::new(move |req: Request| {
                let recorded = Arc::clone(&recorded);
                let served = Arc::clone(&served);
                let throttles = Arc::clone(&throttles);
                Box::pin(async move {
                    let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
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
                    if text.contains("THROTTLE")
                        || options
                            .throttle_every
                            .is_some_and(|every| every > 0 && n.is_multiple_of(every))
                    {
                        throttles.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
                    let image =
                        base64::engine::general_purpose::STANDARD.encode(picture_for(&body));
                    Response::json(200, &json!({"images": [image], "error": null}))
                })
            }),
        )
        .await;
        FakeBedrock {
            calls,
            throttled,
            endpoint: format!("http://{addr}"),
        }
    }

    /// How many calls were throttled.
    pub fn throttled(&self) -> usize {
        self.throttled.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The picture the call for prompt `text` was answered with.
    pub fn picture_for_prompt(&self, text: &str) -> Option<Vec<u8>> {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls
            .iter()
            .find(|(_, body)| body["textToImageParams"]["text"] == text)
            .map(|(_, body)| picture_for(body))
    }

    /// The picture the last call was answered with.
    pub fn last_picture(&self) -> Option<Vec<u8>> {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.last().map(|(_, body)| picture_for(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn post(endpoint: &str, text: &str) -> (u16, Vec<u8>) {
        let body = json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": text},
            "imageGenerationConfig": {"width": 32, "height": 16, "seed": 9}})
        .to_string();
        let addr = endpoint.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST /model/amazon.titan-image-generator-v1/invoke HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        // The server keeps connections alive: read until the body is complete.
        let mut buf = [0u8; 65536];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).into_owned();
            if let Some(split) = text.find("\r\n\r\n") {
                let len: usize = text[..split]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if raw.len() >= split + 4 + len {
                    let status = text[9..12].parse().unwrap();
                    return (status, raw[split + 4..split + 4 + len].to_vec());
                }
            }
            if n == 0 {
                panic!("connection closed early");
            }
        }
    }

    #[tokio::test]
    async fn pictures_follow_the_request_and_every_nth_call_is_throttled() {
        let b = FakeBedrock::start_with(Options {
            delay: Duration::ZERO,
            throttle_every: Some(2),
        })
        .await;
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(post(&b.endpoint, "a lighthouse").await.0);
        }
        assert_eq!(statuses, [200, 429, 200, 429]);
        let (status, body) = post(&b.endpoint, "a lighthouse").await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["images"][0].as_str().unwrap())
            .unwrap();
        assert_eq!(png, crate::png::paint("a lighthouse", 9, 32, 16));
        let (status, _) = post(&b.endpoint, "please FILTER me").await;
        assert_eq!(status, 400);
    }
}
