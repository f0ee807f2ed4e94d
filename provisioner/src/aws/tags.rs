//! Tags as every kind reads and writes them: a JSON object in `Fields`, and the
//! delta that brings live tags to desired ones.

use std::collections::BTreeMap;

use std::future::Future;

use serde_json::{Map, Value};

use crate::engine::{Fields, ResourceError};

/// The field name tags live under in every taggable kind.
pub const FIELD: &str = "tags";

/// Tags as every kind's spec declares them (`tags` field).
pub type Tags = BTreeMap<String, String>;

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
pub fn of(fields: &Fields) -> BTreeMap<String, String> {
    match fields.get(FIELD) {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// What to set and what to remove to go from `live` to `desired`.
pub fn delta(live: &Fields, desired: &Fields) -> (BTreeMap<String, String>, Vec<String>) {
    let have = of(live);
    let want = of(desired);
    let set = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// Brings live tags to the desired ones with a kind's own tag and untag calls,
/// calling each only when it has something to do.
pub async fn sync<SetFut, RemoveFut>(
    live: &Fields,
    desired: &Fields,
    set: impl FnOnce(BTreeMap<String, String>) -> SetFut,
    remove: impl FnOnce(Vec<String>) -> RemoveFut,
) -> Result<(), ResourceError>
where
    SetFut: Future<Output = Result<(), ResourceError>>,
    RemoveFut: Future<Output = Result<(), ResourceError>>,
{
    let (to_set, to_remove) = delta(live, desired);
    if !to_set.is_empty() {
        set(to_set).await?;
    }
    if !to_remove.is_empty() {
        remove(to_remove).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delta_sets_changed_and_removes_extra() {
        let live: Fields = [("tags".to_owned(), json!({"a": "1", "b": "2", "x": "9"}))].into();
        let want: Fields = [("tags".to_owned(), json!({"a": "1", "b": "3", "c": "4"}))].into();
        let (set, remove) = delta(&live, &want);
        assert_eq!(
            set,
            BTreeMap::from([("b".into(), "3".into()), ("c".into(), "4".into())])
        );
        assert_eq!(remove, ["x"]);
    }

    #[test]
    fn aws_tags_are_ignored() {
        assert_eq!(
            to_value([("aws:cloudformation:stack", "x"), ("k", "v")]),
            json!({"k": "v"})
        );
    }
}
