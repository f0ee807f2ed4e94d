//! The functions' log lines into their log groups, as Lambda puts them there:
//! `provisioner local` reads what `cargo lambda watch` prints, passes every
//! line on to its own output, and writes each function's JSON lines (those
//! naming their `FunctionName`, the binary cargo-lambda ran) to that
//! function's log group in the emulator (`PutLogEvents`, one stream per run),
//! so `provisioner logs` works locally as on AWS.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use couch_contract::metrics;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Where each function's lines go.
pub struct LogSink {
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// The binary's name (`image-worker`) → its log group.
    pub groups: BTreeMap<String, String>,
    /// The stream this run writes (created in each group on first use).
    pub stream: String,
}

impl LogSink {
    /// The log group a line belongs to, if it is a function's JSON line.
    pub fn group_of(&self, line: &str) -> Option<&str> {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
            return None;
        };
        let function = fields.get(metrics::FUNCTION_NAME)?.as_str()?;
        self.groups.get(function).map(String::as_str)
    }

    async fn put(&self, group: &str, line: &str, created: &mut Vec<String>) {
        if !created.iter().any(|g| g == group) {
            // An existing stream (a restarted run with the same name) is fine.
            let _ = self
                .logs
                .create_log_stream()
                .log_group_name(group)
                .log_stream_name(&self.stream)
                .send()
                .await;
            created.push(group.to_owned());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or_default();
        let event = match InputLogEvent::builder()
            .timestamp(now)
            .message(line)
            .build()
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("log line not forwarded: {e}");
                return;
            }
        };
        if let Err(e) = self
            .logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(&self.stream)
            .log_events(event)
            .send()
            .await
        {
            tracing::warn!(
                group,
                "cannot write the function's log line to its log group: {e}"
            );
        }
    }

    /// Reads `output` line by line until it ends: prints each line, writes
    /// the functions' lines to their groups.
    pub async fn forward(self, output: impl AsyncRead + Unpin) {
        let mut lines = BufReader::new(output).lines();
        let mut created = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{line}");
            if let Some(group) = self.group_of(&line).map(str::to_owned) {
                self.put(&group, &line, &mut created).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_functions_json_line_goes_to_its_group_and_nothing_else_does() {
        let conf = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(aws_sdk_cloudwatchlogs::config::BehaviorVersion::latest())
            .build();
        let sink = LogSink {
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(conf),
            groups: [
                ("image-worker".to_owned(), "/aws/lambda/s-worker".to_owned()),
                ("image-http".to_owned(), "/aws/lambda/s-http".to_owned()),
            ]
            .into(),
            stream: "local".into(),
        };
        assert_eq!(
            sink.group_of(r#"{"FunctionName":"image-worker","message_id":"m"}"#),
            Some("/aws/lambda/s-worker")
        );
        assert_eq!(
            sink.group_of(r#"{"FunctionName":"image-http"}"#),
            Some("/aws/lambda/s-http")
        );
        assert_eq!(sink.group_of(r#"{"FunctionName":"other"}"#), None);
        assert_eq!(sink.group_of("[cargo-lambda] compiling"), None);
        assert_eq!(sink.group_of(r#"{"level":"INFO"}"#), None);
    }
}
