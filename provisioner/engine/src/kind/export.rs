//! What a kind says about its CloudFormation form ([`Export`]): the template
//! parts it becomes and how its attributes are spelled there. Consumed by
//! `cloudformation::export` (the template) and `cloudformation::retire`.

use serde_json::{Map, Value, json};

use crate::{Resource, ResourceError};

/// A checkov check a resource skips, and why (written into the template's
/// `Metadata.checkov.skip`, where security reviewers read it).
pub type Suppression = (&'static str, &'static str);

/// One CloudFormation resource a declared resource becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Appended to the resource's logical id (`""` for its main part).
    pub suffix: std::borrow::Cow<'static, str>,
    /// e.g. `AWS::SQS::Queue`.
    pub type_name: &'static str,
    /// Properties; strings may hold the engine's `${address.attr}` references.
    pub properties: Value,
    pub suppressions: &'static [Suppression],
}

impl Part {
    pub fn main(type_name: &'static str, properties: Value) -> Part {
        Part {
            suffix: "".into(),
            type_name,
            properties,
            suppressions: &[],
        }
    }

    pub fn suppressing(mut self, suppressions: &'static [Suppression]) -> Part {
        self.suppressions = suppressions;
        self
    }
}

/// What the function code of a template is: the local zip and where the
/// template expects it in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub local: std::path::PathBuf,
    pub bucket: String,
    pub key: String,
}

/// Where `export` says the function zips are uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLocation {
    pub bucket: String,
    pub prefix: String,
}

impl CodeLocation {
    /// `{prefix}/{function}/{CodeSha256 as hex}.zip`: a new build is a new key,
    /// so CloudFormation sees the code change.
    pub fn key(&self, function: &str, code_sha256_hex: &str) -> String {
        let prefix = self.prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("{function}/{code_sha256_hex}.zip")
        } else {
            format!("{prefix}/{function}/{code_sha256_hex}.zip")
        }
    }
}

/// A declared resource as CloudFormation. Every kind implements it next to
/// its `impl Resource`.
pub trait Export: Resource {
    /// The resources this one becomes; empty for what the stack only
    /// references (the images bucket).
    fn cloudformation(&self, code: &CodeLocation) -> Result<Vec<Part>, ResourceError>;

    /// How the template spells this resource's attribute `attr`, as an
    /// `Fn::Sub` fragment, given the logical id of its main part: `${Id}`
    /// (`Ref`), `${Id.Arn}` (`Fn::GetAtt`), or a longer expression.
    fn cloudformation_attr(&self, logical_id: &str, attr: &str) -> Option<String>;

    /// The zip the template's code location expects, for functions.
    fn upload(&self, _code: &CodeLocation) -> Option<Upload> {
        None
    }
}

/// [`Export::cloudformation_attr`] for the types whose `Ref` is the name and
/// whose `Fn::GetAtt Arn` is the ARN (IAM roles, Lambda functions, alarms).
pub fn name_ref_arn_getatt(id: &str, attr: &str) -> Option<String> {
    match attr {
        super::ARN => Some(format!("${{{id}.Arn}}")),
        super::NAME => Some(format!("${{{id}}}")),
        _ => None,
    }
}

/// `queue.prompts` → `QueuePrompts`: CloudFormation logical ids are
/// alphanumeric.
pub fn logical_id(address: &str) -> String {
    address
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Tags as most CloudFormation types take them: `[{Key, Value}]`, sorted.
pub fn tag_list(tags: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// An object with only the entries whose value is not null.
pub fn object(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<String, Value>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_camel_case_alphanumerics() {
        assert_eq!(logical_id("queue.prompts"), "QueuePrompts");
        assert_eq!(logical_id("function.image-http"), "FunctionImageHttp");
        assert_eq!(logical_id("log_group.worker"), "LogGroupWorker");
    }

    #[test]
    fn code_keys_are_per_function_and_hash() {
        let at = |prefix: &str| CodeLocation {
            bucket: "b".into(),
            prefix: prefix.into(),
        };
        assert_eq!(
            at("code/").key("image-http", "ab12"),
            "code/image-http/ab12.zip"
        );
        assert_eq!(at("").key("image-http", "ab12"), "image-http/ab12.zip");
    }
}
