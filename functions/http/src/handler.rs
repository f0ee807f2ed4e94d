//! From a request to a reply. Every error is JSON `{"error", "request_id"}`;
//! internal details go to the logs, never to the caller.

use std::time::Duration;

use imagegen::{ErrorKind, GenerateError, Generator, ImageModel, ImageStore, Prompt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::Request;

/// How long the returned link to the image works.
pub const URL_TTL: Duration = Duration::from_secs(3600);
/// Seconds a throttled caller is asked to wait.
pub const RETRY_AFTER_SECONDS: u32 = 10;
/// Largest body accepted (a 512-character prompt is far smaller).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// An HTTP answer; serialises to the Lambda proxy response both payload versions accept.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u32>,
}

impl Reply {
    pub fn to_lambda(&self) -> Value {
        let mut headers = json!({"content-type": "application/json"});
        if let Some(s) = self.retry_after {
            headers["retry-after"] = json!(s.to_string());
        }
        json!({
            "statusCode": self.status,
            "headers": headers,
            "body": self.body.to_string(),
            "isBase64Encoded": false,
        })
    }
}

fn error(status: u16, message: &str, request_id: &str) -> Reply {
    Reply {
        status,
        body: json!({"error": message, "request_id": request_id}),
        retry_after: None,
    }
}

#[derive(Deserialize)]
struct Body {
    prompt: Option<Value>,
}

/// The prompt of a request, or the 4xx reply explaining what is wrong.
fn prompt_of(req: &Request, request_id: &str) -> Result<Prompt, Reply> {
    if let Some(ct) = &req.content_type {
        let ct = ct.to_ascii_lowercase();
        if !ct.starts_with("application/json") && !ct.starts_with("text/plain") {
            return Err(error(
                400,
                &format!("send JSON (Content-Type: application/json), not {ct}"),
                request_id,
            ));
        }
    }
    let Some(body) = req.body.as_deref().filter(|b| !b.is_empty()) else {
        return Err(error(
            400,
            "the body is empty; send {\"prompt\": \"...\"}",
            request_id,
        ));
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(error(
            400,
            &format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            request_id,
        ));
    }
    let parsed: Body = serde_json::from_slice(body).map_err(|_| {
        error(
            400,
            "the body is not a JSON object; send {\"prompt\": \"...\"}",
            request_id,
        )
    })?;
    match parsed.prompt {
        Some(Value::String(s)) => {
            Prompt::parse(&s).map_err(|e| error(400, &e.to_string(), request_id))
        }
        Some(_) => Err(error(400, "\"prompt\" must be a string", request_id)),
        None => Err(error(
            400,
            "\"prompt\" is missing; send {\"prompt\": \"...\"}",
            request_id,
        )),
    }
}

/// Maps a generation error to a reply; the detail is logged, not returned.
pub fn reply_for(err: &GenerateError, request_id: &str) -> Reply {
    match err.kind() {
        ErrorKind::BadRequest => error(400, &err.to_string(), request_id),
        ErrorKind::Refused => error(
            422,
            "the image model's content filter refused this prompt; rephrase it",
            request_id,
        ),
        ErrorKind::Throttled => Reply {
            retry_after: Some(RETRY_AFTER_SECONDS),
            ..error(
                429,
                "too many images are being generated right now; retry later",
                request_id,
            )
        },
        ErrorKind::Upstream => error(
            502,
            "the image could not be generated or stored; try again",
            request_id,
        ),
    }
}

/// Handles one request. `request_id` identifies it (and names the image).
pub async fn handle<M: ImageModel, S: ImageStore>(
    req: &Request,
    generator: &Generator<M, S>,
    request_id: &str,
) -> Reply {
    if req.method != "POST" {
        return error(
            405,
            &format!("{} is not allowed; use POST", req.method),
            request_id,
        );
    }
    let prompt = match prompt_of(req, request_id) {
        Ok(p) => p,
        Err(reply) => {
            tracing::info!(request_id, status = reply.status, "rejected request");
            return reply;
        }
    };
    let stored = match generator.generate(request_id, &prompt).await {
        Ok(s) => s,
        Err(e) => {
            let reply = reply_for(&e, request_id);
            tracing::warn!(request_id, status = reply.status, error = %e, "generation failed");
            return reply;
        }
    };
    let url = match generator.store.presigned_url(&stored.key, URL_TTL).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(request_id, error = %e, "presigning failed");
            return reply_for(&e, request_id);
        }
    };
    tracing::info!(
        request_id,
        prompt_chars = prompt.chars(),
        key = %stored.key,
        model_ms = stored.model_latency.map(|d| d.as_millis() as u64),
        "image stored"
    );
    Reply {
        status: 201,
        body: json!({
            "s3_uri": stored.s3_uri(),
            "bucket": stored.bucket,
            "key": stored.key,
            "seed": stored.seed,
            "model": stored.model,
            "url": url,
        }),
        retry_after: None,
    }
}
