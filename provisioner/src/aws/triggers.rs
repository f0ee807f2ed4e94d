//! The SQS trigger: an event source mapping from the prompts queue to the
//! worker function's `live` alias. It belongs to the function it hangs on (no
//! tags of its own); it is found by listing the alias's mappings for the
//! queue; a second one (an interrupted create elsewhere), or one on the
//! unqualified function (deployed before aliases), is planned as a deletion.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::types::{EventSourceMappingConfiguration, FunctionResponseType, ScalingConfig};
use serde::{Deserialize, Serialize};

use super::aliases::LIVE;
use super::policies::Statement;
use super::{Aws, Done, ID, aws_error, create_once, deleted, error_code, read_back};
use crate::engine::retry;
use crate::engine::{
    Declared, DeleteOutcome, Field, Fields, Live, Ref, Resource, ResourceError, Text, TypedKind,
    Update, fields_of, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object};
use crate::kind::{Access, Grant, account_arn};
use aws_sdk_lambda::config::retry::RetryConfig;

/// A queue trigger as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerSpec {
    pub event_source_arn: Text,
    /// The function's alias-qualified name (`{name}:live`, as Lambda lists
    /// mappings: by name, not ARN).
    pub function_name: Text,
    pub batch_size: u32,
    pub function_response_types: Vec<String>,
    /// `ScalingConfig.MaximumConcurrency`.
    pub maximum_concurrency: u32,
    pub enabled: bool,
}
crate::engine::fields!(TriggerSpec {
    EVENT_SOURCE_ARN: event_source_arn,
    FUNCTION_NAME: function_name,
});

/// What a function that a queue trigger feeds must be allowed to do on the
/// queue (Lambda polls with the function's role).
pub fn consumer_statement(queue_arn: Ref) -> Statement {
    Statement::allow(
        "ConsumePrompts",
        &[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
        ],
        vec![queue_arn.into()],
    )
}

/// The partial-batch-failure response type the worker uses.
pub const REPORT_BATCH_ITEM_FAILURES: &str = "ReportBatchItemFailures";

pub struct QueueTrigger {
    declared: Declared,
    /// The unqualified name.
    function_name: String,
    queue_name: String,
    aws: Arc<Aws>,
}

// Attributes a trigger exports.
/// The mapping's UUID, chosen by Lambda.
impl crate::kind::HasId for QueueTrigger {}

impl QueueTrigger {
    /// A trigger from the queue named `queue_name` to the function named
    /// `function_name` (the spec references both).
    pub fn new(
        address: &str,
        queue_name: &str,
        function_name: &str,
        spec: &TriggerSpec,
        aws: Arc<Aws>,
    ) -> Self {
        let name = format!("{queue_name} -> {function_name}:{LIVE}");
        QueueTrigger {
            declared: Declared::of(address, name, spec),
            function_name: function_name.to_owned(),
            queue_name: queue_name.to_owned(),
            aws,
        }
    }

    fn what(&self, call: &str) -> String {
        format!("lambda:{call} {}", self.declared.name)
    }

    fn qualified(&self) -> String {
        format!("{}:{LIVE}", self.function_name)
    }

    /// The mappings Lambda lists for `function` (a name, maybe qualified)
    /// from this queue.
    async fn listed(
        &self,
        function: &str,
    ) -> Result<Vec<EventSourceMappingConfiguration>, ResourceError> {
        let mut found = Vec::new();
        let mut pages = self
            .aws
            .lambda
            .list_event_source_mappings()
            .function_name(function)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if error_code(&e) == Some("ResourceNotFoundException") => break,
                Err(e) => return Err(aws_error(&self.what("ListEventSourceMappings"), e)),
            };
            found.extend(
                page.event_source_mappings
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| {
                        m.event_source_arn()
                            .is_some_and(|a| a.ends_with(&format!(":{}", self.queue_name)))
                            // Being deleted: gone as far as a plan goes (a
                            // new one may be created beside it).
                            && m.state() != Some("Deleting")
                    }),
            );
        }
        Ok(found)
    }
}

/// Live fields of a mapping listed for `function_name` (alias-qualified),
/// in the declared shape. The listing says which function it feeds: moto
/// reports an alias's mapping with the version ARN the alias points at.
pub fn normalise(m: &EventSourceMappingConfiguration, function_name: &str) -> Fields {
    fields_of(&TriggerSpec {
        event_source_arn: Text::literal(m.event_source_arn().unwrap_or_default()),
        function_name: Text::literal(function_name),
        batch_size: m
            .batch_size()
            .and_then(|b| u32::try_from(b).ok())
            .unwrap_or_default(),
        function_response_types: m
            .function_response_types()
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        maximum_concurrency: m
            .scaling_config()
            .and_then(ScalingConfig::maximum_concurrency)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or_default(),
        enabled: matches!(
            m.state(),
            Some("Enabled" | "Enabling" | "Creating" | "Updating")
        ),
    })
}

fn scaling(spec: &TriggerSpec) -> ScalingConfig {
    ScalingConfig::builder()
        .maximum_concurrency(i32::try_from(spec.maximum_concurrency).unwrap_or(i32::MAX))
        .build()
}

fn response_types(spec: &TriggerSpec) -> Vec<FunctionResponseType> {
    spec.function_response_types
        .iter()
        .map(|t| FunctionResponseType::from(t.as_str()))
        .collect()
}

#[async_trait]
impl TypedKind for QueueTrigger {
    type Spec = TriggerSpec;
    const KIND: &'static str = "lambda-sqs-trigger";
    const REPLACE_ON: &'static [Field<TriggerSpec>] =
        &[TriggerSpec::EVENT_SOURCE_ARN, TriggerSpec::FUNCTION_NAME];

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn taggable(&self) -> bool {
        false
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let qualified = self.qualified();
        // The alias's mappings, and any on the unqualified function (deployed
        // before aliases), read together.
        let (mut found, unqualified) =
            tokio::try_join!(self.listed(&qualified), self.listed(&self.function_name))?;
        // AWS does not make mappings unique per queue and function: two runs
        // racing (before the stack lock) or a lost CreateEventSourceMapping
        // answer can leave two. Kept: the earliest (LastModified, then UUID);
        // the others are planned as deletions.
        found.sort_by_key(|m| {
            (
                m.last_modified().map(|d| (d.secs(), d.subsec_nanos())),
                m.uuid().map(str::to_owned),
            )
        });
        let mut found = found.into_iter();
        let Some(kept) = found.next() else {
            return Ok(None);
        };
        let mut live = Live {
            fields: normalise(&kept, &qualified),
            ..Live::default()
        };
        live.attrs
            .insert(ID.into(), kept.uuid().unwrap_or_default().to_owned());
        live.duplicates = found
            .chain(unqualified)
            .map(|m| {
                let uuid = m.uuid().unwrap_or_default().to_owned();
                let mut dup = Live::default();
                dup.attrs.insert(ID.into(), uuid.clone());
                (uuid, dup)
            })
            .collect();
        Ok(Some(live))
    }

    async fn create(&self, spec: &TriggerSpec, _: &Fields) -> Result<Live, ResourceError> {
        // Lambda makes a second mapping for a repeated call: at most once.
        // Right after the worker's policy changed, Lambda may not see it yet
        // ("the provided execution role does not have permissions",
        // `Propagating`): the engine's policy waits it out, as Terraform
        // does (terraform-provider-aws #19831).
        let what = self.what("CreateEventSourceMapping");
        create_once(
            &what,
            || {
                self.aws
                    .lambda
                    .create_event_source_mapping()
                    .event_source_arn(spec.event_source_arn.as_str())
                    .function_name(spec.function_name.as_str())
                    .batch_size(i32::try_from(spec.batch_size).unwrap_or(i32::MAX))
                    .set_function_response_types(Some(response_types(spec)))
                    .scaling_config(scaling(spec))
                    .enabled(spec.enabled)
                    .customize()
                    .config_override(
                        aws_sdk_lambda::config::Builder::default()
                            .retry_config(RetryConfig::disabled()),
                    )
                    .send()
            },
            || async { Ok(Resource::read(self).await?.map(|_| ())) },
        )
        .await?;
        let live = read_back(
            Resource::read(self).await?,
            &format!("trigger {}", self.declared.name),
        )?;
        self.settled(&live).await?;
        Ok(live)
    }

    async fn update(&self, change: &Update<'_, TriggerSpec>) -> Result<(), ResourceError> {
        let (spec, live) = (change.spec, change.live);
        let uuid = live.attrs.get(ID).cloned().unwrap_or_default();
        // A mapping still `Creating`/`Updating` answers ResourceInUseException.
        retry::call(|| async {
            self.aws
                .lambda
                .update_event_source_mapping()
                .uuid(&uuid)
                .batch_size(i32::try_from(spec.batch_size).unwrap_or(i32::MAX))
                .set_function_response_types(Some(response_types(spec)))
                .scaling_config(scaling(spec))
                .enabled(spec.enabled)
                .send()
                .await
                .done(&self.what("UpdateEventSourceMapping"))
        })
        .await?;
        self.settled(live).await
    }

    async fn delete(&self, live: &Live) -> Result<DeleteOutcome, ResourceError> {
        let uuid = live.attrs.get(ID).cloned().unwrap_or_default();
        let outcome = retry::call(|| async {
            deleted(
                self.aws
                    .lambda
                    .delete_event_source_mapping()
                    .uuid(&uuid)
                    .send()
                    .await,
                "ResourceNotFoundException",
                &self.what("DeleteEventSourceMapping"),
            )
        })
        .await?;
        // `Deleting` for a while: done once Lambda no longer knows it, so
        // what it fed (the function, the queue) is deleted after it.
        retry::wait_until(
            &format!("trigger {} is deleted", self.declared.name),
            SETTLED_WITHIN,
            || async { Ok(self.state_of(&uuid).await?.is_none().then_some(())) },
        )
        .await?;
        Ok(outcome)
    }
}

impl QueueTrigger {
    /// Mapping `uuid`'s `State`, `None` once Lambda no longer knows it.
    async fn state_of(&self, uuid: &str) -> Result<Option<String>, ResourceError> {
        match self
            .aws
            .lambda
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
        {
            Ok(m) => Ok(Some(m.state().unwrap_or_default().to_owned())),
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(aws_error(&self.what("GetEventSourceMapping"), e)),
        }
    }

    /// Until the mapping has left its transitional states (`Creating`,
    /// `Updating`, `Enabling`, `Disabling`: Lambda API reference,
    /// EventSourceMappingConfiguration `State`), so that nothing after
    /// this apply meets `ResourceInUseException`.
    async fn settled(&self, live: &Live) -> Result<(), ResourceError> {
        let uuid = live.attrs.get(ID).cloned().unwrap_or_default();
        retry::wait_until(
            &format!("trigger {} is Enabled", self.declared.name),
            SETTLED_WITHIN,
            || async {
                let state = self.state_of(&uuid).await?;
                Ok(match state.as_deref() {
                    Some("Creating" | "Updating" | "Enabling" | "Disabling") => None,
                    _ => Some(()),
                })
            },
        )
        .await
    }
}

/// How long a mapping may stay in a transitional state.
const SETTLED_WITHIN: std::time::Duration = std::time::Duration::from_secs(300);

impl Export for QueueTrigger {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        use serde_json::json;
        let spec: TriggerSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        let properties = object([
            ("EventSourceArn", json!(spec.event_source_arn.as_str())),
            ("FunctionName", json!(spec.function_name.as_str())),
            ("BatchSize", json!(spec.batch_size)),
            ("FunctionResponseTypes", json!(spec.function_response_types)),
            (
                "ScalingConfig",
                json!({"MaximumConcurrency": spec.maximum_concurrency}),
            ),
            ("Enabled", json!(spec.enabled)),
        ]);
        Ok(vec![Part::main(
            "AWS::Lambda::EventSourceMapping",
            properties,
        )])
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        (attr == ID).then(|| format!("${{{id}}}"))
    }
}

/// Lambda authorises listing mappings only on `*`; the changes are scoped to
/// mappings of this stack's worker (`lambda:FunctionArn`), whose ids are not
/// known before they exist.
impl Access for QueueTrigger {
    fn read_access(&self) -> Vec<Grant> {
        // Authorised on no resource type: `*` (held to the Region).
        vec![Grant::unscoped(&["lambda:ListEventSourceMappings"])]
    }

    fn write_access(&self) -> Vec<Grant> {
        let function = spec_of::<TriggerSpec>(&self.declared.address, &self.declared.fields)
            .map(|s| s.function_name)
            .unwrap_or_else(|_| Text::literal("(undeclared function)"));
        let function_arn = account_arn("lambda", "function:").then(function);
        // A mapping on the unqualified function (deployed before aliases) is deleted.
        let unqualified = account_arn("lambda", "function:").then(self.function_name.as_str());
        vec![
            // Creating names no resource AWS authorises on (`*`); the mapping's
            // function is the request's `lambda:FunctionArn`.
            // ArnLike: a preview's pattern (`…:function:x-pr-*-worker:live`)
            // matches only so (IAM user guide, ARN condition operators).
            Grant::unscoped(&["lambda:CreateEventSourceMapping"]).when(
                "ArnLike",
                "lambda:FunctionArn",
                vec![function_arn.clone()],
            ),
            // Waiting for a mapping to leave Creating/Updating (conditioned
            // on tags only: Service Authorization Reference).
            Grant::on(
                &["lambda:GetEventSourceMapping"],
                vec![account_arn("lambda", "event-source-mapping:*")],
            ),
            Grant::on(
                &[
                    "lambda:UpdateEventSourceMapping",
                    "lambda:DeleteEventSourceMapping",
                ],
                vec![account_arn("lambda", "event-source-mapping:*")],
            )
            .when(
                "ArnLike",
                "lambda:FunctionArn",
                vec![function_arn, unqualified],
            ),
        ]
    }
}
