//! The synchronous path: POST the prompt to the HTTP API and read the answer.

use serde_json::{Value, json};

/// The API's answer to a POST.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 201: where the image is.
    Created { s3_uri: String, url: String },
    /// 4xx/5xx: the API's `error` (and its status).
    Refused { status: u16, error: String },
}

/// POSTs `{"prompt": ...}` to `url` (blocking; run it off the async runtime).
pub fn generate(url: &str, prompt: &str) -> Result<Answer, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let mut resp = agent
        .post(url)
        .header("content-type", "application/json")
        .send(json!({ "prompt": prompt }).to_string())
        .map_err(|e| format!("POST {url}: {e}"))?;
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
        let error = match v["error"].as_str() {
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
            answer(502, "Bad Gateway"),
            Answer::Refused {
                status: 502,
                error: "HTTP 502: Bad Gateway".into()
            }
        );
    }
}
