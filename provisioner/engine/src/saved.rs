//! Saved plans: `plan --out FILE` writes the JSON plan, `apply --plan FILE`
//! applies it only if a fresh plan still makes exactly the same changes, so
//! what was reviewed (say, on a pull request) is what runs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::plan::Plan;
use super::render;

/// Why a saved plan no longer matches `fresh`; empty when it still does.
pub fn stale_reasons(saved: &Value, fresh: &Plan) -> Vec<String> {
    let mut reasons = Vec::new();
    if saved["stack"] != Value::String(fresh.stack.clone()) {
        reasons.push(format!(
            "it was made for stack {} , not {:?}",
            saved["stack"], fresh.stack
        ));
        return reasons;
    }
    let by_address = |changes: &Value| -> BTreeMap<String, Value> {
        changes
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["address"].as_str().map(|a| (a.to_owned(), c.clone())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let then = by_address(&saved["changes"]);
    let now = by_address(&render::json(fresh)["changes"]);
    for (address, change) in &now {
        match then.get(address) {
            None => reasons.push(format!("{address} was not in the saved plan")),
            Some(old) if old["action"] != change["action"] => reasons.push(format!(
                "{address}: the saved plan says {}, the live state now needs {}",
                old["action"], change["action"]
            )),
            Some(old) if old["fields"] != change["fields"] => reasons.push(format!(
                "{address}: the fields to change are not the same any more"
            )),
            Some(_) => {}
        }
    }
    for address in then.keys().filter(|a| !now.contains_key(*a)) {
        reasons.push(format!(
            "{address} is in the saved plan but no longer declared"
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::FieldChange;
    use crate::plan::{Action, Change, Summary};
    use serde_json::json;

    fn plan(action: Action, after: i64) -> Plan {
        Plan {
            stack: "s".into(),
            changes: vec![Change {
                address: "alarm.a".into(),
                kind: "k".into(),
                name: "n".into(),
                action,
                fields: vec![FieldChange {
                    path: "threshold".into(),
                    before: json!(120),
                    after: Some(json!(after)),
                }],
                referenced: false,
                depends_on: Default::default(),
                duplicate_of: None,
            }],
            summary: Summary::default(),
            problems: vec![],
            warnings: vec![],
            permission_changes: vec![],
        }
    }

    #[test]
    fn the_same_plan_is_not_stale() {
        let saved = render::json(&plan(Action::Update, 300));
        assert!(stale_reasons(&saved, &plan(Action::Update, 300)).is_empty());
    }

    #[test]
    fn other_actions_or_values_are_stale() {
        let saved = render::json(&plan(Action::Update, 300));
        assert!(
            stale_reasons(&saved, &plan(Action::Create, 300))[0].contains("now needs \"create\"")
        );
        assert!(stale_reasons(&saved, &plan(Action::Update, 400))[0].contains("fields"));
        let mut other = plan(Action::Update, 300);
        other.stack = "t".into();
        assert!(stale_reasons(&saved, &other)[0].contains("stack"));
        other = plan(Action::Update, 300);
        other.changes[0].address = "alarm.b".into();
        assert_eq!(stale_reasons(&saved, &other).len(), 2);
    }
}
