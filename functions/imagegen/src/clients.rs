//! The real clients, built once per cold start from the Lambda environment.

use aws_config::{BehaviorVersion, Region};

use crate::config::Config;
use crate::families::BedrockModel;
use crate::generate::Generator;
use crate::health::{self, Invoked};
use crate::queue::SqsPrompts;
use crate::store::S3Store;

/// Bedrock in `MODEL_REGION`, S3 in the function's own region, from the
/// SDK configuration `base` (loaded once per cold start: [`Clients`]).
pub fn generator(
    config: &Config,
    base: &aws_config::SdkConfig,
) -> Generator<BedrockModel, S3Store> {
    generator_with(config, base, None)
}

/// [`generator`], with the model calls' SDK attempts set (`Some(1)`: the
/// caller paces and retries throttled calls itself, as the worker does).
pub fn generator_with(
    config: &Config,
    base: &aws_config::SdkConfig,
    model_attempts: Option<u32>,
) -> Generator<BedrockModel, S3Store> {
    let mut bedrock_conf = aws_sdk_bedrockruntime::config::Builder::from(base)
        .region(Region::new(config.model_region.clone()));
    if let Some(n) = model_attempts {
        bedrock_conf = bedrock_conf
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(n.max(1)));
    }
    let bedrock_conf = bedrock_conf.build();
    let custom_endpoint =
        base.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let s3_conf = aws_sdk_s3::config::Builder::from(base)
        // Emulators serve buckets path-style.
        .force_path_style(custom_endpoint)
        .build();
    Generator::new(
        BedrockModel::of_family(
            aws_sdk_bedrockruntime::Client::from_conf(bedrock_conf),
            config.model_id.clone(),
            config.family,
            config.prompt_rule,
        ),
        S3Store::new(
            aws_sdk_s3::Client::from_conf(s3_conf),
            config.bucket.clone(),
        )
        .signed_by(base.credentials_provider()),
        config.prefix.clone(),
    )
}

/// What a function keeps between invocations: its configuration, read and
/// checked at cold start, and the AWS clients, built on first use. Loading
/// the SDK configuration (credential and region chains, the HTTPS client and
/// its TLS roots) is most of a cold start (about 5 of 7 ms, measured with
/// `scripts/bench-cold-start`, docs/benchmarks.md) and nothing needs it
/// before the first event.
pub struct Clients {
    config: Config,
    /// The SDK configuration both the generator and the queue are built from.
    base: tokio::sync::OnceCell<aws_config::SdkConfig>,
    generator: tokio::sync::OnceCell<Generator<BedrockModel, S3Store>>,
    queue: tokio::sync::OnceCell<Option<SqsPrompts>>,
    /// The model calls' SDK attempts, when not the SDK's default.
    model_attempts: Option<u32>,
}

impl Clients {
    /// The answer to the pre-traffic health check ([`crate::health`]) when
    /// `payload` is its event (`None`: any other event). The function and
    /// version are Lambda's `AWS_LAMBDA_FUNCTION_NAME` / `_VERSION`.
    pub async fn health_answer(&self, payload: &serde_json::Value) -> Option<serde_json::Value> {
        if !health::is_health_event(payload) {
            return None;
        }
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let (function, version) = (
            var("AWS_LAMBDA_FUNCTION_NAME"),
            var("AWS_LAMBDA_FUNCTION_VERSION"),
        );
        let report = health::check(
            self.generator().await,
            Invoked {
                function: &function,
                version: &version,
            },
        )
        .await;
        // A struct of strings and booleans always serialises.
        Some(serde_json::to_value(report).unwrap_or_default())
    }

    /// Model calls with `attempts` SDK attempts each (1: no SDK retry; the
    /// worker paces and retries throttled calls itself, so each throttle is
    /// seen and counted once).
    pub fn model_attempts(mut self, attempts: u32) -> Self {
        self.model_attempts = Some(attempts);
        self
    }

    /// The configuration read at cold start.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The prompts queue, when the function has one (`QUEUE_ARN`).
    pub async fn queue(&self) -> Option<&SqsPrompts> {
        self.queue
            .get_or_init(|| async {
                let url = self.config.queue_url.clone()?;
                Some(SqsPrompts::new(
                    aws_sdk_sqs::Client::new(self.base().await),
                    url,
                ))
            })
            .await
            .as_ref()
    }

    /// An SQS client for the function's own Region (the worker's returns
    /// and dead-letter moves).
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(self.base().await)
    }

    /// The SDK configuration (credential and region chains), loaded once.
    async fn base(&self) -> &aws_config::SdkConfig {
        self.base
            .get_or_init(|| {
                aws_config::defaults(BehaviorVersion::latest())
                    .http_client(couch_https::client())
                    .load()
            })
            .await
    }

    /// The generator with the real clients, built by the first caller.
    pub async fn generator(&self) -> &Generator<BedrockModel, S3Store> {
        self.generator
            .get_or_init(|| async {
                let started = std::time::Instant::now();
                let g = generator_with(&self.config, self.base().await, self.model_attempts);
                tracing::info!(
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "AWS clients ready"
                );
                g
            })
            .await
    }
}

/// Everything a function does once per cold start: logging and
/// configuration. A missing variable fails with a log line that names it.
pub fn cold_start() -> Result<Clients, crate::config::ConfigError> {
    crate::telemetry::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    Ok(Clients {
        config,
        base: tokio::sync::OnceCell::new(),
        generator: tokio::sync::OnceCell::new(),
        queue: tokio::sync::OnceCell::new(),
        model_attempts: None,
    })
}
