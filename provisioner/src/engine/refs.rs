//! References between resources: a desired string may contain
//! `${address.attr}` (e.g. `${queue.dlq.arn}`), resolved from the live or newly
//! created resource at `address`. References are also the dependency graph.

use std::collections::BTreeSet;

use serde_json::Value;

/// What a plan shows for a value that is only known once a dependency exists.
pub const UNKNOWN: &str = "(known after apply)";

/// Builds the reference string for `address`'s `attr`.
pub fn reference(address: &str, attr: &str) -> String {
    format!("${{{address}.{attr}}}")
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
    fn unknown_references_are_marked() {
        let (out, known) = resolve(&json!(["${a.b.arn}"]), &|_, _| None);
        assert!(!known);
        assert_eq!(out, json!([UNKNOWN]));
    }
}
