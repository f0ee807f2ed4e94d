//! IAM policy documents as typed values: what roles declare (trust and inline
//! policies) and how IAM's answers are normalised before they are compared.
//!
//! IAM returns documents URL-encoded and may shorten one-element lists to a
//! plain string; `parse_document` undoes both so a fresh role never shows a
//! diff. Statements are built from references, never from `*`.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::Text;
use crate::engine::permission_changes::{Condition, Permission};

pub const VERSION: &str = "2012-10-17";

/// A policy document in IAM's JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: String,
    pub statement: Vec<Statement>,
}

/// One `Allow` statement: exact actions on exact resources, or a trust for a
/// service principal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    pub action: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<Text>,
    /// Operator → condition key → values, e.g. `StringLike` → `s3:prefix` → [...].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub condition: BTreeMap<String, BTreeMap<String, Vec<Text>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Principal {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<String>,
    /// An identity provider's ARN (web identity federation, e.g. GitHub's OIDC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated: Vec<Text>,
    /// Accounts, users and roles (`arn:aws:iam::ACCOUNT:root|user/N|role/N`).
    #[serde(default, rename = "AWS", skip_serializing_if = "Vec::is_empty")]
    pub aws: Vec<String>,
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> PolicyDocument {
        PolicyDocument {
            version: VERSION.into(),
            statement,
        }
    }

    /// The trust policy that lets `service` (e.g. `lambda.amazonaws.com`) assume a role.
    pub fn trust(service: &str) -> PolicyDocument {
        PolicyDocument::new(vec![Statement {
            sid: None,
            effect: "Allow".into(),
            principal: Some(Principal {
                service: vec![service.into()],
                federated: Vec::new(),
                aws: Vec::new(),
            }),
            action: vec!["sts:AssumeRole".into()],
            resource: Vec::new(),
            condition: BTreeMap::new(),
        }])
    }

    /// The trust policy that lets exactly these IAM principals (account,
    /// user or role ARNs) assume a role.
    pub fn trust_principals(arns: &[String]) -> PolicyDocument {
        let mut aws = arns.to_vec();
        aws.sort();
        aws.dedup();
        PolicyDocument::new(vec![Statement {
            sid: None,
            effect: "Allow".into(),
            principal: Some(Principal {
                service: Vec::new(),
                federated: Vec::new(),
                aws,
            }),
            action: vec!["sts:AssumeRole".into()],
            resource: Vec::new(),
            condition: BTreeMap::new(),
        }])
    }
}

impl Statement {
    /// Allows exactly `actions` on exactly `resources`.
    pub fn allow(sid: &str, actions: &[&str], resources: Vec<Text>) -> Statement {
        Statement {
            sid: Some(sid.into()),
            effect: "Allow".into(),
            principal: None,
            action: actions.iter().map(|a| (*a).to_owned()).collect(),
            resource: resources,
            condition: BTreeMap::new(),
        }
    }

    /// Adds a condition (`operator` → `key` → `values`).
    pub fn when(mut self, operator: &str, key: &str, values: Vec<Text>) -> Statement {
        self.condition
            .entry(operator.into())
            .or_default()
            .insert(key.into(), values);
        self
    }
}

/// A document as IAM returns it (URL-encoded JSON), in the declared shape:
/// decoded, parsed, and every one-element string list (`Action`, `Resource`,
/// `Principal.Service`, condition values) turned back into a list.
pub fn parse_document(raw: &str) -> Value {
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    let mut v: Value = serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(raw))
        .unwrap_or_else(|_| Value::String(raw.to_owned()));
    if let Some(statements) = v.get_mut("Statement") {
        if statements.is_object() {
            *statements = Value::Array(vec![statements.take()]);
        }
        for st in statements.as_array_mut().into_iter().flatten() {
            for key in ["Action", "Resource"] {
                listify(st.get_mut(key));
            }
            for key in ["Service", "Federated", "AWS"] {
                listify(st.get_mut("Principal").and_then(|p| p.get_mut(key)));
            }
            if let Some(Value::Object(ops)) = st.get_mut("Condition") {
                for keys in ops.values_mut() {
                    if let Value::Object(keys) = keys {
                        keys.values_mut().for_each(|v| listify(Some(v)));
                    }
                }
            }
        }
    }
    v
}

fn listify(v: Option<&mut Value>) {
    if let Some(v) = v
        && v.is_string()
    {
        *v = Value::Array(vec![v.take()]);
    }
}

/// A document's statements (declared, or as [`parse_document`] read them) as
/// the plan's [`Permission`]s, `document` naming which document it is.
/// Strings and lists both read as lists; `NotAction` / `NotResource` keep
/// their meaning as `NOT ...` entries.
pub fn permissions_in(document: &str, doc: &Value) -> Vec<Permission> {
    let strings = |v: &Value| -> Vec<String> {
        let mut out: Vec<String> = match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        out.sort();
        out
    };
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        st @ Value::Object(_) => vec![st.clone()],
        _ => Vec::new(),
    };
    statements
        .iter()
        .map(|st| {
            let not = |key: &str| strings(&st[key]).into_iter().map(|a| format!("NOT {a}"));
            let mut actions = strings(&st["Action"]);
            actions.extend(not("NotAction"));
            let mut resources = strings(&st["Resource"]);
            resources.extend(not("NotResource"));
            let principals = match &st["Principal"] {
                Value::String(s) => vec![format!("AWS:{s}")],
                Value::Object(m) => m
                    .iter()
                    .flat_map(|(kind, v)| {
                        strings(v).into_iter().map(move |p| format!("{kind}:{p}"))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let mut conditions = Vec::new();
            if let Value::Object(ops) = &st["Condition"] {
                for (operator, keys) in ops {
                    if let Value::Object(keys) = keys {
                        for (key, values) in keys {
                            conditions.push(Condition {
                                operator: operator.clone(),
                                key: key.clone(),
                                values: strings(values),
                            });
                        }
                    }
                }
            }
            conditions.sort();
            Permission {
                document: document.to_owned(),
                effect: st["Effect"].as_str().unwrap_or("Allow").to_owned(),
                actions,
                resources,
                principals,
                conditions,
            }
        })
        .collect()
}

/// Every action and resource of a document, for checks that nothing is `*`.
pub fn wildcards(doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for st in doc["Statement"].as_array().into_iter().flatten() {
        for key in ["Action", "Resource"] {
            for v in st[key].as_array().into_iter().flatten() {
                let s = v.as_str().unwrap_or_default();
                if s == "*" || (key == "Action" && s.contains('*')) {
                    found.push(format!("{key} {s}"));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fields_of;
    use serde_json::json;

    #[test]
    fn url_encoded_documents_with_short_lists_parse_to_the_declared_shape() {
        let declared = PolicyDocument::new(vec![
            Statement::allow(
                "Queue",
                &["sqs:ReceiveMessage"],
                vec!["arn:aws:sqs:eu-west-1:1:q".into()],
            ),
            Statement::allow("List", &["s3:ListBucket"], vec!["arn:aws:s3:::b".into()]).when(
                "StringLike",
                "s3:prefix",
                vec!["11/images/*".into()],
            ),
        ]);
        // As IAM answers: URL-encoded, single values not in lists, other key order.
        let raw = "%7B%22Statement%22%3A%5B%7B%22Resource%22%3A%22arn%3Aaws%3Asqs%3Aeu-west-1%3A1%3Aq%22%2C%22Action%22%3A%22sqs%3AReceiveMessage%22%2C%22Effect%22%3A%22Allow%22%2C%22Sid%22%3A%22Queue%22%7D%2C%7B%22Sid%22%3A%22List%22%2C%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AListBucket%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Ab%22%2C%22Condition%22%3A%7B%22StringLike%22%3A%7B%22s3%3Aprefix%22%3A%2211%2Fimages%2F*%22%7D%7D%7D%5D%2C%22Version%22%3A%222012-10-17%22%7D";
        let wrapped = fields_of(&json!({"d": declared}));
        assert!(crate::engine::diff::same(
            &parse_document(raw),
            &wrapped["d"]
        ));
        assert!(wildcards(&parse_document(raw)).is_empty());
    }

    #[test]
    fn trust_is_for_one_service_only() {
        let t = serde_json::to_value(PolicyDocument::trust("lambda.amazonaws.com")).unwrap();
        assert_eq!(
            t,
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]})
        );
    }

    #[test]
    fn a_document_reads_as_the_same_permissions_declared_or_read_back() {
        let declared = PolicyDocument::new(vec![
            Statement::allow(
                "Q",
                &["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                vec!["arn:q".into()],
            )
            .when(
                "StringEquals",
                "aws:RequestedRegion",
                vec!["us-west-2".into()],
            ),
        ]);
        let as_declared =
            permissions_in("inline policy", &serde_json::to_value(&declared).unwrap());
        let read_back = permissions_in(
            "inline policy",
            &json!({"Version": "2012-10-17", "Statement": {"Sid": "Q", "Effect": "Allow",
                "Action": ["sqs:DeleteMessage", "sqs:ReceiveMessage"], "Resource": "arn:q",
                "Condition": {"StringEquals": {"aws:RequestedRegion": "us-west-2"}}}}),
        );
        assert_eq!(as_declared, read_back);
        assert_eq!(
            as_declared[0].actions,
            ["sqs:DeleteMessage", "sqs:ReceiveMessage"]
        );
        let trust = permissions_in(
            "trust policy",
            &serde_json::to_value(PolicyDocument::trust("lambda.amazonaws.com")).unwrap(),
        );
        assert_eq!(trust[0].principals, ["Service:lambda.amazonaws.com"]);
        assert!(trust[0].resources.is_empty());
    }

    #[test]
    fn wildcards_are_found() {
        let doc = json!({"Statement": [{"Action": ["s3:*"], "Resource": ["*"]}]});
        assert_eq!(wildcards(&doc), ["Action s3:*", "Resource *"]);
    }
}
