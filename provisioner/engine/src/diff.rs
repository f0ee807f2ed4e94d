//! Field-level comparison of desired and live values, after normalisation.
//!
//! Kinds normalise what AWS rewrites when they read (strings → numbers, JSON
//! policies → parsed values); this module adds the generic rules: numbers are
//! equal by value (`120` = `120.0`), objects are compared key by key so a plan
//! names the exact tag or policy key that changed.

use serde::Serialize;
use serde_json::Value;

use super::resource::Fields;

/// One changed value. `after == None` means "known after apply".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Value,
    #[serde(serialize_with = "ser_after")]
    pub after: Option<Value>,
}

fn ser_after<S: serde::Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.serialize(s),
        None => s.serialize_str(super::refs::UNKNOWN),
    }
}

impl FieldChange {
    /// The top-level field this change belongs to.
    pub fn field(&self) -> &str {
        self.path.split('.').next().unwrap_or(&self.path)
    }
}

/// Values equal after normalisation.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Changes that bring `live` to `desired`. `unknown` lists desired fields whose
/// value depends on something not created yet. Only desired fields are compared:
/// a kind declares what it manages.
pub fn diff(desired: &Fields, unknown: &[String], live: &Fields) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (key, want) in desired {
        let have = live.get(key).unwrap_or(&Value::Null);
        if unknown.iter().any(|u| u == key) {
            out.push(FieldChange {
                path: key.clone(),
                before: have.clone(),
                after: None,
            });
            continue;
        }
        diff_value(key, want, have, &mut out);
    }
    out
}

fn diff_value(path: &str, want: &Value, have: &Value, out: &mut Vec<FieldChange>) {
    if same(want, have) {
        return;
    }
    if let (Value::Object(w), Value::Object(h)) = (want, have) {
        for (k, wv) in w {
            let hv = h.get(k).unwrap_or(&Value::Null);
            diff_value(&format!("{path}.{k}"), wv, hv, out);
        }
        for (k, hv) in h {
            if !w.contains_key(k) {
                out.push(FieldChange {
                    path: format!("{path}.{k}"),
                    before: hv.clone(),
                    after: Some(Value::Null),
                });
            }
        }
        return;
    }
    out.push(FieldChange {
        path: path.to_owned(),
        before: have.clone(),
        after: Some(want.clone()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[test]
    fn equal_values_have_no_changes() {
        let d = fields(json!({"a": 1, "t": {"x": "1"}, "l": ["a"]}));
        assert!(diff(&d, &[], &d).is_empty());
    }

    #[test]
    fn numbers_compare_by_value() {
        let d = fields(json!({"threshold": 120}));
        let l = fields(json!({"threshold": 120.0}));
        assert!(diff(&d, &[], &l).is_empty());
    }

    #[test]
    fn scalar_change_names_the_field() {
        let d = fields(json!({"visibility_timeout_seconds": 180, "x": 1}));
        let l = fields(json!({"visibility_timeout_seconds": 30, "x": 1}));
        assert_eq!(
            diff(&d, &[], &l),
            [FieldChange {
                path: "visibility_timeout_seconds".into(),
                before: json!(30),
                after: Some(json!(180))
            }]
        );
    }

    #[test]
    fn objects_are_compared_key_by_key() {
        let d = fields(json!({"tags": {"a": "1", "b": "2"}}));
        let l = fields(json!({"tags": {"a": "1", "b": "3", "c": "4"}}));
        let ch = diff(&d, &[], &l);
        assert_eq!(ch.len(), 2);
        assert_eq!(
            ch[0],
            FieldChange {
                path: "tags.b".into(),
                before: json!("3"),
                after: Some(json!("2"))
            }
        );
        assert_eq!(
            ch[1],
            FieldChange {
                path: "tags.c".into(),
                before: json!("4"),
                after: Some(Value::Null)
            }
        );
        assert_eq!(ch[0].field(), "tags");
    }

    #[test]
    fn missing_live_field_is_a_change_from_null() {
        let d = fields(json!({"redrive_policy": {"maxReceiveCount": 3}}));
        let ch = diff(&d, &[], &Fields::new());
        assert_eq!(
            ch,
            [FieldChange {
                path: "redrive_policy".into(),
                before: Value::Null,
                after: Some(json!({"maxReceiveCount": 3}))
            }]
        );
    }

    #[test]
    fn live_only_fields_are_not_managed() {
        let d = fields(json!({"a": 1}));
        let l = fields(json!({"a": 1, "created": "yesterday"}));
        assert!(diff(&d, &[], &l).is_empty());
    }

    #[test]
    fn unknown_fields_are_always_changes() {
        let d = fields(json!({"arn": "(known after apply)"}));
        let l = fields(json!({"arn": "arn:x"}));
        let ch = diff(&d, &["arn".into()], &l);
        assert_eq!(
            ch,
            [FieldChange {
                path: "arn".into(),
                before: json!("arn:x"),
                after: None
            }]
        );
        assert_eq!(
            serde_json::to_value(&ch[0]).unwrap()["after"],
            json!("(known after apply)")
        );
    }

    #[test]
    fn arrays_compare_whole_and_in_order() {
        let d = fields(json!({"actions": ["a", "b"]}));
        let l = fields(json!({"actions": ["b", "a"]}));
        assert_eq!(diff(&d, &[], &l).len(), 1);
    }
}
