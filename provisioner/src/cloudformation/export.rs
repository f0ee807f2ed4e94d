//! `provisioner export --format cloudformation`: the declaration as a
//! template. No AWS call: what AWS derives (account, region, ARNs) is written
//! as `${AWS::AccountId}`-style substitutions or references between the
//! template's own resources.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{CodeLocation, Export, Part, Upload, logical_id};
use crate::engine::Text;
use crate::engine::refs::resolve;

/// Marks a `Fn::Sub` fragment inside a resolved string until it is turned
/// into an intrinsic function (the control characters never occur in
/// declared text).
const OPEN: char = '\u{1}';
const CLOSE: char = '\u{2}';

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Resource(String),
    #[error(
        "{address} refers to {target}.{attr}, which is neither in the template nor known before deployment"
    )]
    Unresolvable {
        address: String,
        target: String,
        attr: String,
    },
}

/// A template and the zips it expects in S3.
#[derive(Debug, Clone)]
pub struct Exported {
    pub template: Value,
    pub uploads: Vec<Upload>,
}

/// The template of `exports` (every declared resource, in declaration order)
/// with the stack's `outputs` as the template's outputs.
pub fn template<E: Export + ?Sized>(
    description: &str,
    exports: &[Arc<E>],
    outputs: &[(&'static str, Text)],
    code: &CodeLocation,
) -> Result<Exported, ExportError> {
    let mut parts = Vec::new();
    let mut in_template: BTreeMap<&str, (String, &E)> = BTreeMap::new();
    for export in exports {
        let its = export
            .cloudformation(code)
            .map_err(|e| ExportError::Resource(e.message))?;
        if its.is_empty() {
            continue;
        }
        let logical = logical_id(export.address());
        in_template.insert(export.address(), (logical.clone(), export.as_ref()));
        parts.push((export.address(), logical, its));
    }
    let known: BTreeMap<&str, _> = exports
        .iter()
        .map(|e| (e.address(), &e.declared().known))
        .collect();
    // Referenced resources (not in the template) may spell an attribute
    // AWS derives from the account (an inference profile's ARN).
    let outside: BTreeMap<&str, &E> = exports
        .iter()
        .filter(|e| !in_template.contains_key(e.address()))
        .map(|e| (e.address(), e.as_ref()))
        .collect();
    let translate = |from: &str, value: &Value| -> Result<Value, ExportError> {
        let missing = RefCell::new(None);
        let lookup = |address: &str, attr: &str| {
            let found = match in_template.get(address) {
                Some((logical, export)) => export
                    .cloudformation_attr(logical, attr)
                    .map(|fragment| format!("{OPEN}{fragment}{CLOSE}")),
                None => outside
                    .get(address)
                    .and_then(|e| e.cloudformation_attr("", attr))
                    .map(|fragment| format!("{OPEN}{fragment}{CLOSE}"))
                    .or_else(|| known.get(address).and_then(|k| k.get(attr).cloned())),
            };
            if found.is_none() {
                missing.replace(Some((address.to_owned(), attr.to_owned())));
            }
            found
        };
        let (resolved, _) = resolve(value, &lookup);
        match missing.into_inner() {
            Some((target, attr)) => Err(ExportError::Unresolvable {
                address: from.to_owned(),
                target,
                attr,
            }),
            None => Ok(intrinsics(&resolved)),
        }
    };

    let mut resources = Map::new();
    for (address, logical, its) in parts {
        for part in its {
            let properties = translate(address, &part.properties)?;
            resources.insert(
                format!("{logical}{}", part.suffix),
                resource_entry(&part, properties),
            );
        }
    }
    let mut template_outputs = Map::new();
    for (name, value) in outputs {
        let value = translate(name, &json!(value.as_str()))?;
        template_outputs.insert(logical_id(name), json!({ "Value": value }));
    }
    let uploads = exports.iter().filter_map(|e| e.upload(code)).collect();
    Ok(Exported {
        template: json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": description,
            "Resources": resources,
            "Outputs": template_outputs,
        }),
        uploads,
    })
}

/// A template resource: its type, its properties, and the checks it is
/// known to fail on purpose (each with why) as checkov's skip list.
fn resource_entry(part: &Part, properties: Value) -> Value {
    let mut entry = Map::new();
    entry.insert("Type".into(), json!(part.type_name));
    entry.insert("Properties".into(), properties);
    if !part.suppressions.is_empty() {
        let skip: Vec<Value> = part
            .suppressions
            .iter()
            .map(|(id, why)| json!({"id": id, "comment": why}))
            .collect();
        entry.insert("Metadata".into(), json!({"checkov": {"skip": skip}}));
    }
    Value::Object(entry)
}

/// Strings holding marked fragments become `Ref`, `Fn::GetAtt` or `Fn::Sub`.
fn intrinsics(value: &Value) -> Value {
    match value {
        Value::String(s) if s.contains(OPEN) => sub(s),
        Value::Array(items) => Value::Array(items.iter().map(intrinsics).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), intrinsics(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn sub(s: &str) -> Value {
    let mut text = String::new();
    let mut fragments = 0;
    let mut literal = false;
    let mut rest = s;
    while let Some(open) = rest.find(OPEN) {
        let before = &rest[..open];
        literal |= !before.is_empty();
        // A literal `${` must not be read as a substitution.
        text.push_str(&before.replace("${", "${!"));
        let after = &rest[open + OPEN.len_utf8()..];
        let close = after.find(CLOSE).unwrap_or(after.len());
        text.push_str(&after[..close]);
        fragments += 1;
        rest = after.get(close + CLOSE.len_utf8()..).unwrap_or("");
    }
    literal |= !rest.is_empty();
    text.push_str(&rest.replace("${", "${!"));
    if fragments == 1
        && !literal
        && let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}'))
        && !inner.contains(['$', '{', '}', ':'])
    {
        return match inner.split_once('.') {
            Some((id, attr)) => json!({"Fn::GetAtt": [id, attr]}),
            None => json!({ "Ref": inner }),
        };
    }
    json!({ "Fn::Sub": text })
}

/// The logical ids a template value refers to (`Ref`, `Fn::GetAtt`, `Fn::Sub`).
pub fn referenced_ids(value: &Value) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    collect_ids(value, &mut ids);
    ids
}

fn collect_ids(value: &Value, ids: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("Ref", Value::String(id)) if !id.starts_with("AWS::") => {
                        ids.insert(id.clone());
                    }
                    ("Fn::GetAtt", Value::Array(a)) => {
                        if let Some(Value::String(id)) = a.first() {
                            ids.insert(id.clone());
                        }
                    }
                    ("Fn::Sub", Value::String(s)) => {
                        let mut rest = s.as_str();
                        while let Some(i) = rest.find("${") {
                            let after = &rest[i + 2..];
                            let end = after.find('}').unwrap_or(after.len());
                            let inner = &after[..end];
                            let id = inner.split('.').next().unwrap_or(inner);
                            if !inner.starts_with('!') && !id.starts_with("AWS::") {
                                ids.insert(id.to_owned());
                            }
                            rest = after.get(end..).unwrap_or("");
                        }
                    }
                    _ => collect_ids(v, ids),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, ids)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(s: &str) -> String {
        format!("{OPEN}{s}{CLOSE}")
    }

    #[test]
    fn a_whole_reference_is_a_ref_or_getatt() {
        assert_eq!(sub(&marked("${Topic}")), json!({"Ref": "Topic"}));
        assert_eq!(
            sub(&marked("${Queue.Arn}")),
            json!({"Fn::GetAtt": ["Queue", "Arn"]})
        );
    }

    #[test]
    fn references_inside_text_are_a_sub_with_literal_dollars_escaped() {
        let s = format!("{}:*/${{x}}", marked("${Logs.Arn}"));
        assert_eq!(sub(&s), json!({"Fn::Sub": "${Logs.Arn}:*/${!x}"}));
        let expr =
            marked("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${Logs}");
        assert_eq!(
            sub(&expr),
            json!({"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${Logs}"})
        );
    }

    #[test]
    fn referenced_ids_are_found_in_every_intrinsic() {
        let v = json!({
            "A": {"Ref": "Topic"},
            "B": [{"Fn::GetAtt": ["Queue", "Arn"]}],
            "C": {"Fn::Sub": "arn:${AWS::Partition}:x:${Api}/${Logs.Arn}${!lit}"},
            "D": {"Ref": "AWS::Region"}
        });
        assert_eq!(
            referenced_ids(&v),
            ["Api", "Logs", "Queue", "Topic"]
                .into_iter()
                .map(String::from)
                .collect()
        );
    }
}
