//! What a caller receives: the reply type, the JSON error shape
//! `{"error", "request_id"}`, the reply for each kind of generation failure,
//! and the prompt read from a request (or the 4xx that says what is wrong).
//! Both the synchronous route (`handler.rs`) and the asynchronous ones
//! (`images.rs`) answer with these; this module imports neither.

use std::time::Duration;

use imagegen::{ErrorKind, GenerateError, Prompt, PromptRule};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::Request;

/// How long the returned link to the image works.
pub const URL_TTL: Duration = Duration::from_secs(3600);
/// Seconds a throttled caller is asked to wait.
pub const RETRY_AFTER_SECONDS: u32 = 10;
/// Largest body accepted: a 10,000-character prompt (Stability's limit, the
/// longest of any family) of 4-byte characters, JSON-escaped, fits.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An HTTP answer; serialises to the Lambda proxy response both payload versions accept.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u32>,
    /// `Location` (a submitted request's status path).
    pub location: Option<String>,
    /// The page (`GET /`), answered instead of `body`.
    pub page: Option<crate::page::Page>,
}

impl Reply {
    /// `status` with a JSON `body`, no extra headers.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            retry_after: None,
            location: None,
            page: None,
        }
    }

    /// The page (`GET /`), 200.
    pub fn page(page: crate::page::Page) -> Reply {
        Reply {
            page: Some(page),
            ..Reply::json(200, Value::Null)
        }
    }

    pub fn to_lambda(&self) -> Value {
        if let Some(page) = &self.page {
            let headers: serde_json::Map<String, Value> = page
                .headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            return json!({
                "statusCode": self.status,
                "headers": headers,
                "body": page.html,
                "isBase64Encoded": false,
            });
        }
        let mut headers = json!({"content-type": "application/json"});
        if let Some(s) = self.retry_after {
            headers["retry-after"] = json!(s.to_string());
        }
        if let Some(l) = &self.location {
            headers["location"] = json!(l);
        }
        json!({
            "statusCode": self.status,
            "headers": headers,
            "body": self.body.to_string(),
            "isBase64Encoded": false,
        })
    }
}

pub fn error(status: u16, message: &str, request_id: &str) -> Reply {
    Reply::json(status, json!({"error": message, "request_id": request_id}))
}

#[derive(Deserialize)]
struct Body {
    prompt: Option<Value>,
}

/// The prompt of a request, or the 4xx reply explaining what is wrong.
pub fn prompt_of(req: &Request, rule: PromptRule, request_id: &str) -> Result<Prompt, Reply> {
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
            Prompt::parse(&s, rule).map_err(|e| error(400, &e.to_string(), request_id))
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
