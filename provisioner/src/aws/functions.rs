//! Lambda functions from the cargo-lambda zips, with the waits AWS needs:
//!
//! - `CreateFunction` right after the role was created fails with "The role
//!   defined for the function cannot be assumed by Lambda" until IAM has
//!   propagated it: classified `Propagating`, and retried by the engine's
//!   policy (`engine::retry`).
//! - A new function is `Pending` before it is `Active`; `create` returns only
//!   once it is, so what uses it (trigger, permission, integration) never
//!   sees a function that is not ready.
//! - Configuration and code updates never overlap: each waits for
//!   `LastUpdateStatus = Successful` first, and `ResourceConflictException`
//!   (an update still in progress) is retried by the engine's policy.
//! - A published version is `Pending` for a moment: `publish` returns once it
//!   is `Active` (the SDK's `published-version-active` waiter; Lambda
//!   developer guide, "Lambda function states"), so neither the health
//!   check's invoke nor the alias ever meets a version that is not ready.
//!
//! The code is compared by `CodeSha256`, shown shortened; the zip's bytes are
//! read only when they are uploaded.
//!
//! Every change of code or configuration is published as a version
//! (`PublishVersion`, guarded by the zip's `CodeSha256`): the function's
//! `version` attribute is the newest published version with `$LATEST`'s code
//! and configuration, which the `live` alias (`aws::aliases`) serves; the
//! `published` field is `false` when there is none (an apply interrupted
//! between update and publish), so the next apply publishes. After a publish,
//! versions beyond the newest `keep_versions` are deleted, never one an alias
//! points at or weights.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    ApplicationLogLevel, Architecture, Environment, FunctionCode, LastUpdateStatus, LogFormat,
    LoggingConfig, Runtime, State, SystemLogLevel,
};
use serde::{Deserialize, Serialize};

use super::{ARN, Aws, Done, NAME, aws_error, error_code, exists_already, read_back, with_arn};
use crate::artifacts::{Artifact, short};
use crate::engine::retry;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Field, Fields, Handle, Live, Ref, Resource, ResourceError,
    Tagging, Tags, Text, TypedKind, Update, fields_of, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, Upload, object, tag_list};
use crate::kind::{Access, Grant, own};
use aws_sdk_lambda::types::FunctionConfiguration;

/// How long a function may stay `Pending` or `InProgress`.
pub const READY_WITHIN: Duration = Duration::from_secs(300);

/// A function as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub runtime: String,
    pub architectures: Vec<String>,
    pub handler: String,
    pub memory_size: u32,
    pub timeout: u32,
    pub environment: BTreeMap<String, String>,
    /// The execution role's ARN.
    pub role: Text,
    /// Where the function logs (`LoggingConfig.LogGroup`; Lambda's default
    /// is `/aws/lambda/{name}`). Referencing the log group makes it exist first.
    pub log_group: Text,
    /// `LoggingConfig.LogFormat`: `JSON` (the functions write JSON lines).
    pub log_format: String,
    /// `LoggingConfig.ApplicationLogLevel` (`INFO`, ...; Lambda filters the
    /// function's JSON lines by it and sets `AWS_LAMBDA_LOG_LEVEL`).
    pub application_log_level: String,
    /// `LoggingConfig.SystemLogLevel` (Lambda's own START/END/REPORT lines).
    pub system_log_level: String,
    /// The zip's `CodeSha256`, shortened ([`short`]).
    pub code_sha256: String,
    /// Whether a published version has `$LATEST`'s code and configuration
    /// (declared: always).
    pub published: bool,
    /// Reserved concurrency (`PutFunctionConcurrency`): a cap on the
    /// function's executions, kept for it in the account. A setting of the
    /// function, not of a version: changing it publishes nothing.
    pub reserved_concurrency: Option<u32>,
    pub tags: Tags,
}

/// The attribute naming the published version the alias should serve.
pub const VERSION: &str = "version";

crate::engine::fields!(FunctionSpec {
    RUNTIME: runtime,
    HANDLER: handler,
    MEMORY_SIZE: memory_size,
    TIMEOUT: timeout,
    ENVIRONMENT: environment,
    ROLE: role,
    LOG_GROUP: log_group,
    LOG_FORMAT: log_format,
    APPLICATION_LOG_LEVEL: application_log_level,
    SYSTEM_LOG_LEVEL: system_log_level,
    CODE_SHA256: code_sha256,
    ARCHITECTURES: architectures,
    PUBLISHED: published,
    RESERVED_CONCURRENCY: reserved_concurrency,
});

/// Fields that `UpdateFunctionConfiguration` changes.
const CONFIGURATION: &[Field<FunctionSpec>] = &[
    FunctionSpec::RUNTIME,
    FunctionSpec::HANDLER,
    FunctionSpec::MEMORY_SIZE,
    FunctionSpec::TIMEOUT,
    FunctionSpec::ENVIRONMENT,
    FunctionSpec::ROLE,
    FunctionSpec::LOG_GROUP,
    FunctionSpec::LOG_FORMAT,
    FunctionSpec::APPLICATION_LOG_LEVEL,
    FunctionSpec::SYSTEM_LOG_LEVEL,
];

pub struct LambdaFunction {
    declared: Declared,
    code: Artifact,
    /// Published versions kept besides those an alias uses (`deploy.keep_versions`).
    keep_versions: u32,
    aws: Arc<Aws>,
}

// Attributes a function exports.
/// `arn:aws:lambda:{region}:{account}:function:{name}`.
impl crate::kind::HasArn for LambdaFunction {}
impl crate::kind::HasName for LambdaFunction {}
/// What a `LambdaFunction` exports beyond the common attributes.
pub trait FunctionAttrs {
    /// The newest published version with the declared code and configuration.
    fn version(&self) -> Ref;
}
impl FunctionAttrs for Handle<LambdaFunction> {
    fn version(&self) -> Ref {
        self.attr(VERSION)
    }
}

/// Lambda's provided runtime on Amazon Linux 2023, for the Rust `bootstrap`.
pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";
pub const ARM64: &str = "arm64";

impl LambdaFunction {
    /// `spec.code_sha256` is overwritten from `code` (or says it is not built).
    pub fn new(
        address: &str,
        name: String,
        mut spec: FunctionSpec,
        code: Artifact,
        keep_versions: u32,
        aws: Arc<Aws>,
    ) -> Self {
        spec.code_sha256 = match &code.code_sha256 {
            Ok(sha) => short(sha),
            Err(_) => format!("(not built: run {})", crate::artifacts::BUILD_COMMAND),
        };
        // Declared: some version is what $LATEST is.
        spec.published = true;
        let declared = Declared::of(address, name.clone(), &spec).knowing(NAME, name);
        LambdaFunction {
            declared,
            code,
            keep_versions,
            aws,
        }
    }

    fn what(&self, call: &str) -> String {
        format!("lambda:{call} {}", self.declared.name)
    }

    fn zip(&self) -> Result<Blob, ResourceError> {
        self.code
            .bytes()
            .map(Blob::new)
            .map_err(|e| ResourceError::new(format!("{}: {e}", self.declared.address)))
    }

    async fn configuration(&self) -> Result<GetFunctionConfigurationOutput, ResourceError> {
        self.aws
            .lambda
            .get_function_configuration()
            .function_name(&self.declared.name)
            .send()
            .await
            .map_err(|e| aws_error(&self.what("GetFunctionConfiguration"), e))
    }

    /// Polls the configuration until `ready` says so (or fails).
    async fn wait_for(
        &self,
        what: &str,
        ready: impl Fn(&GetFunctionConfigurationOutput) -> Result<bool, String>,
    ) -> Result<(), ResourceError> {
        let name = &self.declared.name;
        retry::wait_until(&format!("{name} is {what}"), READY_WITHIN, || async {
            let conf = self.configuration().await?;
            match ready(&conf) {
                Ok(true) => Ok(Some(())),
                Ok(false) => Ok(None),
                Err(why) => Err(ResourceError::new(format!("{name}: {why}"))),
            }
        })
        .await
    }

    /// Until `State = Active` (a new function).
    async fn wait_active(&self) -> Result<(), ResourceError> {
        self.wait_for("Active", |c| match c.state() {
            Some(State::Active) | None => Ok(true),
            Some(State::Pending) => Ok(false),
            Some(other) => Err(format!(
                "state {} ({})",
                other.as_str(),
                c.state_reason().unwrap_or("no reason given")
            )),
        })
        .await
    }

    /// Until the last update is done (`LastUpdateStatus = Successful`).
    async fn wait_updated(&self) -> Result<(), ResourceError> {
        self.wait_for("updated", |c| match c.last_update_status() {
            Some(LastUpdateStatus::Successful) | None => Ok(true),
            Some(LastUpdateStatus::InProgress) => Ok(false),
            Some(other) => Err(format!(
                "last update {} ({})",
                other.as_str(),
                c.last_update_status_reason().unwrap_or("no reason given")
            )),
        })
        .await
    }

    async fn update_configuration(&self, spec: &FunctionSpec) -> Result<(), ResourceError> {
        retry::call(|| async {
            self.aws
                .lambda
                .update_function_configuration()
                .function_name(&self.declared.name)
                .runtime(Runtime::from(spec.runtime.as_str()))
                .handler(&spec.handler)
                .memory_size(int(spec.memory_size))
                .timeout(int(spec.timeout))
                .role(spec.role.as_str())
                .environment(environment(spec))
                .logging_config(logging(spec))
                .send()
                .await
                .done(&self.what("UpdateFunctionConfiguration"))
        })
        .await
    }

    async fn update_code(&self) -> Result<(), ResourceError> {
        let zip = self.zip()?;
        retry::call(|| async {
            self.aws
                .lambda
                .update_function_code()
                .function_name(&self.declared.name)
                .zip_file(zip.clone())
                .architectures(Architecture::Arm64)
                .send()
                .await
                .done(&self.what("UpdateFunctionCode"))
        })
        .await
    }
}

impl LambdaFunction {
    /// Every published version (not `$LATEST`), oldest first.
    async fn versions(&self) -> Result<Vec<FunctionConfiguration>, ResourceError> {
        let mut out = Vec::new();
        let mut pages = self
            .aws
            .lambda
            .list_versions_by_function()
            .function_name(&self.declared.name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error(&self.what("ListVersionsByFunction"), e))?;
            out.extend(
                page.versions()
                    .iter()
                    .filter(|v| version_number(v).is_some())
                    .cloned(),
            );
        }
        out.sort_by_key(version_number);
        Ok(out)
    }

    /// Publishes `$LATEST` once its update is done; returns the version.
    /// With the zip's `CodeSha256`, Lambda refuses to publish other code.
    async fn publish(&self) -> Result<String, ResourceError> {
        self.wait_updated().await?;
        let sha = self.code.code_sha256.clone().ok();
        let version = retry::call(|| async {
            self.aws
                .lambda
                .publish_version()
                .function_name(&self.declared.name)
                .set_code_sha256(sha.clone())
                .send()
                .await
                .map(|out| out.version().unwrap_or_default().to_owned())
                .map_err(|e| aws_error(&self.what("PublishVersion"), e))
        })
        .await?;
        self.wait_version_active(&version).await?;
        tracing::info!(function = %self.declared.name, %version, "published");
        self.prune().await?;
        Ok(version)
    }

    /// Until version `version` is `Active` (the `published-version-active`
    /// waiter: `GetFunctionConfiguration` with the version as qualifier).
    async fn wait_version_active(&self, version: &str) -> Result<(), ResourceError> {
        let name = &self.declared.name;
        retry::wait_until(
            &format!("version {version} of {name} is Active"),
            READY_WITHIN,
            || async {
                let conf = self
                    .aws
                    .lambda
                    .get_function_configuration()
                    .function_name(name)
                    .qualifier(version)
                    .send()
                    .await
                    .map_err(|e| aws_error(&self.what("GetFunctionConfiguration"), e))?;
                match conf.state() {
                    Some(State::Active) | None => Ok(Some(())),
                    Some(State::Pending) => Ok(None),
                    Some(other) => Err(ResourceError::new(format!(
                        "{name}: version {version} is {} ({})",
                        other.as_str(),
                        conf.state_reason().unwrap_or("no reason given")
                    ))),
                }
            },
        )
        .await
    }

    /// Deletes versions beyond the newest `keep_versions`, except those an
    /// alias points at or weights.
    async fn prune(&self) -> Result<(), ResourceError> {
        let mut aliases = Vec::new();
        let mut pages = self
            .aws
            .lambda
            .list_aliases()
            .function_name(&self.declared.name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error(&self.what("ListAliases"), e))?;
            aliases.extend(page.aliases.unwrap_or_default());
        }
        let in_use: BTreeSet<String> = aliases
            .iter()
            .flat_map(|a| {
                a.function_version().map(str::to_owned).into_iter().chain(
                    a.routing_config()
                        .and_then(|r| r.additional_version_weights())
                        .map(|w| w.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let versions = self.versions().await?;
        let keep = usize::try_from(self.keep_versions).unwrap_or(usize::MAX);
        let old = versions.len().saturating_sub(keep);
        for v in &versions[..old] {
            let Some(number) = v.version() else { continue };
            if in_use.contains(number) {
                continue;
            }
            let gone = self
                .aws
                .lambda
                .delete_function()
                .function_name(&self.declared.name)
                .qualifier(number)
                .send()
                .await;
            match gone {
                Ok(_) => {
                    tracing::info!(function = %self.declared.name, version = number, "old version deleted")
                }
                Err(e) if error_code(&e) == Some("ResourceNotFoundException") => {}
                Err(e) => {
                    return Err(aws_error(
                        &self.what(&format!("DeleteFunction (version {number})")),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `arn:aws:lambda:{region}:{account}:function:{name}` for a function or,
/// with its qualified name (`{fn}:live`), an alias.
pub async fn predict_arn(aws: &Aws, declared: &Declared) -> Result<Attrs, ResourceError> {
    let resource = format!("function:{}", declared.name);
    Ok(with_arn(declared, aws.arn("lambda", &resource).await?))
}

/// A published version's number (`None` for `$LATEST`).
fn version_number(v: &FunctionConfiguration) -> Option<u64> {
    v.version().and_then(|n| n.parse().ok())
}

/// The newest published version with the same code and configuration as
/// `latest` (tags are the function's, not a version's).
pub fn serving_version(
    latest: &FunctionConfiguration,
    versions: &[FunctionConfiguration],
) -> Option<String> {
    let none = Default::default();
    let want = normalise(latest, &none);
    versions
        .iter()
        .rev()
        .find(|v| normalise(v, &none) == want)
        .and_then(|v| v.version().map(str::to_owned))
}

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn logging(spec: &FunctionSpec) -> LoggingConfig {
    LoggingConfig::builder()
        .log_group(spec.log_group.as_str())
        .log_format(LogFormat::from(spec.log_format.as_str()))
        .application_log_level(ApplicationLogLevel::from(
            spec.application_log_level.as_str(),
        ))
        .system_log_level(SystemLogLevel::from(spec.system_log_level.as_str()))
        .build()
}

fn environment(spec: &FunctionSpec) -> Environment {
    Environment::builder()
        .set_variables(Some(spec.environment.clone().into_iter().collect()))
        .build()
}

/// Live fields from a function's configuration and tags.
pub fn normalise(
    conf: &aws_sdk_lambda::types::FunctionConfiguration,
    fn_tags: &std::collections::HashMap<String, String>,
) -> Fields {
    let logging_config = conf.logging_config();
    fields_of(&FunctionSpec {
        runtime: conf
            .runtime()
            .map(|r| r.as_str())
            .unwrap_or_default()
            .to_owned(),
        architectures: conf
            .architectures()
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        handler: conf.handler().unwrap_or_default().to_owned(),
        memory_size: conf
            .memory_size()
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or_default(),
        timeout: conf
            .timeout()
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or_default(),
        environment: conf
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        role: Text::literal(conf.role().unwrap_or_default()),
        log_group: Text::literal(
            conf.logging_config()
                .and_then(|l| l.log_group())
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    super::log_groups::of_function(conf.function_name().unwrap_or_default())
                }),
        ),
        // Lambda answers Text when no format was set, and levels only with JSON.
        log_format: logging_config
            .and_then(|l| l.log_format())
            .map_or("Text", |f| f.as_str())
            .to_owned(),
        application_log_level: logging_config
            .and_then(|l| l.application_log_level())
            .map_or("", |l| l.as_str())
            .to_owned(),
        system_log_level: logging_config
            .and_then(|l| l.system_log_level())
            .map_or("", |l| l.as_str())
            .to_owned(),
        code_sha256: short(conf.code_sha256().unwrap_or_default()),
        // Known only with the versions (`read`).
        published: false,
        // Known only from GetFunction's `Concurrency` (`read`).
        reserved_concurrency: None,
        tags: fn_tags
            .iter()
            .filter(|(k, _)| !k.starts_with("aws:"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

#[async_trait]
impl TypedKind for LambdaFunction {
    type Spec = FunctionSpec;
    const KIND: &'static str = "lambda-function";
    const VOLATILE: &'static [&'static str] = &[VERSION];

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        predict_arn(&self.aws, &self.declared).await
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        // ResourceNotFoundException reads as absent.
        let out = self
            .aws
            .lambda
            .get_function()
            .function_name(&self.declared.name)
            .send()
            .await
            .map_err(|e| aws_error(&self.what("GetFunction"), e))?;
        let Some(conf) = out.configuration() else {
            return Ok(None);
        };
        let mut live = Live {
            fields: normalise(conf, out.tags().unwrap_or(&Default::default())),
            ..Live::default()
        };
        live.fields.insert(
            FunctionSpec::RESERVED_CONCURRENCY.name().into(),
            serde_json::json!(
                out.concurrency()
                    .and_then(|c| c.reserved_concurrent_executions())
            ),
        );
        live.attrs.insert(
            ARN.into(),
            conf.function_arn().unwrap_or_default().to_owned(),
        );
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        if let Some(version) = serving_version(conf, &self.versions().await?) {
            live.fields.insert(
                FunctionSpec::PUBLISHED.name().into(),
                serde_json::Value::Bool(true),
            );
            live.attrs.insert(VERSION.into(), version);
        }
        Ok(Some(live))
    }

    async fn create(&self, spec: &FunctionSpec, desired: &Fields) -> Result<Live, ResourceError> {
        let zip = self.zip()?;
        // Transient answers (the role not assumable yet, a conflicting
        // update) are the engine's to wait out; a function that exists is
        // one an interrupted run created: converge on it.
        let exists = retry::call(|| async {
            match self
                .aws
                .lambda
                .create_function()
                .function_name(&self.declared.name)
                .runtime(Runtime::from(spec.runtime.as_str()))
                .set_architectures(Some(
                    spec.architectures
                        .iter()
                        .map(|a| Architecture::from(a.as_str()))
                        .collect(),
                ))
                .handler(&spec.handler)
                .memory_size(int(spec.memory_size))
                .timeout(int(spec.timeout))
                .role(spec.role.as_str())
                .environment(environment(spec))
                .logging_config(logging(spec))
                .code(FunctionCode::builder().zip_file(zip.clone()).build())
                .set_tags(Some(spec.tags.clone().into_iter().collect()))
                .send()
                .await
            {
                Ok(_) => Ok(false),
                Err(e) => exists_already(aws_error(&self.what("CreateFunction"), e)),
            }
        })
        .await?;
        if exists {
            let live = Resource::read(self).await?.ok_or_else(|| {
                ResourceError::new(format!(
                    "function {} exists and vanished",
                    self.declared.name
                ))
            })?;
            self.wait_updated().await?;
            let changed: BTreeSet<String> = crate::engine::diff::diff(desired, &[], &live.fields)
                .iter()
                .map(|f| f.field().to_owned())
                .collect();
            Resource::update(self, &live, desired, &changed).await?;
        }
        self.wait_active().await?;
        if spec.reserved_concurrency.is_some() {
            self.reserve(spec.reserved_concurrency).await?;
        }
        let live = read_back(
            Resource::read(self).await?,
            &format!("function {}", self.declared.name),
        )?;
        if live.attrs.contains_key(VERSION) {
            // Converged on one an interrupted run created and published.
            return Ok(live);
        }
        self.publish().await?;
        read_back(
            Resource::read(self).await?,
            &format!("function {}", self.declared.name),
        )
    }

    async fn update(&self, change: &Update<'_, FunctionSpec>) -> Result<(), ResourceError> {
        if change.any(CONFIGURATION) {
            self.wait_updated().await?;
            self.update_configuration(change.spec).await?;
        }
        if change.any(&[FunctionSpec::CODE_SHA256, FunctionSpec::ARCHITECTURES]) {
            self.wait_updated().await?;
            self.update_code().await?;
        }
        if change.has(FunctionSpec::RESERVED_CONCURRENCY) {
            self.reserve(change.spec.reserved_concurrency).await?;
        }
        // A new version for anything but reserved concurrency (and tags,
        // which the engine syncs): a version has neither of its own.
        if change.other_than(&[FunctionSpec::RESERVED_CONCURRENCY]) {
            self.publish().await?;
        }
        self.wait_updated().await
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        retry::call(|| async {
            self.aws
                .lambda
                .delete_function()
                .function_name(&self.declared.name)
                .send()
                .await
                .done(&self.what("DeleteFunction"))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

#[async_trait]
impl Tagging for LambdaFunction {
    async fn tag(&self, live: &Live, set: Tags) -> Result<(), ResourceError> {
        self.aws
            .lambda
            .tag_resource()
            .resource(live.attrs.get(ARN).map_or("", String::as_str))
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .done(&self.what("TagResource"))
    }
    async fn untag(&self, live: &Live, keys: Vec<String>) -> Result<(), ResourceError> {
        self.aws
            .lambda
            .untag_resource()
            .resource(live.attrs.get(ARN).map_or("", String::as_str))
            .set_tag_keys(Some(keys))
            .send()
            .await
            .done(&self.what("UntagResource"))
    }
}

/// Checks whose remedies this design answers differently, with why.
const FUNCTION_SUPPRESSIONS: &[crate::kind::export::Suppression] = &[
    (
        "CKV_AWS_116",
        "Invoked by an SQS event source mapping (failures go to the queue's dead-letter queue) or synchronously by API Gateway (the caller gets the error): an asynchronous-invocation DLQ would never receive anything.",
    ),
    (
        "CKV_AWS_117",
        "Calls only public AWS endpoints (Bedrock, S3, SQS) and no private resource: a VPC would add NAT cost and cold-start time for no reachable target.",
    ),
    (
        "CKV_AWS_115",
        "Concurrency is bounded where it matters: the SQS trigger's MaximumConcurrency (stack file worker.max_concurrency), the HTTP API's throttling (http.rate_per_second, http.burst), optionally http.reserved_concurrency, and Bedrock's own throttling (answered with 429).",
    ),
    (
        "CKV_AWS_173",
        "The environment holds only the bucket name, the key prefix and the model id and region: no secret to encrypt with a customer key.",
    ),
];

/// A function with reserved concurrency: CKV_AWS_115 holds, the rest as above.
const FUNCTION_SUPPRESSIONS_CAPPED: &[crate::kind::export::Suppression] = &[
    FUNCTION_SUPPRESSIONS[0],
    FUNCTION_SUPPRESSIONS[1],
    FUNCTION_SUPPRESSIONS[3],
];

impl LambdaFunction {
    /// Sets (`Some`) or removes (`None`) the function's reserved concurrency.
    async fn reserve(&self, executions: Option<u32>) -> Result<(), ResourceError> {
        let lambda = &self.aws.lambda;
        let name = &self.declared.name;
        // Right after a code or configuration update Lambda may answer
        // ResourceConflictException ("an update is in progress").
        retry::call(|| async {
            match executions {
                Some(n) => lambda
                    .put_function_concurrency()
                    .function_name(name)
                    .reserved_concurrent_executions(int(n))
                    .send()
                    .await
                    .done(&self.what("PutFunctionConcurrency")),
                None => lambda
                    .delete_function_concurrency()
                    .function_name(name)
                    .send()
                    .await
                    .done(&self.what("DeleteFunctionConcurrency")),
            }
        })
        .await
    }

    fn code_hex(&self) -> Result<String, ResourceError> {
        use base64::Engine as _;
        let sha = self
            .code
            .code_sha256
            .clone()
            .map_err(|e| ResourceError::new(format!("{}: {e}", self.declared.address)))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&sha)
            .map_err(|e| {
                ResourceError::new(format!("{}: CodeSha256 {sha}: {e}", self.declared.address))
            })?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl Export for LambdaFunction {
    fn cloudformation(&self, code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        use serde_json::json;
        let spec: FunctionSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        // Export refuses to run without the zips; retire only needs the type.
        let key = match self.code_hex() {
            Ok(hex) => code.key(self.code.package, &hex),
            Err(e) => format!("(not built: {})", e.message),
        };
        let properties = object([
            ("FunctionName", json!(self.declared.name)),
            ("Runtime", json!(spec.runtime)),
            ("Architectures", json!(spec.architectures)),
            ("Handler", json!(spec.handler)),
            ("MemorySize", json!(spec.memory_size)),
            ("Timeout", json!(spec.timeout)),
            ("Role", json!(spec.role.as_str())),
            ("Code", json!({"S3Bucket": code.bucket, "S3Key": key})),
            ("Environment", json!({"Variables": spec.environment})),
            (
                "LoggingConfig",
                json!({
                    "LogGroup": spec.log_group.as_str(),
                    "LogFormat": spec.log_format,
                    "ApplicationLogLevel": spec.application_log_level,
                    "SystemLogLevel": spec.system_log_level,
                }),
            ),
            (
                "ReservedConcurrentExecutions",
                json!(spec.reserved_concurrency),
            ),
            ("Tags", tag_list(&spec.tags)),
        ]);
        let id = crate::kind::export::logical_id(&self.declared.address);
        let suppressions = if spec.reserved_concurrency.is_some() {
            FUNCTION_SUPPRESSIONS_CAPPED
        } else {
            FUNCTION_SUPPRESSIONS
        };
        Ok(vec![
            Part::main("AWS::Lambda::Function", properties).suppressing(suppressions),
            // The version the alias serves. CloudFormation publishes it when
            // the template is created; a new version needs a new logical id.
            Part {
                suffix: "Version".into(),
                type_name: "AWS::Lambda::Version",
                properties: object([("FunctionName", json!({ "Ref": id }))]),
                suppressions: &[],
            },
        ])
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        match attr {
            VERSION => Some(format!("${{{id}Version.Version}}")),
            _ => crate::kind::export::name_ref_arn_getatt(id, attr),
        }
    }

    fn upload(&self, code: &CodeLocation) -> Option<Upload> {
        let hex = self.code_hex().ok()?;
        Some(Upload {
            local: self.code.path.clone(),
            bucket: code.bucket.clone(),
            key: code.key(self.code.package, &hex),
        })
    }
}

impl Access for LambdaFunction {
    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &["lambda:GetFunction", "lambda:ListVersionsByFunction"],
            vec![own(self, ARN)],
        )]
    }

    /// Creating or reconfiguring a function passes its role: only that role,
    /// and only to Lambda.
    fn write_access(&self) -> Vec<Grant> {
        let role = spec_of::<FunctionSpec>(&self.declared.address, &self.declared.fields)
            .map(|s| s.role)
            .unwrap_or_else(|_| Text::literal("(undeclared role)"));
        vec![
            Grant::on(
                &[
                    "lambda:CreateFunction",
                    "lambda:GetFunctionConfiguration",
                    "lambda:UpdateFunctionConfiguration",
                    "lambda:UpdateFunctionCode",
                    "lambda:TagResource",
                    "lambda:UntagResource",
                    "lambda:PublishVersion",
                    "lambda:ListAliases",
                    "lambda:PutFunctionConcurrency",
                    "lambda:DeleteFunctionConcurrency",
                    "lambda:DeleteFunction",
                ],
                vec![own(self, ARN)],
            ),
            // An old version is deleted by its qualified ARN (Lambda
            // authorises by function, version or alias ARN:
            // lambda/latest/dg/lambda-api-permissions-ref.html).
            Grant::on(&["lambda:DeleteFunction"], vec![own(self, ARN).then(":*")]),
            Grant::on(&["iam:PassRole"], vec![role]).when(
                "StringEquals",
                "iam:PassedToService",
                vec![Text::literal("lambda.amazonaws.com")],
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::types::{EnvironmentResponse, FunctionConfiguration};
    use serde_json::json;

    #[test]
    fn configuration_normalises_to_the_declared_shape() {
        let conf = FunctionConfiguration::builder()
            .runtime(Runtime::Providedal2023)
            .architectures(Architecture::Arm64)
            .handler("bootstrap")
            .memory_size(512)
            .timeout(30)
            .environment(
                EnvironmentResponse::builder()
                    .variables("IMAGE_BUCKET", "b")
                    .build(),
            )
            .role("arn:aws:iam::1:role/r")
            .code_sha256("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
            .build();
        let tags = [
            ("stack".to_owned(), "s".to_owned()),
            ("aws:x".into(), "y".into()),
        ]
        .into();
        let f = normalise(&conf, &tags);
        assert_eq!(f["runtime"], json!("provided.al2023"));
        assert_eq!(f["architectures"], json!(["arm64"]));
        assert_eq!(f["memory_size"], json!(512));
        assert_eq!(f["environment"], json!({"IMAGE_BUCKET": "b"}));
        assert_eq!(f["code_sha256"], json!("47DEQpj8HBSa"));
        assert_eq!(f["tags"], json!({"stack": "s"}));
        // No LoggingConfig answered: Lambda's defaults (Text, no levels).
        assert_eq!(f["log_format"], json!("Text"));
        assert_eq!(f["application_log_level"], json!(""));
        let conf = FunctionConfiguration::builder()
            .function_name("s-worker")
            .logging_config(
                aws_sdk_lambda::types::LoggingConfig::builder()
                    .log_format(LogFormat::Json)
                    .application_log_level(ApplicationLogLevel::Info)
                    .system_log_level(SystemLogLevel::Info)
                    .log_group("/aws/lambda/s-worker")
                    .build(),
            )
            .build();
        let f = normalise(&conf, &tags);
        assert_eq!(f["log_format"], json!("JSON"));
        assert_eq!(f["application_log_level"], json!("INFO"));
        assert_eq!(f["system_log_level"], json!("INFO"));
        assert_eq!(f["log_group"], json!("/aws/lambda/s-worker"));
    }
}
