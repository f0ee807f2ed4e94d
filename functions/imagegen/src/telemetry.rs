//! Logging: JSON lines on Lambda (CloudWatch Logs Insights can query them),
//! human-readable elsewhere. The level is `RUST_LOG`, else Lambda's
//! application log level (`AWS_LAMBDA_LOG_LEVEL`, set from the function's
//! `LoggingConfig`), else `info`.
//!
//! Every line about an image is an [`ImageEvent`]: the same fields from both
//! functions (`message_id` or `request_id`, `image_key`, `model`, `outcome`,
//! `duration_ms`), so one prompt can be followed from the queue to S3, and
//! the image's metrics in CloudWatch's Embedded Metric Format in the same
//! line (`_aws`): CloudWatch Logs turns them into metrics of namespace
//! [`metrics::NAMESPACE`] with no API call per image
//! (AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use couch_contract::metrics;
use serde_json::{Map, Value, json};

use crate::GenerateError;

pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if on_lambda {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// Why an image attempt failed, as the `Reason` dimension of
/// [`metrics::IMAGES_FAILED`]: `input` (the prompt), `filtered` (the model's
/// content filter), `throttled`, `model` (the model failed or answered
/// nothing usable), `store` (S3), `queue` (SQS, the HTTP submit).
pub fn reason(e: &GenerateError) -> &'static str {
    match e {
        GenerateError::InvalidPrompt(_) => "input",
        GenerateError::ContentFiltered(_) => "filtered",
        GenerateError::Throttled(..) => "throttled",
        GenerateError::Model(_) | GenerateError::BadModelResponse(_) => "model",
        GenerateError::Storage(_) => "store",
        GenerateError::Queue(_) => "queue",
    }
}

/// What became of one image request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Generated and stored.
    Stored { model_latency: Option<Duration> },
    /// Already stored (a redelivered message): the model was not called.
    Reused,
    /// Back to the queue, to be tried again (throttled, or out of the
    /// invocation's time): not a failure.
    Deferred { reason: &'static str },
    /// Failed, with the [`reason`].
    Failed { reason: &'static str, error: String },
}

/// One line about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEvent<'a> {
    /// `message_id` (worker) or `request_id` (HTTP).
    pub id_key: &'static str,
    pub id: &'a str,
    pub image_key: &'a str,
    pub model: &'a str,
    pub outcome: Outcome,
    /// From receiving the request to its outcome.
    pub duration: Duration,
    /// Model (or S3) calls answered with throttling on the way
    /// ([`metrics::MODEL_THROTTLES`] when above 0).
    pub throttled_calls: u32,
    /// Anything else worth one field (`attempt`, `status`, `prompt_chars`).
    pub extra: Map<String, Value>,
}

impl ImageEvent<'_> {
    /// The log line: the fields, and the metrics as EMF for `function`.
    pub fn line(&self, function: &str, now: SystemTime) -> Value {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut line = Map::new();
        let (level, message, outcome) = match &self.outcome {
            Outcome::Stored { .. } => ("INFO", "image stored", "stored"),
            Outcome::Reused => ("INFO", "image already stored", "reused"),
            Outcome::Deferred { .. } => ("INFO", "image deferred", "deferred"),
            Outcome::Failed { .. } => ("WARN", "image failed", "failed"),
        };
        line.insert("level".into(), json!(level));
        line.insert("message".into(), json!(message));
        line.insert(self.id_key.into(), json!(self.id));
        line.insert("image_key".into(), json!(self.image_key));
        line.insert("model".into(), json!(self.model));
        line.insert("outcome".into(), json!(outcome));
        line.insert("duration_ms".into(), json!(ms(self.duration)));
        line.extend(self.extra.clone());
        line.insert(metrics::FUNCTION_NAME.into(), json!(function));
        let (dimensions, mut emitted) = match &self.outcome {
            Outcome::Stored { model_latency } => {
                line.insert(metrics::IMAGES_MADE.into(), json!(1));
                let mut emitted = vec![json!({"Name": metrics::IMAGES_MADE, "Unit": "Count"})];
                if let Some(l) = model_latency {
                    line.insert(metrics::MODEL_LATENCY.into(), json!(ms(*l)));
                    line.insert("model_ms".into(), json!(ms(*l)));
                    emitted.push(json!({"Name": metrics::MODEL_LATENCY, "Unit": "Milliseconds"}));
                }
                (json!([[metrics::FUNCTION_NAME]]), emitted)
            }
            Outcome::Reused => {
                line.insert(metrics::IMAGES_MADE.into(), json!(0));
                (
                    json!([[metrics::FUNCTION_NAME]]),
                    vec![json!({"Name": metrics::IMAGES_MADE, "Unit": "Count"})],
                )
            }
            Outcome::Deferred { reason } => {
                line.insert("deferred".into(), json!(reason));
                (json!([[metrics::FUNCTION_NAME]]), Vec::new())
            }
            Outcome::Failed { reason, error } => {
                line.insert("error".into(), json!(error));
                line.insert(metrics::REASON.into(), json!(reason));
                line.insert(metrics::IMAGES_FAILED.into(), json!(1));
                (
                    // The total (what the alarm watches) and by reason.
                    json!([
                        [metrics::FUNCTION_NAME],
                        [metrics::FUNCTION_NAME, metrics::REASON]
                    ]),
                    vec![json!({"Name": metrics::IMAGES_FAILED, "Unit": "Count"})],
                )
            }
        };
        if self.throttled_calls > 0 {
            line.insert(metrics::MODEL_THROTTLES.into(), json!(self.throttled_calls));
            emitted.push(json!({"Name": metrics::MODEL_THROTTLES, "Unit": "Count"}));
        }
        let timestamp = now.duration_since(UNIX_EPOCH).map(ms).unwrap_or_default();
        line.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": metrics::NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": emitted,
                }],
            }),
        );
        Value::Object(line)
    }

    /// Writes the line to standard output (Lambda sends it to the
    /// function's log group) for this function (`AWS_LAMBDA_FUNCTION_NAME`).
    pub fn emit(&self) {
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
        println!("{}", self.line(&function, SystemTime::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(outcome: Outcome) -> ImageEvent<'static> {
        ImageEvent {
            id_key: "message_id",
            id: "m-1",
            image_key: "11/images/m-1.png",
            model: "stability.stable-image-core-v1:1",
            outcome,
            duration: Duration::from_millis(1234),
            throttled_calls: 0,
            extra: Map::new(),
        }
    }

    /// What CloudWatch requires of an EMF line: every metric and dimension
    /// named in `_aws` is a member of the line, metric values are numbers.
    fn assert_valid_emf(line: &Value) {
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "CouchExplorers");
        assert!(line["_aws"]["Timestamp"].as_u64().is_some());
        for set in directive["Dimensions"].as_array().unwrap() {
            for d in set.as_array().unwrap() {
                assert!(line[d.as_str().unwrap()].is_string(), "{d} in {line}");
            }
        }
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(
                line[m["Name"].as_str().unwrap()].is_number(),
                "{m} in {line}"
            );
        }
    }

    #[test]
    fn a_stored_image_counts_one_and_its_model_latency() {
        let line = event(Outcome::Stored {
            model_latency: Some(Duration::from_millis(900)),
        })
        .line("couch-prod-worker", UNIX_EPOCH + Duration::from_secs(1));
        assert_valid_emf(&line);
        for (k, v) in [
            ("message_id", json!("m-1")),
            ("image_key", json!("11/images/m-1.png")),
            ("model", json!("stability.stable-image-core-v1:1")),
            ("outcome", json!("stored")),
            ("duration_ms", json!(1234)),
            ("FunctionName", json!("couch-prod-worker")),
            ("ImagesMade", json!(1)),
            ("ModelLatency", json!(900)),
            ("level", json!("INFO")),
        ] {
            assert_eq!(line[k], v, "{k} in {line}");
        }
        assert_eq!(line["_aws"]["Timestamp"], 1000);
    }

    #[test]
    fn a_failure_counts_by_reason_and_in_total() {
        let e = GenerateError::ContentFiltered("Filter reason: prompt".into());
        let line = event(Outcome::Failed {
            reason: reason(&e),
            error: e.to_string(),
        })
        .line("couch-prod-worker", SystemTime::now());
        assert_valid_emf(&line);
        assert_eq!(line["ImagesFailed"], 1);
        assert_eq!(line["Reason"], "filtered");
        assert_eq!(line["outcome"], "failed");
        assert_eq!(line["level"], "WARN");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName"], ["FunctionName", "Reason"]])
        );
        assert!(line.get("ImagesMade").is_none());
    }

    #[test]
    fn every_error_has_a_reason() {
        use crate::prompt::PromptError;
        assert_eq!(
            reason(&GenerateError::InvalidPrompt(PromptError::Empty)),
            "input"
        );
        assert_eq!(
            reason(&GenerateError::Throttled("x".into(), None)),
            "throttled"
        );
        assert_eq!(reason(&GenerateError::Model("x".into())), "model");
        assert_eq!(
            reason(&GenerateError::BadModelResponse("x".into())),
            "model"
        );
        assert_eq!(reason(&GenerateError::Storage("x".into())), "store");
    }
}
