//! CloudWatch Logs groups for the functions, created before them so Lambda
//! never creates an unmanaged group that keeps logs forever.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::policies::Statement;
use super::{ARN, Aws, Done, NAME, aws_error, error_code, exists_already, read_back, with_arn};
use crate::engine::retry;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Fields, Handle, Live, Resource, ResourceError, Tagging, Tags,
    Text, TypedKind, Update, fields_of, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object, tag_list};
use crate::kind::{Access, Grant, own};

/// A log group as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogGroupSpec {
    pub retention_in_days: u32,
    pub tags: Tags,
}
crate::engine::fields!(LogGroupSpec {
    RETENTION: retention_in_days
});

/// The log group Lambda writes a function's logs to (Lambda developer guide,
/// "Sending Lambda function logs to CloudWatch Logs": `/aws/lambda/<function name>`).
pub fn of_function(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

pub struct LogGroup {
    declared: Declared,
    aws: Arc<Aws>,
}

// Attributes a log group exports.
/// `arn:aws:logs:{region}:{account}:log-group:{name}` (without the `:*`
/// that DescribeLogGroups appends; policies add `:*` for its streams).
impl crate::kind::HasArn for LogGroup {}
impl crate::kind::HasName for LogGroup {}

/// What a function may do in its own log group: create streams and write events.
pub fn writer_statement(group: &Handle<LogGroup>) -> Statement {
    Statement::allow(
        "WriteOwnLogs",
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        vec![Text::from(group.arn()).then(":*")],
    )
}

impl LogGroup {
    pub fn new(address: &str, name: String, spec: &LogGroupSpec, aws: Arc<Aws>) -> Self {
        let declared = Declared::of(address, name.clone(), spec).knowing(NAME, name);
        LogGroup { declared, aws }
    }

    async fn arn(&self) -> Result<String, ResourceError> {
        let resource = format!("log-group:{}", self.declared.name);
        self.aws.arn("logs", &resource).await
    }

    async fn put_retention(&self, days: u32) -> Result<(), ResourceError> {
        retry::call(|| async {
            self.aws
                .logs
                .put_retention_policy()
                .log_group_name(&self.declared.name)
                .retention_in_days(i32::try_from(days).unwrap_or(i32::MAX))
                .send()
                .await
                .done(&format!("logs:PutRetentionPolicy {}", self.declared.name))
        })
        .await
    }
}

#[async_trait]
impl TypedKind for LogGroup {
    type Spec = LogGroupSpec;
    const KIND: &'static str = "log-group";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        Ok(with_arn(&self.declared, self.arn().await?))
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let arn = self.arn().await?;
        let (described, group_tags) = tokio::join!(
            self.aws
                .logs
                .describe_log_groups()
                .log_group_name_prefix(&self.declared.name)
                .send(),
            self.aws
                .logs
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send(),
        );
        let described = described
            .map_err(|e| aws_error(&format!("logs:DescribeLogGroups {}", self.declared.name), e))?;
        let Some(group) = described
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(self.declared.name.as_str()))
        else {
            return Ok(None);
        };
        let group_tags = match group_tags {
            Ok(t) => t.tags.unwrap_or_default(),
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Default::default(),
            Err(e) => {
                return Err(aws_error(
                    &format!("logs:ListTagsForResource {}", self.declared.name),
                    e,
                ));
            }
        };
        let spec = LogGroupSpec {
            // Absent: never expire. 0 never equals an allowed declared value.
            retention_in_days: group
                .retention_in_days()
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(0),
            tags: group_tags
                .into_iter()
                .filter(|(k, _)| !k.starts_with("aws:"))
                .collect(),
        };
        let mut live = Live {
            fields: fields_of(&spec),
            ..Live::default()
        };
        live.attrs.insert(ARN.into(), arn);
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        Ok(Some(live))
    }

    async fn create(&self, spec: &LogGroupSpec, _: &Fields) -> Result<Live, ResourceError> {
        let created = retry::call(|| async {
            self.aws
                .logs
                .create_log_group()
                .log_group_name(&self.declared.name)
                .set_tags(Some(spec.tags.clone().into_iter().collect()))
                .send()
                .await
                .done(&format!("logs:CreateLogGroup {}", self.declared.name))
        })
        .await;
        // Created meanwhile (or by Lambda): converge on it.
        if let Err(e) = created {
            exists_already(e)?;
        }
        self.put_retention(spec.retention_in_days).await?;
        read_back(
            Resource::read(self).await?,
            &format!("log group {}", self.declared.name),
        )
    }

    async fn update(&self, change: &Update<'_, LogGroupSpec>) -> Result<(), ResourceError> {
        if change.has(LogGroupSpec::RETENTION) {
            self.put_retention(change.spec.retention_in_days).await?;
        }
        Ok(())
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        retry::call(|| async {
            self.aws
                .logs
                .delete_log_group()
                .log_group_name(&self.declared.name)
                .send()
                .await
                .done(&format!("logs:DeleteLogGroup {}", self.declared.name))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

#[async_trait]
impl Tagging for LogGroup {
    async fn tag(&self, live: &Live, set: Tags) -> Result<(), ResourceError> {
        self.aws
            .logs
            .tag_resource()
            .resource_arn(live.attrs.get(ARN).map_or("", String::as_str))
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .done(&format!("logs:TagResource {}", self.declared.name))
    }
    async fn untag(&self, live: &Live, keys: Vec<String>) -> Result<(), ResourceError> {
        self.aws
            .logs
            .untag_resource()
            .resource_arn(live.attrs.get(ARN).map_or("", String::as_str))
            .set_tag_keys(Some(keys))
            .send()
            .await
            .done(&format!("logs:UntagResource {}", self.declared.name))
    }
}

/// Lambda writes the logs; CloudWatch Logs encrypts them at rest by default.
const LOG_GROUP_SUPPRESSIONS: &[crate::kind::export::Suppression] = &[(
    "CKV_AWS_158",
    "Encrypted at rest by CloudWatch Logs' own keys; the functions log request ids, sizes and timings, never prompts or images.",
)];

impl Export for LogGroup {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        let spec: LogGroupSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        let properties = object([
            ("LogGroupName", serde_json::json!(self.declared.name)),
            ("RetentionInDays", serde_json::json!(spec.retention_in_days)),
            ("Tags", tag_list(&spec.tags)),
        ]);
        Ok(vec![
            Part::main("AWS::Logs::LogGroup", properties).suppressing(LOG_GROUP_SUPPRESSIONS),
        ])
    }

    /// The provisioner's log group ARN has no `:*` suffix; CloudFormation's
    /// `Fn::GetAtt Arn` has one, so the ARN is spelled out from the name.
    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        match attr {
            ARN => Some(format!(
                "arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:${{{id}}}"
            )),
            NAME => Some(format!("${{{id}}}")),
            _ => None,
        }
    }
}

/// CloudWatch Logs authorises most actions on the group's ARN with `:*`, and
/// the tagging ones on the ARN without it.
impl Access for LogGroup {
    fn read_access(&self) -> Vec<Grant> {
        vec![
            // Authorised on no resource type: `*` (held to the Region).
            Grant::unscoped(&["logs:DescribeLogGroups"]),
            Grant::on(&["logs:ListTagsForResource"], vec![own(self, ARN)]),
        ]
    }

    fn write_access(&self) -> Vec<Grant> {
        vec![
            Grant::on(
                &[
                    "logs:CreateLogGroup",
                    "logs:PutRetentionPolicy",
                    "logs:DeleteLogGroup",
                ],
                vec![own(self, ARN).then(":*")],
            ),
            Grant::on(
                &["logs:TagResource", "logs:UntagResource"],
                vec![own(self, ARN)],
            ),
        ]
    }
}
