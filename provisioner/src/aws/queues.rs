//! SQS queues: the prompts queue and its dead-letter queue.
//!
//! SQS returns every attribute as a string and re-serialises the redrive
//! policy; `read` turns them back into the numbers, booleans and JSON values
//! that `desired` declares, so a fresh queue never shows a diff.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ARN, Aws, Done, NAME, URL, aws_error, read_back, tags, with_arn};
use crate::engine::retry;
use crate::engine::typed::converge_existing;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Fields, Live, Resource, ResourceError, Tagging, Tags, Text,
    TypedKind, Update,
};
use crate::kind::{Access, Grant, own};

/// A queue as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSpec {
    /// `None`: SQS's default (the dead-letter queue is never read by a function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_seconds: Option<u32>,
    pub message_retention_seconds: u32,
    pub sqs_managed_sse: bool,
    #[serde(
        rename = "redrive_policy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub redrive: Option<Redrive>,
    pub tags: Tags,
}

/// Where messages go after `max_receive_count` failed receives (SQS's JSON shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redrive {
    pub dead_letter_target_arn: Text,
    pub max_receive_count: u32,
}

// Attributes a queue exports.
impl crate::kind::HasArn for SqsQueue {}
/// Chosen by SQS: known only once the queue exists.
impl crate::kind::HasUrl for SqsQueue {}
impl crate::kind::HasName for SqsQueue {}

#[derive(Clone, Copy)]
enum Encoding {
    Number,
    Bool,
    Json,
}

/// Field name ↔ SQS attribute, and how SQS encodes it.
const ATTRIBUTES: &[(&str, QueueAttributeName, Encoding)] = &[
    (
        "visibility_timeout_seconds",
        QueueAttributeName::VisibilityTimeout,
        Encoding::Number,
    ),
    (
        "message_retention_seconds",
        QueueAttributeName::MessageRetentionPeriod,
        Encoding::Number,
    ),
    (
        "sqs_managed_sse",
        QueueAttributeName::SqsManagedSseEnabled,
        Encoding::Bool,
    ),
    (
        "redrive_policy",
        QueueAttributeName::RedrivePolicy,
        Encoding::Json,
    ),
];

pub struct SqsQueue {
    declared: Declared,
    aws: Arc<Aws>,
}

impl SqsQueue {
    pub fn new(address: &str, name: String, spec: &QueueSpec, aws: Arc<Aws>) -> Self {
        let declared = Declared::of(address, name.clone(), spec).knowing(NAME, name);
        SqsQueue { declared, aws }
    }
}

/// SQS's string form of a field value.
fn encode(value: &Value, enc: Encoding) -> String {
    match (enc, value) {
        (Encoding::Json, v) => v.to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, v) => v.to_string(),
    }
}

/// The canonical value of an attribute SQS returned as a string.
fn decode(raw: &str, enc: Encoding) -> Value {
    match enc {
        Encoding::Number => raw
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
        Encoding::Bool => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.to_owned()),
        },
        Encoding::Json => {
            let mut v: Value =
                serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
            // Older APIs return maxReceiveCount as a string.
            if let Some(Value::String(n)) = v.get("maxReceiveCount").cloned()
                && let Ok(n) = n.parse::<u64>()
            {
                v["maxReceiveCount"] = Value::from(n);
            }
            v
        }
    }
}

fn attributes_of(
    fields: &Fields,
    only: Option<&BTreeSet<String>>,
) -> HashMap<QueueAttributeName, String> {
    ATTRIBUTES
        .iter()
        .filter(|(f, _, _)| only.is_none_or(|o| o.contains(*f)))
        .filter_map(|(f, name, enc)| fields.get(*f).map(|v| (name.clone(), encode(v, *enc))))
        .collect()
}

/// Live fields from SQS's attribute map and tags.
pub fn normalise(
    attrs: &HashMap<QueueAttributeName, String>,
    queue_tags: &HashMap<String, String>,
) -> Fields {
    let mut fields = Fields::new();
    for (field, name, enc) in ATTRIBUTES {
        if let Some(raw) = attrs.get(name) {
            fields.insert((*field).to_owned(), decode(raw, *enc));
        }
    }
    fields.insert(
        tags::FIELD.to_owned(),
        tags::to_value(queue_tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    fields
}

#[async_trait]
impl TypedKind for SqsQueue {
    type Spec = QueueSpec;
    const KIND: &'static str = "sqs-queue";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        Ok(with_arn(
            &self.declared,
            self.aws.arn("sqs", &self.declared.name).await?,
        ))
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let name = &self.declared.name;
        let sqs = &self.aws.sqs;
        // QueueDoesNotExist (here, or when deleted between the calls) reads as absent.
        let url = sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| aws_error(&format!("sqs:GetQueueUrl {name}"), e))?
            .queue_url
            .unwrap_or_default();
        let (attrs, queue_tags) = tokio::join!(
            sqs.get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::All)
                .send(),
            sqs.list_queue_tags().queue_url(&url).send(),
        );
        let attrs = attrs
            .map_err(|e| aws_error(&format!("sqs:GetQueueAttributes {name}"), e))?
            .attributes
            .unwrap_or_default();
        let queue_tags = queue_tags
            .map_err(|e| aws_error(&format!("sqs:ListQueueTags {name}"), e))?
            .tags
            .unwrap_or_default();
        let mut live = Live {
            fields: normalise(&attrs, &queue_tags),
            ..Live::default()
        };
        live.attrs.insert(URL.into(), url);
        live.attrs.insert(NAME.into(), name.clone());
        if let Some(arn) = attrs.get(&QueueAttributeName::QueueArn) {
            live.attrs.insert(ARN.into(), arn.clone());
        }
        Ok(Some(live))
    }

    async fn create(&self, _spec: &QueueSpec, desired: &Fields) -> Result<Live, ResourceError> {
        // Tags are set in the same call, so an interrupted apply never leaves an
        // untagged (and so "not owned") queue behind.
        // A name deleted less than 60 s ago answers QueueDeletedRecently
        // (SQS API reference, CreateQueue): the engine's policy waits it out.
        let created = retry::call(|| async {
            match self
                .aws
                .sqs
                .create_queue()
                .queue_name(&self.declared.name)
                .set_attributes(Some(attributes_of(desired, None)))
                .set_tags(Some(tags::of(desired).into_iter().collect()))
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_queue_name_exists()) =>
                {
                    Ok(false)
                }
                Err(e) => Err(aws_error(
                    &format!("sqs:CreateQueue {}", self.declared.name),
                    e,
                )),
            }
        })
        .await?;
        // Exists with other attributes (created concurrently): converge by updating.
        if !created {
            converge_existing(self, desired).await?;
        }
        read_back(
            Resource::read(self).await?,
            &format!("queue {}", self.declared.name),
        )
    }

    async fn update(&self, change: &Update<'_, QueueSpec>) -> Result<(), ResourceError> {
        let attrs = attributes_of(change.desired, Some(change.names()));
        if attrs.is_empty() {
            return Ok(());
        }
        let url = url_of(change.live);
        retry::call(|| async {
            self.aws
                .sqs
                .set_queue_attributes()
                .queue_url(url)
                .set_attributes(Some(attrs.clone()))
                .send()
                .await
                .done(&format!("sqs:SetQueueAttributes {}", self.declared.name))
        })
        .await
    }

    async fn delete(&self, live: &Live) -> Result<DeleteOutcome, ResourceError> {
        self.aws
            .sqs
            .delete_queue()
            .queue_url(url_of(live))
            .send()
            .await
            .done(&format!("sqs:DeleteQueue {}", self.declared.name))?;
        Ok(DeleteOutcome::Deleted)
    }
}

fn url_of(live: &Live) -> &str {
    live.attrs.get(URL).map_or("", String::as_str)
}

#[async_trait]
impl Tagging for SqsQueue {
    async fn tag(&self, live: &Live, set: Tags) -> Result<(), ResourceError> {
        self.aws
            .sqs
            .tag_queue()
            .queue_url(url_of(live))
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .done(&format!("sqs:TagQueue {}", self.declared.name))
    }
    async fn untag(&self, live: &Live, keys: Vec<String>) -> Result<(), ResourceError> {
        self.aws
            .sqs
            .untag_queue()
            .queue_url(url_of(live))
            .set_tag_keys(Some(keys))
            .send()
            .await
            .done(&format!("sqs:UntagQueue {}", self.declared.name))
    }
}

/// Queues are encrypted with SQS-managed keys (`SqsManagedSseEnabled`), which
/// checkov's KMS check does not recognise.
const QUEUE_SUPPRESSIONS: &[crate::kind::export::Suppression] = &[(
    "CKV_AWS_27",
    "Encrypted at rest with SQS-managed SSE (SqsManagedSseEnabled: true); a customer KMS key would add cost and a key policy without protecting prompts any better.",
)];

impl crate::kind::export::Export for SqsQueue {
    fn cloudformation(
        &self,
        _code: &crate::kind::export::CodeLocation,
    ) -> Result<Vec<crate::kind::export::Part>, ResourceError> {
        use crate::kind::export::{Part, object, tag_list};
        use serde_json::json;
        let spec: QueueSpec =
            crate::engine::spec_of(&self.declared.address, &self.declared.fields)?;
        let properties = object([
            ("QueueName", json!(self.declared.name)),
            ("VisibilityTimeout", json!(spec.visibility_timeout_seconds)),
            (
                "MessageRetentionPeriod",
                json!(spec.message_retention_seconds),
            ),
            ("SqsManagedSseEnabled", json!(spec.sqs_managed_sse)),
            (
                "RedrivePolicy",
                spec.redrive.as_ref().map_or(Value::Null, |r| {
                    json!({
                        "deadLetterTargetArn": r.dead_letter_target_arn.as_str(),
                        "maxReceiveCount": r.max_receive_count,
                    })
                }),
            ),
            ("Tags", tag_list(&spec.tags)),
        ]);
        Ok(vec![
            Part::main("AWS::SQS::Queue", properties).suppressing(QUEUE_SUPPRESSIONS),
        ])
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        match attr {
            ARN => Some(format!("${{{id}.Arn}}")),
            URL => Some(format!("${{{id}}}")),
            NAME => Some(format!("${{{id}.QueueName}}")),
            _ => None,
        }
    }
}

impl Access for SqsQueue {
    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &[
                "sqs:GetQueueUrl",
                "sqs:GetQueueAttributes",
                "sqs:ListQueueTags",
            ],
            vec![own(self, ARN)],
        )]
    }

    fn write_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &[
                "sqs:CreateQueue",
                "sqs:SetQueueAttributes",
                "sqs:TagQueue",
                "sqs:UntagQueue",
                "sqs:DeleteQueue",
            ],
            vec![own(self, ARN)],
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sqs_strings_become_declared_types() {
        let attrs = HashMap::from([
            (QueueAttributeName::VisibilityTimeout, "180".to_owned()),
            (QueueAttributeName::MessageRetentionPeriod, "345600".to_owned()),
            (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
            // As moto and AWS return it: re-serialised, with spaces.
            (
                QueueAttributeName::RedrivePolicy,
                "{\"deadLetterTargetArn\": \"arn:aws:sqs:eu-west-1:1:q-dlq\", \"maxReceiveCount\": \"3\"}".to_owned(),
            ),
            (QueueAttributeName::QueueArn, "arn:aws:sqs:eu-west-1:1:q".to_owned()),
        ]);
        let tags = HashMap::from([
            ("stack".to_owned(), "s".to_owned()),
            ("aws:x".to_owned(), "y".to_owned()),
        ]);
        let f = normalise(&attrs, &tags);
        assert_eq!(f["visibility_timeout_seconds"], json!(180));
        assert_eq!(f["message_retention_seconds"], json!(345600));
        assert_eq!(f["sqs_managed_sse"], json!(true));
        assert_eq!(
            f["redrive_policy"],
            json!({"deadLetterTargetArn": "arn:aws:sqs:eu-west-1:1:q-dlq", "maxReceiveCount": 3})
        );
        assert_eq!(f["tags"], json!({"stack": "s"}));
        assert!(!f.contains_key("QueueArn"));
    }

    #[test]
    fn declared_values_encode_as_sqs_strings() {
        let fields: Fields = [
            ("visibility_timeout_seconds".to_owned(), json!(180)),
            ("sqs_managed_sse".to_owned(), json!(true)),
            ("redrive_policy".to_owned(), json!({"maxReceiveCount": 3})),
            ("tags".to_owned(), json!({"a": "b"})),
        ]
        .into();
        let a = attributes_of(&fields, None);
        assert_eq!(a[&QueueAttributeName::VisibilityTimeout], "180");
        assert_eq!(a[&QueueAttributeName::SqsManagedSseEnabled], "true");
        assert_eq!(
            a[&QueueAttributeName::RedrivePolicy],
            "{\"maxReceiveCount\":3}"
        );
        assert_eq!(a.len(), 3);
        let only: BTreeSet<String> = ["sqs_managed_sse".to_owned()].into();
        assert_eq!(attributes_of(&fields, Some(&only)).len(), 1);
    }
}
