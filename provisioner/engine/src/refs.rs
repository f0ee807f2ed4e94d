//! References between resources. Declarations hold typed [`Ref`]s, obtained
//! from a declared resource's [`Handle`] (`dlq.arn()`), and [`Text`] values
//! that may embed them. Serialised, a reference is `${address.attr}` inside a
//! string, resolved from the live, predicted or newly created resource at
//! `address`. References are also the dependency graph.

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a plan shows for a value that is only known once a dependency exists.
pub const UNKNOWN: &str = "(known after apply)";

/// Builds the reference string for `address`'s `attr`.
pub fn reference(address: &str, attr: &str) -> String {
    format!("${{{address}.{attr}}}")
}

/// A reference to one attribute another resource exports. Only a kind's
/// [`Handle`] methods make them, so a reference always names an attribute
/// that kind really has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    address: String,
    attr: &'static str,
}

impl Ref {
    pub fn address(&self) -> &str {
        &self.address
    }
    pub fn attr(&self) -> &'static str {
        self.attr
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&reference(&self.address, self.attr))
    }
}

/// A declared string: literal text, a [`Ref`], or both concatenated
/// (`Text::from(log_group.arn()).then(":*")`). Serialises as the string with
/// `${address.attr}` placeholders; after resolution it holds the plain value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    pub fn literal(s: impl Into<String>) -> Text {
        Text(s.into())
    }
    /// This text followed by `more`.
    pub fn then(mut self, more: impl Into<Text>) -> Text {
        self.0.push_str(&more.into().0);
        self
    }
    /// The string, with placeholders if references are unresolved.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Ref> for Text {
    fn from(r: Ref) -> Text {
        Text(r.to_string())
    }
}
impl From<&Ref> for Text {
    fn from(r: &Ref) -> Text {
        Text(r.to_string())
    }
}
impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(s.to_owned())
    }
}
impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(s)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What declaring a resource of kind `K` returns: its address, and (through
/// the kind's own `impl Handle<K>`) one method per attribute it exports.
#[derive(Debug)]
pub struct Handle<K> {
    address: String,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Handle<K> {
    fn clone(&self) -> Self {
        Handle {
            address: self.address.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Handle<K> {
    pub fn new(address: impl Into<String>) -> Handle<K> {
        Handle {
            address: address.into(),
            kind: PhantomData,
        }
    }
    pub fn address(&self) -> &str {
        &self.address
    }
    /// For the kind's attribute methods only: `attr` must be one the kind exports.
    pub fn attr(&self, attr: &'static str) -> Ref {
        Ref {
            address: self.address.clone(),
            attr,
        }
    }
}

/// `(address, attr)` of every reference in `s`.
fn refs_in_str(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        if let Some((addr, attr)) = inner.rsplit_once('.') {
            out.push((addr.to_owned(), attr.to_owned()));
        }
        rest = &after[end + 1..];
    }
    out
}

/// Addresses `value` refers to.
pub fn dependencies(value: &Value) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    walk(value, &mut |s| {
        for (addr, _) in refs_in_str(s) {
            deps.insert(addr);
        }
    });
    deps
}

fn walk(value: &Value, f: &mut dyn FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| walk(v, f)),
        Value::Object(map) => map.values().for_each(|v| walk(v, f)),
        _ => {}
    }
}

/// Replaces every reference using `lookup(address, attr)`. Returns the value
/// and whether every reference was known; unknown ones become [`UNKNOWN`].
pub fn resolve(value: &Value, lookup: &dyn Fn(&str, &str) -> Option<String>) -> (Value, bool) {
    match value {
        Value::String(s) => {
            let refs = refs_in_str(s);
            if refs.is_empty() {
                return (value.clone(), true);
            }
            let mut out = s.clone();
            for (addr, attr) in refs {
                match lookup(&addr, &attr) {
                    Some(v) => out = out.replace(&reference(&addr, &attr), &v),
                    None => return (Value::String(UNKNOWN.to_owned()), false),
                }
            }
            (Value::String(out), true)
        }
        Value::Array(items) => {
            let mut known = true;
            let items = items
                .iter()
                .map(|v| {
                    let (v, k) = resolve(v, lookup);
                    known &= k;
                    v
                })
                .collect();
            (Value::Array(items), known)
        }
        Value::Object(map) => {
            let mut known = true;
            let map = map
                .iter()
                .map(|(k, v)| {
                    let (v, ok) = resolve(v, lookup);
                    known &= ok;
                    (k.clone(), v)
                })
                .collect();
            (Value::Object(map), known)
        }
        _ => (value.clone(), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_dependencies_anywhere_in_a_value() {
        let v = json!({"a": "${queue.dlq.arn}", "b": ["x", "${topic.alerts.arn}"], "c": 3});
        let deps: Vec<_> = dependencies(&v).into_iter().collect();
        assert_eq!(deps, ["queue.dlq", "topic.alerts"]);
    }

    #[test]
    fn resolves_known_references_inside_strings() {
        let v =
            json!({"deadLetterTargetArn": "${queue.dlq.arn}", "n": 3, "s": "pre-${x.y.name}-post"});
        let (out, known) = resolve(&v, &|a, attr| match (a, attr) {
            ("queue.dlq", "arn") => Some("arn:aws:sqs:eu-west-1:1:q".into()),
            ("x.y", "name") => Some("mid".into()),
            _ => None,
        });
        assert!(known);
        assert_eq!(
            out,
            json!({"deadLetterTargetArn": "arn:aws:sqs:eu-west-1:1:q", "n": 3, "s": "pre-mid-post"})
        );
    }

    #[test]
    fn typed_references_serialise_as_placeholders() {
        struct Kind;
        let h: Handle<Kind> = Handle::new("log_group.worker");
        let t = Text::from(h.attr("arn")).then(":*");
        assert_eq!(t.as_str(), "${log_group.worker.arn}:*");
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            dependencies(&v).into_iter().collect::<Vec<_>>(),
            ["log_group.worker"]
        );
        let (out, known) = resolve(&v, &|_, _| Some("arn:x".into()));
        assert!(known);
        assert_eq!(out, json!("arn:x:*"));
    }

    #[test]
    fn unknown_references_are_marked() {
        let (out, known) = resolve(&json!(["${a.b.arn}"]), &|_, _| None);
        assert!(!known);
        assert_eq!(out, json!([UNKNOWN]));
    }
}
