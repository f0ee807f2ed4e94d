//! The pre-traffic health check, from the caller's side: one synchronous
//! `Invoke` of a function version (or of `live`) with the health event
//! ([`couch_contract::health`]), read as a verdict. `apply` runs it on a new
//! version before its alias moves any traffic there (`aws::aliases`);
//! `provisioner verify` runs it on `live`. A function error (a cold start
//! that failed on its configuration, a crash, a timeout) is a failed check
//! carrying the function's own error body.

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use couch_contract::health::{CHECKS, EVENT_KEY, OK};
use serde_json::{Value, json};

use super::aws_error;
use crate::engine::ResourceError;

/// One named check of the function's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// A health check's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// The version that answered (`X-Amz-Executed-Version`).
    pub version: String,
    pub ok: bool,
    pub checks: Vec<Check>,
    /// The function's error, when it failed instead of answering.
    pub function_error: Option<String>,
    /// The invocation's round trip.
    pub latency: Duration,
}

impl Health {
    /// Reads a function's answer (`function_error`: Lambda's `FunctionError`).
    pub fn of_answer(version: String, function_error: Option<&str>, payload: &[u8]) -> Health {
        let text = String::from_utf8_lossy(payload).into_owned();
        if let Some(kind) = function_error {
            return Health {
                version,
                ok: false,
                checks: Vec::new(),
                function_error: Some(format!("{kind} function error: {text}")),
                latency: Duration::ZERO,
            };
        }
        let answer: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        let checks: Vec<Check> = answer
            .get(CHECKS)
            .and_then(Value::as_array)
            .map(|checks| {
                checks
                    .iter()
                    .map(|c| Check {
                        name: c["name"].as_str().unwrap_or("?").to_owned(),
                        ok: c["ok"].as_bool().unwrap_or(false),
                        detail: c["detail"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let ok = answer.get(OK).and_then(Value::as_bool) == Some(true);
        Health {
            version,
            ok,
            function_error: (!ok && checks.is_empty()).then(|| {
                format!("not a health-check answer (does this version know the check?): {text}")
            }),
            checks,
            latency: Duration::ZERO,
        }
    }

    /// What failed, in one line: the failed checks, or the function's error.
    pub fn failure(&self) -> String {
        if let Some(e) = &self.function_error {
            return e.clone();
        }
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The passed checks' names: `config, model, store`.
    pub fn passed(&self) -> String {
        self.checks
            .iter()
            .filter(|c| c.ok)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Invokes `function` at `qualifier` (a version number or `live`) with the health event.
pub async fn check(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    qualifier: &str,
) -> Result<Health, ResourceError> {
    let event = json!({ EVENT_KEY: {"by": "provisioner"} });
    let started = Instant::now();
    let out = lambda
        .invoke()
        .function_name(function)
        .qualifier(qualifier)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .map_err(|e| aws_error(&format!("lambda:InvokeFunction {function}:{qualifier}"), e))?;
    let version = out.executed_version().unwrap_or(qualifier).to_owned();
    let payload = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    let mut health = Health::of_answer(version, out.function_error(), payload);
    health.latency = started.elapsed();
    Ok(health)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_answer_passes_with_its_checks() {
        let h = Health::of_answer(
            "8".into(),
            None,
            br#"{"ok": true, "checks": [{"name": "config", "ok": true, "detail": "d"}, {"name": "store", "ok": true, "detail": "wrote"}]}"#,
        );
        assert!(h.ok);
        assert_eq!(h.passed(), "config, store");
        assert_eq!(h.failure(), "");
    }

    #[test]
    fn a_failed_check_names_itself_and_its_reason() {
        let h = Health::of_answer(
            "8".into(),
            None,
            br#"{"ok": false, "checks": [{"name": "config", "ok": true, "detail": "d"}, {"name": "store", "ok": false, "detail": "NoSuchBucket"}]}"#,
        );
        assert!(!h.ok);
        assert_eq!(h.failure(), "store: NoSuchBucket");
    }

    #[test]
    fn a_function_error_or_a_foreign_answer_fails_with_the_body() {
        let h = Health::of_answer(
            "8".into(),
            Some("Unhandled"),
            br#"{"errorType": "Runtime.ExitError"}"#,
        );
        assert!(!h.ok);
        assert!(h.failure().contains("Unhandled function error"), "{h:?}");
        assert!(h.failure().contains("Runtime.ExitError"), "{h:?}");
        // An old build that treats the event as a batch answers something else.
        let h = Health::of_answer("3".into(), None, br#"{"batchItemFailures": []}"#);
        assert!(!h.ok);
        assert!(h.failure().contains("not a health-check answer"), "{h:?}");
    }
}
