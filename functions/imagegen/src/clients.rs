//! The real clients, built once per cold start from the Lambda environment.

use aws_config::{BehaviorVersion, Region};

use crate::config::Config;
use crate::generate::Generator;
use crate::model::BedrockModel;
use crate::store::S3Store;

/// Bedrock in `MODEL_REGION`, S3 in the function's own region.
pub async fn generator(config: &Config) -> Generator<BedrockModel, S3Store> {
    let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let bedrock_conf = aws_sdk_bedrockruntime::config::Builder::from(&base)
        .region(Region::new(config.model_region.clone()))
        .build();
    let custom_endpoint =
        base.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let s3_conf = aws_sdk_s3::config::Builder::from(&base)
        // Emulators serve buckets path-style.
        .force_path_style(custom_endpoint)
        .build();
    Generator::new(
        BedrockModel::new(
            aws_sdk_bedrockruntime::Client::from_conf(bedrock_conf),
            config.model_id.clone(),
        ),
        S3Store::new(
            aws_sdk_s3::Client::from_conf(s3_conf),
            config.bucket.clone(),
        ),
        config.prefix.clone(),
    )
}

/// Everything a function does once per cold start: logging, configuration,
/// clients. A missing variable fails with a log line that names it.
pub async fn cold_start() -> Result<Generator<BedrockModel, S3Store>, crate::config::ConfigError> {
    crate::telemetry::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    Ok(generator(&config).await)
}
