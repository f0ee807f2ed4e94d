//! A statement in a function's resource policy: lets one service principal
//! invoke it, from one source ARN only (`lambda:AddPermission`). It belongs to
//! the function it hangs on (no tags of its own) and is found by its
//! statement id in `GetPolicy`. Lambda cannot change a statement in place:
//! an update removes and re-adds it.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Aws, Done, aws_error, error_code, made_already};
use crate::engine::permission_changes::Condition;
use crate::engine::retry;
use crate::engine::{
    Declared, DeleteOutcome, Fields, Live, Permission, ResourceError, Text, TypedKind, Update,
    fields_of, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object};
use crate::kind::{Access, Document, DocumentType, Grant};

/// An invoke permission as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionSpec {
    pub function_name: Text,
    pub action: String,
    pub principal: String,
    pub source_arn: Text,
}

pub struct InvokePermission {
    declared: Declared,
    function_name: String,
    statement_id: String,
    aws: Arc<Aws>,
}

impl InvokePermission {
    /// Statement `statement_id` on the function named `function_name`.
    pub fn new(
        address: &str,
        function_name: &str,
        statement_id: &str,
        spec: &PermissionSpec,
        aws: Arc<Aws>,
    ) -> Self {
        InvokePermission {
            declared: Declared::of(address, format!("{function_name}/{statement_id}"), spec),
            function_name: function_name.to_owned(),
            statement_id: statement_id.to_owned(),
            aws,
        }
    }

    fn what(&self, call: &str) -> String {
        format!("lambda:{call} {}", self.declared.name)
    }

    /// The policy this statement lives in: Lambda refuses overlapping
    /// `AddPermission`/`RemovePermission` on one function and qualifier
    /// (`ResourceConflictException`), and Terraform serialises them per
    /// function for the same reason, so every write to it goes through the
    /// engine's lock for that policy.
    fn policy(function: &str) -> String {
        let (name, qualifier) = split_qualifier(function);
        format!("lambda-policy/{name}:{}", qualifier.unwrap_or_default())
    }

    async fn add(&self, spec: &PermissionSpec) -> Result<(), ResourceError> {
        let (function, qualifier) = split_qualifier(spec.function_name.as_str());
        retry::write(&Self::policy(spec.function_name.as_str()), || async {
            self.aws
                .lambda
                .add_permission()
                .function_name(function)
                .set_qualifier(qualifier.clone())
                .statement_id(&self.statement_id)
                .action(&spec.action)
                .principal(&spec.principal)
                .source_arn(spec.source_arn.as_str())
                .send()
                .await
                .done(&self.what("AddPermission"))
                .or_else(made_already)
        })
        .await
    }

    async fn remove(&self) -> Result<(), ResourceError> {
        let (function, qualifier) = split_qualifier(&self.function_name);
        retry::write(&Self::policy(&self.function_name), || async {
            match self
                .aws
                .lambda
                .remove_permission()
                .function_name(function)
                .set_qualifier(qualifier.clone())
                .statement_id(&self.statement_id)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(()),
                Err(e) => Err(aws_error(&self.what("RemovePermission"), e)),
            }
        })
        .await
    }
}

/// `name:live` → (`name`, `Some("live")`): the policy of an alias is its
/// own, named by the qualifier (GetPolicy, AddPermission, RemovePermission).
fn split_qualifier(function: &str) -> (&str, Option<String>) {
    match function.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier.to_owned())),
        None => (function, None),
    }
}

/// The statement `sid` of a function policy, in the declared shape.
pub fn statement_fields(policy: &str, sid: &str, function_name: &str) -> Option<Fields> {
    let policy: Value = serde_json::from_str(policy).ok()?;
    let st = policy["Statement"]
        .as_array()?
        .iter()
        .find(|s| s["Sid"] == sid)?;
    let principal = match &st["Principal"] {
        Value::String(s) => s.clone(),
        p => p["Service"].as_str().unwrap_or_default().to_owned(),
    };
    let source_arn = st["Condition"]["ArnLike"]["AWS:SourceArn"]
        .as_str()
        .unwrap_or_default();
    Some(fields_of(&PermissionSpec {
        function_name: Text::literal(function_name),
        action: st["Action"].as_str().unwrap_or_default().to_owned(),
        principal,
        source_arn: Text::literal(source_arn),
    }))
}

#[async_trait]
impl TypedKind for InvokePermission {
    type Spec = PermissionSpec;
    const KIND: &'static str = "lambda-permission";

    fn declared(&self) -> &Declared {
        &self.declared
    }

    /// The statement this adds to the function's resource policy, as Lambda
    /// writes it (`AWS:SourceArn` under `ArnLike`).
    fn permissions(&self, fields: &Fields) -> Vec<Permission> {
        let text = |key: &str| fields[key].as_str().unwrap_or_default().to_owned();
        vec![Permission {
            document: "resource policy".into(),
            effect: "Allow".into(),
            actions: vec![text("action")],
            resources: vec![format!("function {}", text("function_name"))],
            principals: vec![format!("Service:{}", text("principal"))],
            conditions: vec![Condition {
                operator: "ArnLike".into(),
                key: "AWS:SourceArn".into(),
                values: vec![text("source_arn")],
            }],
        }]
    }
    fn taggable(&self) -> bool {
        false
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        // No function, or a function without a policy: NotFound, read as absent.
        let policy = self
            .aws
            .lambda
            .get_policy()
            .function_name(split_qualifier(&self.function_name).0)
            .set_qualifier(split_qualifier(&self.function_name).1)
            .send()
            .await
            .map_err(|e| aws_error(&self.what("GetPolicy"), e))?
            .policy
            .unwrap_or_default();
        Ok(
            statement_fields(&policy, &self.statement_id, &self.function_name).map(|fields| Live {
                fields,
                ..Live::default()
            }),
        )
    }

    async fn create(&self, spec: &PermissionSpec, desired: &Fields) -> Result<Live, ResourceError> {
        self.add(spec).await?;
        Ok(Live {
            fields: desired.clone(),
            ..Live::default()
        })
    }

    /// Lambda changes no statement in place: remove it, add it again.
    async fn update(&self, change: &Update<'_, PermissionSpec>) -> Result<(), ResourceError> {
        self.remove().await?;
        self.add(change.spec).await
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        self.remove().await?;
        Ok(DeleteOutcome::Deleted)
    }
}

impl Export for InvokePermission {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        use serde_json::json;
        let spec: PermissionSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        let properties = object([
            ("FunctionName", json!(spec.function_name.as_str())),
            ("Action", json!(spec.action)),
            ("Principal", json!(spec.principal)),
            ("SourceArn", json!(spec.source_arn.as_str())),
        ]);
        Ok(vec![Part::main("AWS::Lambda::Permission", properties)])
    }

    fn cloudformation_attr(&self, _id: &str, _attr: &str) -> Option<String> {
        None
    }
}

impl Access for InvokePermission {
    /// The statement as Lambda adds it to the function's resource policy
    /// (`AddPermission` with a source ARN writes `ArnLike` `AWS:SourceArn`).
    fn documents(&self, fields: &Fields) -> Vec<Document> {
        vec![Document {
            name: "resource policy".into(),
            kind: DocumentType::Resource,
            document: serde_json::json!({
                "Version": crate::aws::policies::VERSION,
                "Statement": [{
                    "Sid": self.statement_id,
                    "Effect": "Allow",
                    "Principal": {"Service": fields["principal"]},
                    "Action": fields["action"],
                    "Resource": self.function_arn().as_str(),
                    "Condition": {"ArnLike": {"AWS:SourceArn": fields["source_arn"]}},
                }],
            }),
        }]
    }

    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(&["lambda:GetPolicy"], vec![self.function_arn()])]
    }

    fn write_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &["lambda:AddPermission", "lambda:RemovePermission"],
            vec![self.function_arn()],
        )]
    }
}

impl InvokePermission {
    fn function_arn(&self) -> Text {
        crate::kind::account_arn("lambda", "function:").then(self.function_name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_statement_is_found_by_sid_and_shaped_like_the_declaration() {
        let policy = json!({"Version": "2012-10-17", "Id": "default", "Statement": [
            {"Sid": "other", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
             "Action": "lambda:InvokeFunction", "Resource": "arn:f"},
            {"Sid": "api", "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
             "Action": "lambda:InvokeFunction", "Resource": "arn:f",
             "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:eu-west-1:1:abc/*/POST/image_generator"}}}
        ]})
        .to_string();
        let f = statement_fields(&policy, "api", "s-http").unwrap();
        assert_eq!(f["principal"], json!("apigateway.amazonaws.com"));
        assert_eq!(
            f["source_arn"],
            json!("arn:aws:execute-api:eu-west-1:1:abc/*/POST/image_generator")
        );
        assert_eq!(f["function_name"], json!("s-http"));
        assert!(statement_fields(&policy, "missing", "s-http").is_none());
        assert!(statement_fields("not json", "api", "s-http").is_none());
    }
}
