//! The SNS topic that alarms publish to.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use serde::{Deserialize, Serialize};

use super::{ARN, Aws, Done, NAME, aws_error, tags, with_arn};
use crate::engine::retry;
use crate::engine::spec_of;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Fields, Live, ResourceError, Tagging, Tags, TypedKind,
};
use crate::kind::export::{CodeLocation, Export, Part, object, tag_list};
use crate::kind::{Access, Grant, own};

/// A topic as declared: only its tags (the name is the stack's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicSpec {
    pub tags: Tags,
}

pub struct SnsTopic {
    declared: Declared,
    aws: Arc<Aws>,
}

// Attributes a topic exports.
impl crate::kind::HasArn for SnsTopic {}
impl crate::kind::HasName for SnsTopic {}

impl SnsTopic {
    pub fn new(address: &str, name: String, spec: &TopicSpec, aws: Arc<Aws>) -> Self {
        let declared = Declared::of(address, name.clone(), spec).knowing(NAME, name);
        SnsTopic { declared, aws }
    }
}

fn sns_tags(tags: Tags) -> Result<Vec<Tag>, ResourceError> {
    tags.into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ResourceError::new(format!("invalid tag: {e}")))
        })
        .collect()
}

#[async_trait]
impl TypedKind for SnsTopic {
    type Spec = TopicSpec;
    const KIND: &'static str = "sns-topic";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        Ok(with_arn(
            &self.declared,
            self.aws.arn("sns", &self.declared.name).await?,
        ))
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        // SNS has no lookup by name; the ARN is deterministic. NotFound (the
        // topic, or its tags when deleted between the calls) reads as absent.
        let name = &self.declared.name;
        let arn = self.aws.arn("sns", name).await?;
        let (attrs, topic_tags) = tokio::join!(
            self.aws.sns.get_topic_attributes().topic_arn(&arn).send(),
            self.aws
                .sns
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send(),
        );
        attrs.done(&format!("sns:GetTopicAttributes {name}"))?;
        let topic_tags = topic_tags
            .map_err(|e| aws_error(&format!("sns:ListTagsForResource {name}"), e))?
            .tags
            .unwrap_or_default();
        let mut live = Live::default();
        live.fields.insert(
            tags::FIELD.into(),
            tags::to_value(topic_tags.iter().map(|t| (t.key(), t.value()))),
        );
        live.attrs.insert(ARN.into(), arn);
        live.attrs.insert(NAME.into(), name.clone());
        Ok(Some(live))
    }

    async fn create(&self, spec: &TopicSpec, desired: &Fields) -> Result<Live, ResourceError> {
        // CreateTopic is idempotent for the same name and tags; tags come with it.
        let out = retry::call(|| async {
            self.aws
                .sns
                .create_topic()
                .name(&self.declared.name)
                .set_tags(Some(sns_tags(spec.tags.clone())?))
                .send()
                .await
                .map_err(|e| aws_error(&format!("sns:CreateTopic {}", self.declared.name), e))
        })
        .await?;
        let mut live = Live {
            fields: desired.clone(),
            ..Live::default()
        };
        live.attrs
            .insert(ARN.into(), out.topic_arn.unwrap_or_default());
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        Ok(live)
    }

    async fn delete(&self, live: &Live) -> Result<DeleteOutcome, ResourceError> {
        retry::call(|| async {
            self.aws
                .sns
                .delete_topic()
                .topic_arn(arn_of(live))
                .send()
                .await
                .done(&format!("sns:DeleteTopic {}", self.declared.name))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

fn arn_of(live: &Live) -> &str {
    live.attrs.get(ARN).map_or("", String::as_str)
}

#[async_trait]
impl Tagging for SnsTopic {
    async fn tag(&self, live: &Live, set: Tags) -> Result<(), ResourceError> {
        self.aws
            .sns
            .tag_resource()
            .resource_arn(arn_of(live))
            .set_tags(Some(sns_tags(set)?))
            .send()
            .await
            .done(&format!("sns:TagResource {}", self.declared.name))
    }
    async fn untag(&self, live: &Live, keys: Vec<String>) -> Result<(), ResourceError> {
        self.aws
            .sns
            .untag_resource()
            .resource_arn(arn_of(live))
            .set_tag_keys(Some(keys))
            .send()
            .await
            .done(&format!("sns:UntagResource {}", self.declared.name))
    }
}

/// The topic carries alarm notifications (queue name, age): nothing secret.
const TOPIC_SUPPRESSIONS: &[crate::kind::export::Suppression] = &[(
    "CKV_AWS_26",
    "Carries only CloudWatch alarm notifications (alarm and queue names, ages) to an e-mail address; encrypting them with KMS would require a key policy for CloudWatch without protecting anything secret.",
)];

impl Export for SnsTopic {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        let spec: TopicSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        let properties = object([
            ("TopicName", serde_json::json!(self.declared.name)),
            ("Tags", tag_list(&spec.tags)),
        ]);
        Ok(vec![
            Part::main("AWS::SNS::Topic", properties).suppressing(TOPIC_SUPPRESSIONS),
        ])
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        match attr {
            ARN => Some(format!("${{{id}}}")),
            NAME => Some(format!("${{{id}.TopicName}}")),
            _ => None,
        }
    }
}

impl Access for SnsTopic {
    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &["sns:GetTopicAttributes", "sns:ListTagsForResource"],
            vec![own(self, ARN)],
        )]
    }

    fn write_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &[
                "sns:CreateTopic",
                "sns:TagResource",
                "sns:UntagResource",
                "sns:DeleteTopic",
            ],
            vec![own(self, ARN)],
        )]
    }
}
