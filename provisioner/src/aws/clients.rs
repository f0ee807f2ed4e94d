//! The SDK clients, built once from `aws-config`'s default chain (profiles, SSO,
//! environment, web identity). `AWS_ENDPOINT_URL` points them all at an emulator.

use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::endpoint::EndpointPrefix;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::SdkConfig;
use tokio::sync::OnceCell;

use super::aws_error;
use super::calls::CallLog;
use crate::engine::ResourceError;

pub struct Aws {
    pub region: String,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub s3: aws_sdk_s3::Client,
    pub sts: aws_sdk_sts::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// Only `retire` uses it: the old SAM stack.
    pub cloudformation: aws_sdk_cloudformation::Client,
    /// Bedrock's control plane (the declared model's lifecycle and access),
    /// called in the model's Region (`aws::models`). `AWS_ENDPOINT_URL_BEDROCK`
    /// points it at the model stand-in, which serves these reads locally.
    pub bedrock: aws_sdk_bedrock::Client,
    pub calls: CallLog,
    account: OnceCell<String>,
}

/// Attempts per AWS call (SDK retries), unless `AWS_MAX_ATTEMPTS` is set.
pub const MAX_ATTEMPTS: u32 = 5;

/// The region to use: `AWS_REGION` if set, else the stack's.
pub fn region_for(stack_region: &str) -> String {
    std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| stack_region.to_owned())
}

impl Aws {
    /// Loads the default credential chain for `region`. Makes no AWS call.
    pub async fn load(region: &str) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(couch_https::client())
            .region(Region::new(region.to_owned()));
        // Five attempts (the SDK's default is three) unless the environment
        // says otherwise: a plan or apply is hundreds of calls, and one that
        // fails three times in a row ends the run.
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
            loader = loader.retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS),
            );
        }
        let conf = loader.load().await;
        Aws::from_conf(&conf)
    }

    /// Clients that are never called (for `--offline` plans).
    pub fn offline(region: &str) -> Aws {
        let conf = SdkConfig::builder()
            .region(Region::new(region.to_owned()))
            .behavior_version(BehaviorVersion::latest())
            .build();
        Aws::from_conf(&conf)
    }

    pub fn from_conf(conf: &SdkConfig) -> Aws {
        let calls = CallLog::default();
        let region = conf.region().map(|r| r.to_string()).unwrap_or_default();
        let s3 = aws_sdk_s3::config::Builder::from(conf)
            // Emulators serve buckets path-style; real S3 is fine either way.
            .force_path_style(conf.endpoint_url().is_some())
            .interceptor(calls.clone())
            .build();
        Aws {
            region,
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
            sns: aws_sdk_sns::Client::from_conf(
                aws_sdk_sns::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
            apigw: aws_sdk_apigatewayv2::Client::from_conf(
                aws_sdk_apigatewayv2::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
            // The one host-prefixed operation the provisioner calls is Live
            // Tail's (`stream-`).
            logs: logs_client(conf, &calls, host_prefix_injection_disabled()),
            cloudformation: aws_sdk_cloudformation::Client::from_conf(
                aws_sdk_cloudformation::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
            bedrock: aws_sdk_bedrock::Client::from_conf(
                aws_sdk_bedrock::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
            calls,
            account: OnceCell::new(),
        }
    }

    /// The same clients with Bedrock's control plane at `endpoint` (what
    /// `AWS_ENDPOINT_URL_BEDROCK` does for the binary; tests: the model stand-in).
    pub fn with_bedrock_endpoint(mut self, conf: &SdkConfig, endpoint: &str) -> Aws {
        self.bedrock = aws_sdk_bedrock::Client::from_conf(
            aws_sdk_bedrock::config::Builder::from(conf)
                .endpoint_url(endpoint)
                .interceptor(self.calls.clone())
                .build(),
        );
        self
    }

    /// The same clients as `AWS_DISABLE_HOST_PREFIX_INJECTION=true` makes
    /// them, for clients configured in code for an emulator.
    pub fn without_host_prefixes(mut self, conf: &SdkConfig) -> Aws {
        self.logs = logs_client(conf, &self.calls, true);
        self
    }

    /// The same clients for a known account: ARNs need no STS call
    /// (`provisioner policies --account`).
    pub fn with_account(self, account: &str) -> Aws {
        let _ = self.account.set(account.to_owned());
        self
    }

    /// The account id (one STS call, shared by every concurrent caller).
    pub async fn account_id(&self) -> Result<String, ResourceError> {
        self.account
            .get_or_try_init(|| async {
                let out = self.sts.get_caller_identity().send().await.map_err(|e| {
                    aws_error("sts:GetCallerIdentity (who are these credentials?)", e)
                })?;
                out.account
                    .ok_or_else(|| ResourceError::new("sts:GetCallerIdentity returned no account"))
            })
            .await
            .cloned()
    }

    /// `arn:aws:{service}:{region}:{account}:{resource}` for this account and region.
    pub async fn arn(&self, service: &str, resource: &str) -> Result<String, ResourceError> {
        let account = self.account_id().await?;
        let partition = self.partition();
        Ok(format!(
            "arn:{partition}:{service}:{}:{account}:{resource}",
            self.region
        ))
    }

    /// The ARN partition of the region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }
}

fn logs_client(
    conf: &SdkConfig,
    calls: &CallLog,
    no_host_prefix: bool,
) -> aws_sdk_cloudwatchlogs::Client {
    let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(conf).interceptor(calls.clone());
    if no_host_prefix {
        logs = logs.interceptor(NoHostPrefix);
    }
    aws_sdk_cloudwatchlogs::Client::from_conf(logs.build())
}

/// AWS's shared setting `AWS_DISABLE_HOST_PREFIX_INJECTION=true`
/// (<https://docs.aws.amazon.com/sdkref/latest/guide/feature-host-prefix.html>):
/// the SDK must not prepend an operation's modelled host prefix (Live Tail's
/// `stream-`) to the endpoint, as for a local emulator at `127.0.0.1`. The Rust
/// SDK does not read it yet; this client does (the environment variable; not
/// the config file's `disable_host_prefix_injection`).
pub fn host_prefix_injection_disabled() -> bool {
    std::env::var("AWS_DISABLE_HOST_PREFIX_INJECTION")
        .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Removes the operation's host prefix before the endpoint is applied: the
/// operation stores it in `read_before_execution`, the endpoint is applied at
/// each attempt, after `modify_before_retry_loop`.
#[derive(Debug)]
struct NoHostPrefix;

impl Intercept for NoHostPrefix {
    fn name(&self) -> &'static str {
        "NoHostPrefix"
    }

    fn modify_before_retry_loop(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().unset::<EndpointPrefix>();
        Ok(())
    }
}

pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}
