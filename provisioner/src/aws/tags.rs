//! Tags as every kind reads them: a JSON object in `Fields` (the engine syncs
//! them: `engine::typed`).

use serde_json::{Map, Value};

/// The field name tags live under in every taggable kind (the engine's).
pub const FIELD: &str = crate::engine::TAGS;

/// Tags as every kind's spec declares them (`tags` field).
pub use crate::engine::Tags;

/// Tags as a field value. `aws:`-prefixed tags belong to AWS and are ignored.
pub fn to_value<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let map: Map<String, Value> = tags
        .into_iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    Value::Object(map)
}

/// Tags of a field map (empty when absent).
pub use crate::engine::typed::tags_of as of;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aws_tags_are_ignored() {
        assert_eq!(
            to_value([("aws:cloudformation:stack", "x"), ("k", "v")]),
            json!({"k": "v"})
        );
    }
}
