//! The synchronous path: POST the prompt to the HTTP API and read the answer,
//! proving who calls as the route requires (the stack's `http.auth`).

use std::time::SystemTime;

use couch_contract::routes;
use serde_json::{Value, json};

/// How a request proves who sends it.
#[derive(Debug, Clone)]
pub enum Auth {
    /// An open route.
    None,
    /// An `AWS_IAM` route: SigV4 for `execute-api` in `region`.
    Iam {
        credentials: aws_credential_types::Credentials,
        region: String,
    },
    /// A JWT route: `Authorization: Bearer {token}`.
    Bearer(String),
}

/// The words `--auth` takes (the stack's `http.auth`, `api_auth` in its outputs).
pub const AUTH_WORDS: [&str; 3] = ["none", "iam", "jwt"];

/// The environment variable `--auth jwt` reads the token from.
pub const TOKEN_VARIABLE: &str = "COUCH_API_TOKEN";

/// The Region of an API URL (`https://{id}.execute-api.{region}.amazonaws.com/...`).
pub fn region_of_api_url(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut parts = host.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some("execute-api"), Some(region)) if region.contains('-') => {
            Some(region.to_owned())
        }
        _ => None,
    }
}

/// The headers that prove who sends `body` to `url` with `method`.
pub fn auth_headers(
    auth: &Auth,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    match auth {
        Auth::None => Ok(Vec::new()),
        Auth::Bearer(token) => Ok(vec![("authorization".into(), format!("Bearer {token}"))]),
        Auth::Iam {
            credentials,
            region,
        } => {
            let identity: aws_smithy_runtime_api::client::identity::Identity =
                credentials.clone().into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(region)
                .name("execute-api")
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .map_err(|e| format!("cannot sign for execute-api: {e}"))?
                .into();
            let signable = SignableRequest::new(
                method,
                url,
                headers.iter().copied(),
                SignableBody::Bytes(body),
            )
            .map_err(|e| format!("cannot sign {url}: {e}"))?;
            let (instructions, _) = sign(signable, &params)
                .map_err(|e| format!("cannot sign {url}: {e}"))?
                .into_parts();
            Ok(instructions
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect())
        }
    }
}

/// What the asynchronous path's `GET /images/{id}` says.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Queued,
    Done { s3_uri: String, url: String },
    Failed { reason: String },
}

/// A blocking agent that reads every status (errors are answers here).
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

/// The API's base from what `--http` was given: its invoke URL, or a route's
/// URL (`.../image_generator`, `.../images`), as `provisioner outputs` prints them.
pub fn api_base(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    url.strip_suffix(routes::SYNC.path)
        .or_else(|| url.strip_suffix(routes::SUBMIT.path))
        .unwrap_or(url)
}

/// `POST {base}/images`: the id and where its status is (absolute).
pub fn submit(base: &str, prompt: &str, auth: &Auth) -> Result<(String, String), Answer> {
    let url = format!("{base}{}", routes::SUBMIT.path);
    let body = json!({ "prompt": prompt }).to_string();
    let content_type = ("content-type", "application/json");
    let refused = |error: String| Answer::Refused { status: 0, error };
    let mut req = agent().post(&url).header(content_type.0, content_type.1);
    for (k, v) in
        auth_headers(auth, "POST", &url, &[content_type], body.as_bytes()).map_err(refused)?
    {
        req = req.header(k, v);
    }
    let mut resp = req
        .send(body)
        .map_err(|e| refused(format!("POST {url}: {e}")))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| refused(format!("reading the answer of {url}: {e}")))?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    match (status, v["id"].as_str(), v["status_url"].as_str()) {
        (202, Some(id), Some(path)) => Ok((id.to_owned(), format!("{base}{path}"))),
        _ => Err(match answer(status, &text) {
            Answer::Created { .. } => Answer::Refused {
                status,
                error: format!("HTTP {status} without an id"),
            },
            refused => refused,
        }),
    }
}

/// `GET` a request's status.
pub fn status(url: &str, auth: &Auth) -> Result<Status, Answer> {
    let refused = |error: String| Answer::Refused { status: 0, error };
    let mut req = agent().get(url);
    for (k, v) in auth_headers(auth, "GET", url, &[], b"").map_err(refused)? {
        req = req.header(k, v);
    }
    let mut resp = req.call().map_err(|e| refused(format!("GET {url}: {e}")))?;
    let code = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| refused(format!("reading the answer of {url}: {e}")))?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let text_of = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    use couch_contract::status::{DONE, FAILED, GENERATING, QUEUED};
    match (code, v["status"].as_str()) {
        (200, Some(QUEUED | GENERATING | "working")) => Ok(Status::Queued),
        (200, Some(DONE)) => Ok(Status::Done {
            s3_uri: text_of("s3_uri"),
            url: text_of("url"),
        }),
        (200, Some(FAILED)) => Ok(Status::Failed {
            reason: text_of("reason"),
        }),
        _ => Err(answer(code, &text)),
    }
}

/// Downloads `url` (a presigned link) to `file`; the number of bytes.
pub fn download(url: &str, file: &std::path::Path) -> Result<usize, String> {
    let mut resp = agent()
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    if resp.status().as_u16() != 200 {
        return Err(format!("GET the picture: HTTP {}", resp.status().as_u16()));
    }
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| format!("reading the picture: {e}"))?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(file, &bytes).map_err(|e| format!("writing {}: {e}", file.display()))?;
    Ok(bytes.len())
}

/// The API's answer to a POST.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 201: where the image is.
    Created { s3_uri: String, url: String },
    /// 4xx/5xx: the API's `error` (and its status).
    Refused { status: u16, error: String },
}

/// POSTs `{"prompt": ...}` to `url` (blocking; run it off the async runtime).
pub fn generate(url: &str, prompt: &str, auth: &Auth) -> Result<Answer, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let body = json!({ "prompt": prompt }).to_string();
    let content_type = ("content-type", "application/json");
    let mut req = agent.post(url).header(content_type.0, content_type.1);
    for (k, v) in auth_headers(auth, "POST", url, &[content_type], body.as_bytes())? {
        req = req.header(k, v);
    }
    let mut resp = req.send(body).map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    Ok(answer(status, &body))
}

/// Interprets a status and body.
pub fn answer(status: u16, body: &str) -> Answer {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    if (200..300).contains(&status) && v["s3_uri"].is_string() {
        Answer::Created {
            s3_uri: text("s3_uri"),
            url: text("url"),
        }
    } else {
        // The functions answer `error`; API Gateway's own refusals (401
        // Unauthorized, 403 Forbidden, 429 Too Many Requests) `message`.
        let error = match v["error"].as_str().or_else(|| v["message"].as_str()) {
            Some(e) => e.to_owned(),
            None if body.trim().is_empty() => format!("HTTP {status} without a body"),
            None => format!(
                "HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            ),
        };
        Answer::Refused { status, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_the_api_url() {
        assert_eq!(
            region_of_api_url("https://abc123.execute-api.eu-west-1.amazonaws.com/image_generator")
                .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_api_url("http://127.0.0.1:3000/image_generator"),
            None
        );
    }

    #[test]
    fn a_bearer_token_is_the_authorization_header_and_none_adds_nothing() {
        let h = auth_headers(
            &Auth::Bearer("t0k".into()),
            "POST",
            "https://x/y",
            &[],
            b"{}",
        );
        assert_eq!(
            h.unwrap(),
            [("authorization".to_owned(), "Bearer t0k".to_owned())]
        );
        assert!(
            auth_headers(&Auth::None, "POST", "https://x/y", &[], b"")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn answers_are_read_from_the_documented_json() {
        assert_eq!(
            answer(
                201,
                r#"{"s3_uri": "s3://b/11/images/x.png", "url": "https://u", "seed": 1}"#
            ),
            Answer::Created {
                s3_uri: "s3://b/11/images/x.png".into(),
                url: "https://u".into()
            }
        );
        assert_eq!(
            answer(
                400,
                r#"{"error": "the prompt is empty", "request_id": "r"}"#
            ),
            Answer::Refused {
                status: 400,
                error: "the prompt is empty".into()
            }
        );
        assert_eq!(
            answer(429, r#"{"message":"Too Many Requests"}"#),
            Answer::Refused {
                status: 429,
                error: "Too Many Requests".into()
            }
        );
        assert_eq!(
            answer(502, "Bad Gateway"),
            Answer::Refused {
                status: 502,
                error: "HTTP 502: Bad Gateway".into()
            }
        );
    }
}
