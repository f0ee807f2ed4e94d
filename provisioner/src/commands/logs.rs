//! `provisioner logs --stack F [worker|http] [--since 10m] [--follow]
//! [--filter TEXT] [--id ID] [--json]`: both functions' log groups
//! (`FilterLogEvents`), interleaved by time, each line marked with its
//! function; the functions' JSON lines rendered as `level message key=value`
//! (their EMF metadata left out), `--json` keeps each line as it was written.
//! `--id` follows one prompt (its message id or request id) across both
//! groups. `--follow` keeps printing new lines until Ctrl-C: from a
//! CloudWatch Logs Live Tail session (`StartLiveTail`, a response stream of
//! the lines ingested each second), and by polling `FilterLogEvents` every
//! 2 s where Live Tail is not available (refused, not served, or its stream
//! broke). A session ends after three hours; a new one is started, and the
//! lines written in between are read with `FilterLogEvents`.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::Session;
use crate::aws::policies::Statement;
use aws_sdk_cloudwatchlogs::primitives::event_stream::EventReceiver;
use aws_sdk_cloudwatchlogs::types::StartLiveTailResponseStream;
use aws_sdk_cloudwatchlogs::types::error::StartLiveTailResponseStreamError;

use crate::aws::{Aws, aws_error};
use crate::stack::Stack;

/// Which function's lines (`None`: both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Function {
    Worker,
    Http,
}

/// Both functions' log lines, interleaved by time and marked with their
/// function; `--id` follows one prompt across both.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Only this function's lines.
    #[arg(value_enum)]
    pub function: Option<Function>,
    /// How far back: 30s, 10m, 2h, 1d.
    #[arg(long, default_value = "10m", value_parser = parse_since)]
    pub since: Duration,
    /// Keep printing new lines until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Only lines containing this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Only one prompt's lines: its message id or request id.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Each line as written (with its function and timestamp).
    #[arg(long)]
    pub json: bool,
}

/// How often `--follow` asks for new lines when it polls.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// What `logs` needs beyond the kinds' reads (every role may read the
/// functions' logs): `logs:FilterLogEvents` and `logs:StartLiveTail` on the
/// two log groups (as the group's ARN and with its streams' `:*`, the forms
/// AWS's examples use; both actions' resource type is `log-group`).
pub fn statement(worker_group_arn: &str, http_group_arn: &str) -> Statement {
    Statement::allow(
        "Logs",
        &["logs:FilterLogEvents", "logs:StartLiveTail"],
        [worker_group_arn, http_group_arn]
            .iter()
            .flat_map(|arn| [(*arn).into(), format!("{arn}:*").into()])
            .collect(),
    )
}

/// `10m`, `2h`, `30s`, `1d` (a bare number is minutes).
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, "m"), |i| t.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("--since {text:?}: expected a number and s, m, h or d (10m)"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("--since {text:?}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(seconds))
}

/// One log line, from one function.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub function: &'static str,
    pub timestamp: i64,
    pub event_id: String,
    pub message: String,
}

/// The log groups to read: `(label, name)`.
pub fn groups(stack: &Stack, only: Option<Function>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if only != Some(Function::Http) {
        out.push(("worker", Stack::log_group_name(&stack.worker_name())));
    }
    if only != Some(Function::Worker) {
        out.push(("http", Stack::log_group_name(&stack.http_name())));
    }
    out
}

/// CloudWatch Logs' filter pattern for the terms: each a quoted term, all
/// of which must appear.
fn pattern(terms: &[&str]) -> Option<String> {
    let quoted: Vec<String> = terms
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| format!("\"{}\"", t.replace('"', "")))
        .collect();
    (!quoted.is_empty()).then(|| quoted.join(" "))
}

/// Every line of the groups since `start` (ms) matching the terms, by time.
pub async fn fetch(
    aws: &Aws,
    stack: &Stack,
    only: Option<Function>,
    start: i64,
    terms: &[&str],
) -> Result<Vec<Line>> {
    let pattern = pattern(terms);
    let reads = groups(stack, only).into_iter().map(|(label, group)| {
        let pattern = pattern.clone();
        async move {
            let mut lines = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = aws
                    .logs
                    .filter_log_events()
                    .log_group_name(&group)
                    .start_time(start)
                    .set_filter_pattern(pattern.clone())
                    .set_next_token(token.clone())
                    .send()
                    .await;
                let out = match out {
                    Ok(o) => o,
                    // A function that never ran has no log group yet: no lines.
                    Err(e) if crate::aws::error_code(&e) == Some("ResourceNotFoundException") => {
                        break;
                    }
                    Err(e) => {
                        return Err(anyhow!(aws_error(
                            &format!("logs:FilterLogEvents {group}"),
                            e
                        )));
                    }
                };
                for e in out.events() {
                    lines.push(Line {
                        function: label,
                        timestamp: e.timestamp().unwrap_or_default(),
                        event_id: e.event_id().unwrap_or_default().to_owned(),
                        message: e.message().unwrap_or_default().trim_end().to_owned(),
                    });
                }
                match out.next_token() {
                    Some(t) if !out.events().is_empty() && Some(t) != token.as_deref() => {
                        token = Some(t.to_owned());
                    }
                    _ => break,
                }
            }
            Ok::<_, anyhow::Error>(lines)
        }
    });
    let mut all = Vec::new();
    for lines in futures::future::join_all(reads).await {
        all.extend(lines?);
    }
    // Interleaved by time; the worker first on a tie (a stable order).
    all.sort_by(|a, b| {
        (a.timestamp, a.function != "worker", &a.event_id).cmp(&(
            b.timestamp,
            b.function != "worker",
            &b.event_id,
        ))
    });
    Ok(all)
}

/// Fields a reader does not need: the EMF metadata and the metric values
/// (they repeat the line's own fields).
const HIDDEN: [&str; 7] = [
    "_aws",
    "level",
    "message",
    "FunctionName",
    "ImagesMade",
    "ImagesFailed",
    "ModelLatency",
];

/// `12:00:01.123 worker INFO image stored message_id=… outcome=stored`.
pub fn render(line: &Line) -> String {
    let secs = line.timestamp.div_euclid(1000);
    let ms = line.timestamp.rem_euclid(1000);
    let (h, m, s) = (
        secs.rem_euclid(86_400) / 3600,
        secs.rem_euclid(3600) / 60,
        secs.rem_euclid(60),
    );
    let time = format!("{h:02}:{m:02}:{s:02}.{ms:03}");
    match serde_json::from_str::<Value>(&line.message) {
        Ok(Value::Object(fields)) => {
            let level = fields.get("level").and_then(Value::as_str).unwrap_or("");
            let message = fields
                .get("message")
                .or_else(|| fields.get("fields").and_then(|f| f.get("message")))
                .and_then(Value::as_str)
                .unwrap_or("");
            let rest: Vec<String> = fields
                .iter()
                .filter(|(k, _)| !HIDDEN.contains(&k.as_str()))
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            format!(
                "{time} {:<6} {level:<5} {message} {}",
                line.function,
                rest.join(" ")
            )
            .trim_end()
            .to_owned()
        }
        _ => format!("{time} {:<6} {}", line.function, line.message),
    }
}

fn print(line: &Line, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({"function": line.function, "timestamp": line.timestamp, "message": line.message})
        );
    } else {
        println!("{}", render(line));
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A line as printed once: the same line from the backlog read and from Live
/// Tail (which has no event ids) is printed once.
type Printed = HashSet<(&'static str, i64, String)>;

fn print_new(line: Line, printed: &mut Printed, start: &mut i64, as_json: bool) {
    if printed.insert((line.function, line.timestamp, line.message.clone())) {
        *start = (*start).max(line.timestamp);
        print(&line, as_json);
    }
}

pub type LiveTail = EventReceiver<StartLiveTailResponseStream, StartLiveTailResponseStreamError>;

/// A Live Tail session on the groups (their ARNs), filtered by the terms; or
/// why there is none.
pub async fn start_live_tail(
    aws: &Aws,
    groups: &[(&'static str, String)],
    terms: &[&str],
) -> Result<(LiveTail, Vec<(String, &'static str)>), String> {
    let mut labels = Vec::new();
    for (label, name) in groups {
        let arn = aws
            .arn("logs", &format!("log-group:{name}"))
            .await
            .map_err(|e| e.to_string())?;
        labels.push((arn, *label));
    }
    let out = aws
        .logs
        .start_live_tail()
        .set_log_group_identifiers(Some(labels.iter().map(|(arn, _)| arn.clone()).collect()))
        .set_log_event_filter_pattern(pattern(terms))
        .send()
        .await
        .map_err(|e| aws_error("logs:StartLiveTail", e).to_string())?;
    Ok((out.response_stream, labels))
}

/// How a Live Tail session ended.
enum LiveEnd {
    Interrupted,
    /// After three hours, as AWS ends every session: start another.
    TimedOut,
    Failed(String),
}

/// Prints the session's lines until Ctrl-C or the session ends.
async fn follow_live(
    stream: &mut LiveTail,
    labels: &[(String, &'static str)],
    printed: &mut Printed,
    start: &mut i64,
    as_json: bool,
    interrupts: &mut Signal,
) -> LiveEnd {
    loop {
        let event = tokio::select! {
            e = stream.recv() => e,
            _ = interrupts.recv() => return LiveEnd::Interrupted,
        };
        match event {
            Ok(Some(StartLiveTailResponseStream::SessionUpdate(update))) => {
                for e in update.session_results() {
                    let group = e.log_group_identifier().unwrap_or_default();
                    let Some((_, function)) = labels.iter().find(|(arn, _)| {
                        arn == group || arn.rsplit(':').next() == group.rsplit(':').next()
                    }) else {
                        continue;
                    };
                    let line = Line {
                        function,
                        timestamp: e.timestamp().unwrap_or_default(),
                        event_id: String::new(),
                        message: e.message().unwrap_or_default().trim_end().to_owned(),
                    };
                    print_new(line, printed, start, as_json);
                }
                if update.session_metadata().is_some_and(|m| m.sampled()) {
                    tracing::warn!(
                        "Live Tail sampled this second's lines down to 500 (use --filter or --id)"
                    );
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return LiveEnd::TimedOut,
            Err(e) => {
                let e = e.into_service_error();
                return if e.is_session_timeout_exception() {
                    LiveEnd::TimedOut
                } else {
                    LiveEnd::Failed(e.to_string())
                };
            }
        }
    }
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    let session = Session::open(path, inputs).await?;
    let terms: Vec<&str> = [args.id.as_deref(), args.filter.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let since = i64::try_from(args.since.as_millis()).unwrap_or(i64::MAX);
    let mut start = now_ms().saturating_sub(since);
    let groups = groups(&session.stack, args.function);
    let open_live = || async {
        start_live_tail(&session.aws, &groups, &terms)
            .await
            .map_err(|why| {
                eprintln!(
                    "Live Tail is not available ({why}); polling FilterLogEvents every {} s",
                    FOLLOW_EVERY.as_secs()
                );
            })
            .ok()
    };
    // Live Tail starts before the backlog is read, so no line falls between.
    let mut live = if args.follow { open_live().await } else { None };
    // One Ctrl-C listener for the whole follow: one pressed while lines are
    // fetched or printed is kept for the next wait (a fresh `ctrl_c()` per
    // wait missed it). Without --follow, Ctrl-C ends the process as usual.
    let mut interrupts = if args.follow {
        Some(signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?)
    } else {
        None
    };
    let mut printed = Printed::new();
    loop {
        for line in fetch(&session.aws, &session.stack, args.function, start, &terms).await? {
            print_new(line, &mut printed, &mut start, args.json);
        }
        let Some(interrupts) = interrupts.as_mut() else {
            return Ok(ExitCode::SUCCESS);
        };
        if let Some((mut stream, labels)) = live.take() {
            match follow_live(
                &mut stream,
                &labels,
                &mut printed,
                &mut start,
                args.json,
                interrupts,
            )
            .await
            {
                LiveEnd::Interrupted => return Ok(ExitCode::SUCCESS),
                LiveEnd::TimedOut => live = open_live().await,
                LiveEnd::Failed(why) => eprintln!(
                    "Live Tail stopped ({why}); polling FilterLogEvents every {} s",
                    FOLLOW_EVERY.as_secs()
                ),
            }
            // Then read what was written meanwhile.
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = interrupts.recv() => return Ok(ExitCode::SUCCESS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_number_and_a_unit() {
        assert_eq!(parse_since("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_since("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_since("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_since("5"), Ok(Duration::from_secs(300)));
        assert!(parse_since("ten").is_err());
        assert!(parse_since("3w").is_err());
    }

    #[test]
    fn json_lines_read_as_level_message_and_fields_without_metrics() {
        let line = Line {
            function: "worker",
            timestamp: 3_723_004,
            event_id: "1".into(),
            message: json!({"level": "INFO", "message": "image stored", "message_id": "m-1",
                "outcome": "stored", "duration_ms": 12, "ImagesMade": 1, "FunctionName": "w",
                "_aws": {"Timestamp": 1}})
            .to_string(),
        };
        assert_eq!(
            render(&line),
            "01:02:03.004 worker INFO  image stored duration_ms=12 message_id=m-1 outcome=stored"
        );
        let raw = Line {
            message: "START RequestId: abc".into(),
            ..line
        };
        assert_eq!(render(&raw), "01:02:03.004 worker START RequestId: abc");
    }

    #[test]
    fn terms_are_quoted_and_all_required() {
        assert_eq!(
            pattern(&["m-1", "stored"]),
            Some("\"m-1\" \"stored\"".into())
        );
        assert_eq!(pattern(&["a\"b"]), Some("\"ab\"".into()));
        assert_eq!(pattern(&[]), None);
    }
}
