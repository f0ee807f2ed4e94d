//! Each function's `live` alias: what the SQS trigger, the HTTP API's
//! integration and the invoke permission call, so that a deploy moves one
//! pointer instead of replacing the code they run. It points at the
//! function's `version` attribute (the newest published version with the
//! declared code and configuration, `aws::functions`), with no weighted
//! second version. It belongs to its function (aliases carry no tags) and
//! goes with it. Lambda: an alias points only at a version, and event
//! sources and resource policies that name the alias ARN need no change when
//! it moves (lambda/latest/dg/using-aliases.html).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use serde::{Deserialize, Serialize};

use super::{ARN, Aws, NAME, aws_error, deleted, error_code, read_back, with_arn};
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Fields, Handle, Live, Ref, Resource, ResourceError, Text,
    fields_of, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object};
use crate::kind::{Access, Grant, account_arn};

/// The alias every function is served through.
pub const LIVE: &str = "live";

/// An alias as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasSpec {
    /// The function's name.
    pub function_name: Text,
    /// The version it serves.
    pub function_version: Text,
    /// `RoutingConfig.AdditionalVersionWeights`: a second version and the
    /// share of invocations it gets (declared: none).
    pub weights: BTreeMap<String, f64>,
}

pub struct FunctionAlias {
    declared: Declared,
    function_name: String,
    aws: Arc<Aws>,
}

/// Attributes an alias exports.
impl Handle<FunctionAlias> {
    /// `arn:aws:lambda:{region}:{account}:function:{name}:live`.
    pub fn arn(&self) -> Ref {
        self.attr(ARN)
    }
    /// `{function}:live`, the alias-qualified name Lambda's calls accept.
    pub fn name(&self) -> Ref {
        self.attr(NAME)
    }
}

impl FunctionAlias {
    /// The `live` alias of the function named `function_name`.
    pub fn new(address: &str, function_name: &str, spec: &AliasSpec, aws: Arc<Aws>) -> Self {
        let name = format!("{function_name}:{LIVE}");
        FunctionAlias {
            declared: Declared::of(address, name.clone(), spec).knowing(NAME, name),
            function_name: function_name.to_owned(),
            aws,
        }
    }

    fn what(&self, call: &str) -> String {
        format!("lambda:{call} {}", self.declared.name)
    }

    fn routing(spec: &AliasSpec) -> AliasRoutingConfiguration {
        AliasRoutingConfiguration::builder()
            .set_additional_version_weights(Some(
                spec.weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            ))
            .build()
    }
}

/// Live fields of an alias, in the declared shape.
pub fn normalise(
    function_name: &str,
    version: &str,
    routing: Option<&AliasRoutingConfiguration>,
) -> Fields {
    fields_of(&AliasSpec {
        function_name: Text::literal(function_name),
        function_version: Text::literal(version),
        weights: routing
            .and_then(|r| r.additional_version_weights())
            .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default(),
    })
}

#[async_trait]
impl Resource for FunctionAlias {
    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn kind(&self) -> &'static str {
        "lambda-alias"
    }
    /// Aliases have no tags: the alias belongs to its function.
    fn taggable(&self) -> bool {
        false
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        let resource = format!("function:{}", self.declared.name);
        Ok(with_arn(
            &self.declared,
            self.aws.arn("lambda", &resource).await?,
        ))
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let out = match self
            .aws
            .lambda
            .get_alias()
            .function_name(&self.function_name)
            .name(LIVE)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(aws_error(&self.what("GetAlias"), e)),
        };
        let mut live = Live {
            fields: normalise(
                &self.function_name,
                out.function_version().unwrap_or_default(),
                out.routing_config(),
            ),
            ..Live::default()
        };
        live.attrs
            .insert(ARN.into(), out.alias_arn().unwrap_or_default().to_owned());
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        Ok(Some(live))
    }

    async fn create(&self, desired: &Fields) -> Result<Live, ResourceError> {
        let spec: AliasSpec = spec_of(&self.declared.address, desired)?;
        let created = self
            .aws
            .lambda
            .create_alias()
            .function_name(&self.function_name)
            .name(LIVE)
            .function_version(spec.function_version.as_str())
            .routing_config(Self::routing(&spec))
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Created by an interrupted run: point it where it belongs.
            Err(e) if error_code(&e) == Some("ResourceConflictException") => {
                let live = read_back(self.read().await?, &self.declared.name)?;
                let all: BTreeSet<String> = desired.keys().cloned().collect();
                self.update(&live, desired, &all).await?;
            }
            Err(e) => return Err(aws_error(&self.what("CreateAlias"), e)),
        }
        read_back(self.read().await?, &format!("alias {}", self.declared.name))
    }

    async fn update(
        &self,
        _live: &Live,
        desired: &Fields,
        _changed: &BTreeSet<String>,
    ) -> Result<(), ResourceError> {
        let spec: AliasSpec = spec_of(&self.declared.address, desired)?;
        self.aws
            .lambda
            .update_alias()
            .function_name(&self.function_name)
            .name(LIVE)
            .function_version(spec.function_version.as_str())
            .routing_config(Self::routing(&spec))
            .send()
            .await
            .map_err(|e| aws_error(&self.what("UpdateAlias"), e))?;
        tracing::info!(alias = %self.declared.name, version = spec.function_version.as_str(), "alias moved");
        Ok(())
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        deleted(
            self.aws
                .lambda
                .delete_alias()
                .function_name(&self.function_name)
                .name(LIVE)
                .send()
                .await,
            "ResourceNotFoundException",
            &self.what("DeleteAlias"),
        )
    }
}

impl Export for FunctionAlias {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        use serde_json::json;
        let spec: AliasSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        Ok(vec![Part::main(
            "AWS::Lambda::Alias",
            object([
                ("FunctionName", json!(spec.function_name.as_str())),
                ("FunctionVersion", json!(spec.function_version.as_str())),
                ("Name", json!(LIVE)),
            ]),
        )])
    }

    /// `Ref` of an alias is its ARN, which Lambda accepts wherever the
    /// qualified name goes (and which orders the template after the alias).
    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        matches!(attr, ARN | NAME).then(|| format!("${{{id}}}"))
    }
}

impl Access for FunctionAlias {
    /// Lambda authorises alias calls on the function's ARN (the Service
    /// Authorization Reference's `function` resource type).
    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &["lambda:GetAlias"],
            vec![account_arn("lambda", "function:").then(self.function_name.as_str())],
        )]
    }

    fn write_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &[
                "lambda:CreateAlias",
                "lambda:UpdateAlias",
                "lambda:DeleteAlias",
            ],
            vec![account_arn("lambda", "function:").then(self.function_name.as_str())],
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_alias_reads_as_its_version_and_weights() {
        let routing = AliasRoutingConfiguration::builder()
            .additional_version_weights("8", 0.1)
            .build();
        let f = normalise("s-worker", "7", Some(&routing));
        assert_eq!(f["function_name"], json!("s-worker"));
        assert_eq!(f["function_version"], json!("7"));
        assert_eq!(f["weights"], json!({"8": 0.1}));
        assert_eq!(normalise("s-worker", "7", None)["weights"], json!({}));
    }
}
