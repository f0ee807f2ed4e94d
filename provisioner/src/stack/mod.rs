//! The desired state as plain data: what a stack file declares, with every
//! default filled in and every value checked. Building a [`Stack`] makes no AWS
//! call, so it can be printed, diffed offline and unit-tested.

pub mod capacity;
mod locate;
mod parse;
pub mod sections;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use parse::{NAME_FLAG, load, load_named, parse, parse_named};

/// The stack itself is made by the table of sections (`sections/mod.rs`):
/// a section's row is its field.
pub use sections::Stack;

/// Where a preview stack named `name` keeps its pictures, status objects
/// and lock: `{prefix}/previews/{name}`, under the file's prefix but apart
/// from the file's own stack (`{prefix}/images/`, `{prefix}/.locks/`), so
/// nothing a preview's roles may touch is production's.
pub fn preview_prefix(prefix: &str, name: &str) -> String {
    format!("{}/previews/{name}", prefix.trim_matches('/'))
}

/// The images bucket: referenced, never managed.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    pub bucket: String,
    pub prefix: String,
}

pub use crate::aws::models::Model;

/// The default model: Stability AI's Stable Image Core 1.1, Active on
/// Bedrock's lifecycle page (bedrock/latest/userguide/model-lifecycle.html,
/// read 2026-12; no Amazon image model is Active any more), offered in
/// us-west-2. docs/reference/model.md says how to choose another.
pub const DEFAULT_MODEL_ID: &str = "stability.stable-image-core-v1:1";
pub const DEFAULT_MODEL_REGION: &str = "us-west-2";

/// As the file writes it (`queue:`); absent keys take their defaults.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    pub visibility_timeout_seconds: u32,
    pub message_retention_seconds: u32,
    /// Receives a prompt gets for failures other than throttling; the
    /// queue's redrive `maxReceiveCount` adds the throttled receives
    /// (`couch_contract::queues::safety_net`).
    pub max_receive_count: u32,
    /// The burst of prompts the stack is sized for (`queue.burst`): `plan`
    /// says how long it takes to drain and warns when the prompt-age
    /// alarm would ring before.
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub batch_size: u32,
    /// The trigger's maximum concurrency when no model capacity is stated
    /// (with one, [`Stack::capacity`] derives it).
    pub max_concurrency: u32,
    /// `worker.max_concurrency` as the file states it (`None`: the default,
    /// or derived from the model's capacity).
    pub stated_max_concurrency: Option<u32>,
}

/// The trigger's maximum concurrency when neither the file nor a model
/// capacity says.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    /// The `$default` stage's steady-state limit (`ThrottlingRateLimit`,
    /// a double in API Gateway's model, so below 1 is allowed).
    pub rate_per_second: f64,
    /// The `$default` stage's bucket (`ThrottlingBurstLimit`).
    pub burst: u32,
    /// Lambda reserved concurrency for the HTTP function: a hard cap on the
    /// images it generates at once (and executions kept for it).
    pub reserved_concurrency: Option<u32>,
    /// Who may call the route.
    pub auth: Auth,
}

/// The defaults hold what a stranger can make the stack spend: at most
/// `burst + rate_per_second x 3600` images an hour (see [`Http::images_per_hour`]).
pub const DEFAULT_RATE_PER_SECOND: f64 = 0.1;
pub const DEFAULT_BURST: u32 = 3;

/// API Gateway's default account throttle per Region: 10,000 requests per
/// second, a bucket of 5,000 (apigateway/latest/developerguide/limits.html);
/// a stage's limits cannot exceed the account's.
pub const MAX_RATE_PER_SECOND: f64 = 10_000.0;
pub const MAX_BURST: u32 = 5_000;

impl Http {
    /// The most requests the stage lets through in an hour: a full bucket,
    /// then the steady rate (throttles are best-effort targets, AWS says:
    /// apigateway/latest/developerguide/http-api-throttling.html).
    pub fn images_per_hour(&self) -> u64 {
        // Both are validated: finite, positive, at most 10,000 x 3,600.
        let steady = (self.rate_per_second * 3600.0).floor();
        u64::from(self.burst) + steady as u64
    }
}

/// How the HTTP route authorises a caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// Open: anyone who knows the URL (plan warns).
    None,
    /// `AWS_IAM`: SigV4-signed by an identity allowed `execute-api:Invoke`.
    Iam,
    /// A JWT authorizer: a bearer token from `issuer` for one of `audience`.
    Jwt(Jwt),
}

impl Auth {
    /// The stack file's word for it.
    pub fn word(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Iam => "iam",
            Auth::Jwt(_) => "jwt",
        }
    }
}

/// The words `http.auth` may be.
pub const AUTH_WORDS: [&str; 3] = ["none", "iam", "jwt"];

#[derive(Debug, Clone, PartialEq)]
pub struct Jwt {
    /// The identity provider's base URL (`https://...`; API Gateway reads
    /// its keys from `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// A token's `aud` (or `client_id`) must be one of these.
    pub audience: Vec<String>,
    /// Scopes the route requires (any one of them), none for any token.
    pub scopes: Vec<String>,
}

/// The client identity: an IAM role `{name}-client` that may only send
/// prompts and read images, assumable by the principals named here.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub assumed_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub threshold_seconds: u32,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
    pub email: String,
}

/// The alarms for every way an image is lost or a part fails, each notifying
/// the alerts topic when its metric is above its threshold in one period.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alarms {
    /// The period of every alarm here (10, 30 or a multiple of 60 seconds).
    pub period_seconds: u32,
    /// Prompts in the dead-letter queue (`ApproximateNumberOfMessagesVisible`):
    /// above 0, an image request was lost.
    pub dlq_messages: u32,
    /// Failed image attempts the worker reports per period (its
    /// `ImagesFailed` metric, every reason).
    pub failed_images: u32,
    /// Each function's Lambda `Errors` per period.
    pub function_errors: u32,
    /// Each function's Lambda `Throttles` per period.
    pub function_throttles: u32,
    /// The HTTP API stage's `5xx` answers per period.
    pub api_5xx: u32,
    /// Model calls answered with throttling per period (Bedrock's
    /// `InvocationThrottles`, or the worker's `ModelThrottles` when the
    /// model is in another Region). A few are how the worker finds the
    /// model's capacity when none is stated; many say the stack asks
    /// more than the account allows.
    pub model_throttles: u32,
}

impl Default for Alarms {
    fn default() -> Self {
        Alarms {
            period_seconds: 60,
            dlq_messages: 0,
            failed_images: 5,
            function_errors: 0,
            function_throttles: 0,
            api_5xx: 0,
            model_throttles: 10,
        }
    }
}

/// How `apply` deploys the functions: each change is published as a version
/// and the `live` alias moves to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    /// Published versions kept per function besides those an alias points at
    /// (the newest first); older ones are deleted when a new one is published.
    pub keep_versions: u32,
    /// How the HTTP function's `live` alias moves to a new version; the
    /// worker always moves at once.
    pub strategy: Strategy,
    /// Canary: the new version's share before all of it; linear: the share
    /// added each step.
    pub percent: u32,
    /// How long each step is watched before the next.
    pub interval_seconds: u32,
    /// More CloudWatch alarms (names) that roll a shift back, besides the
    /// function's own failure alarms.
    pub alarms: Vec<String>,
}

/// How an alias moves to a new version (`deploy.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    AllAtOnce,
    Canary,
    Linear,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::AllAtOnce, Strategy::Canary, Strategy::Linear];
    /// Its word in the stack file.
    pub const fn word(self) -> &'static str {
        match self {
            Strategy::AllAtOnce => "all_at_once",
            Strategy::Canary => "canary",
            Strategy::Linear => "linear",
        }
    }
    pub fn parse(word: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.word() == word)
    }
}

impl Default for Deploy {
    fn default() -> Self {
        Deploy {
            keep_versions: 3,
            strategy: Strategy::AllAtOnce,
            percent: 10,
            interval_seconds: 300,
            alarms: Vec::new(),
        }
    }
}

impl Deploy {
    /// The new version's share after each step, in percent, ending at 100
    /// (all at once: `[100]`).
    pub fn steps(&self) -> Vec<u32> {
        let p = self.percent.clamp(1, 99);
        match self.strategy {
            Strategy::Canary => vec![p, 100],
            Strategy::Linear => (1..).map(|i| (i * p).min(100)).take_while_inclusive(100),
            Strategy::AllAtOnce => vec![100],
        }
    }
}

/// `take_while` that keeps the first item reaching `end`.
trait TakeWhileInclusive {
    fn take_while_inclusive(self, end: u32) -> Vec<u32>;
}

impl<I: Iterator<Item = u32>> TakeWhileInclusive for I {
    fn take_while_inclusive(self, end: u32) -> Vec<u32> {
        let mut out = Vec::new();
        for v in self {
            out.push(v);
            if v >= end {
                break;
            }
        }
        out
    }
}

/// The functions' CloudWatch log groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Logs {
    /// One of CloudWatch Logs' allowed retention periods ([`LOG_RETENTION_DAYS`]).
    pub retention_days: u32,
    /// The functions' application log level (Lambda's `LoggingConfig`,
    /// JSON format).
    pub level: LogLevel,
}

/// The application log levels a stack may choose: Lambda drops JSON lines
/// below the level, and each image's line is `INFO` (stored) or `WARN`
/// (failed) with its metrics in it, so a level above `info` would lose the
/// `ImagesMade` and `ModelLatency` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
}

impl LogLevel {
    pub const ALL: [LogLevel; 3] = [LogLevel::Trace, LogLevel::Debug, LogLevel::Info];
    /// Its word in the stack file.
    pub const fn word(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
        }
    }
    /// As Lambda's `LoggingConfig.ApplicationLogLevel` names it.
    pub const fn lambda(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
        }
    }
    pub fn parse(word: &str) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|l| l.word() == word)
    }
}

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
pub const LOG_RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The ownership tags: what the engine's plan reads ownership from.
pub use crate::engine::plan::{MANAGED_BY_KEY, MANAGED_BY_VALUE, STACK_KEY};

/// Retention of the dead-letter queue: the SQS maximum, 14 days.
pub const DLQ_RETENTION_SECONDS: u32 = 1_209_600;

impl Stack {
    /// Physical names: deterministic, derived from the stack name only.
    pub fn queue_name(&self) -> String {
        format!("{}-prompts", self.name)
    }
    pub fn dlq_name(&self) -> String {
        format!("{}-prompts-dlq", self.name)
    }
    pub fn topic_name(&self) -> String {
        format!("{}-alerts", self.name)
    }
    pub fn alarm_name(&self) -> String {
        format!("{}-prompt-age", self.name)
    }
    /// One of the loss-and-failure alarms (`{name}-dlq-messages`, ...).
    pub fn alarm_name_for(&self, what: &str) -> String {
        format!("{}-{what}", self.name)
    }
    /// The worker function and its role.
    pub fn worker_name(&self) -> String {
        format!("{}-worker", self.name)
    }
    /// The HTTP function and its role.
    pub fn http_name(&self) -> String {
        format!("{}-http", self.name)
    }
    /// Where Lambda writes a function's logs.
    pub fn log_group_name(function: &str) -> String {
        crate::aws::log_groups::of_function(function)
    }
    pub fn api_name(&self) -> String {
        format!("{}-api", self.name)
    }
    /// The client identity's role (`client:`).
    pub fn client_role_name(&self) -> String {
        format!("{}-client", self.name)
    }
    /// This file's stack under another name: what `--name NAME` makes
    /// (also for the pattern `{name}-pr-*` that the preview role's policy
    /// and the preview boundary name). Pictures apart, no client identity.
    pub fn preview(&self, name: &str) -> Stack {
        let file = self.preview_of.clone().unwrap_or_else(|| self.name.clone());
        let base = match &self.preview_of {
            // Already a preview: its prefix ends in /previews/{name}.
            Some(_) => self
                .images
                .prefix
                .rsplit_once("/previews/")
                .map_or(self.images.prefix.clone(), |(base, _)| base.to_owned()),
            None => self.images.prefix.clone(),
        };
        let mut preview = self.clone();
        preview.images.prefix = preview_prefix(&base, name);
        preview.name = name.to_owned();
        preview.preview_of = Some(file);
        preview.client = None;
        // No reservation of the account's concurrency for a preview: it
        // would be taken from production's share.
        preview.http.reserved_concurrency = None;
        preview
    }

    /// The managed policy every role of this stack carries as its
    /// permissions boundary; a preview's is its file's
    /// [`Stack::preview_boundary_name`].
    pub fn boundary_name(&self) -> String {
        match &self.preview_of {
            Some(file) => Stack::preview_boundary_for(file),
            None => format!("{}-boundary", self.name),
        }
    }
    /// The boundary of every preview of this file's stack (made by `bootstrap`).
    pub fn preview_boundary_name(&self) -> String {
        Stack::preview_boundary_for(self.preview_of.as_deref().unwrap_or(&self.name))
    }
    fn preview_boundary_for(file: &str) -> String {
        format!("{file}-preview-boundary")
    }
    /// The HTTP API's JWT authorizer (`http.auth: jwt`).
    pub fn authorizer_name(&self) -> String {
        format!("{}-jwt", self.name)
    }

    /// Every physical name with the AWS limit on its length, for validation.
    pub fn physical_names(&self) -> Vec<(&'static str, String, usize)> {
        vec![
            ("SQS queue", self.queue_name(), 80),
            ("SQS queue", self.dlq_name(), 80),
            ("SNS topic", self.topic_name(), 256),
            ("CloudWatch alarm", self.alarm_name(), 255),
            // The longest of the loss-and-failure alarms' names.
            (
                "CloudWatch alarm",
                self.alarm_name_for("worker-throttles"),
                255,
            ),
            ("Lambda function", self.worker_name(), 64),
            ("Lambda function", self.http_name(), 64),
            ("IAM role", self.worker_name(), 64),
            ("IAM role", self.http_name(), 64),
            ("IAM role", self.client_role_name(), 64),
            // IAM's managed policy names: 1..=128 characters.
            ("IAM policy", self.boundary_name(), 128),
            ("IAM policy", self.preview_boundary_name(), 128),
            ("log group", Stack::log_group_name(&self.worker_name()), 512),
            ("log group", Stack::log_group_name(&self.http_name()), 512),
            ("HTTP API", self.api_name(), 128),
        ]
    }

    /// Ownership tags plus the stack's own tags: what every taggable resource carries.
    pub fn resource_tags(&self) -> BTreeMap<String, String> {
        let mut tags = self.tags.clone();
        tags.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned());
        tags.insert(STACK_KEY.to_owned(), self.name.clone());
        tags
    }
}

/// One thing wrong with a stack file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    /// Dotted key path, e.g. `queue.visibility_timeout_seconds`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // Not in a file (a command-line flag).
            write!(f, "{}: {}", self.file.display(), self.message)
        } else if self.path.is_empty() {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file.display(),
                self.line,
                self.path,
                self.message
            )
        }
    }
}

/// Everything wrong with a stack file, all at once.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot read stack file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has {} problem(s):\n{}", .file.display(), .problems.len(), render_problems(.problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

fn render_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl StackError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            StackError::Read { .. } => &[],
            StackError::Invalid { problems, .. } => problems,
        }
    }
}
