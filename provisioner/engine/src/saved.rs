//! Saved plans: `plan --out FILE` writes the JSON plan, `apply --plan FILE`
//! applies it only if a fresh plan still makes exactly the same changes, so
//! what was reviewed (say, on a pull request) is what runs. A saved plan is
//! read back typed ([`SavedPlan`]) and carries the JSON plan's format
//! version ([`render::FORMAT_VERSION`]): a plan of another version, or of
//! none (saved before versions), is refused with what to do.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::plan::{Action, Plan};
use super::render;

/// A plan saved by `plan --out`, as `apply --plan` reads it back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    pub stack: String,
    pub changes: Vec<SavedChange>,
    /// The permission section as reviewed (`apply --plan` grants the
    /// broadening statements found in it).
    #[serde(default)]
    pub permission_changes: Vec<Value>,
}

/// One change of a saved plan: what is compared with a fresh plan's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SavedChange {
    pub address: String,
    pub action: Action,
    /// The field changes as the JSON plan renders them (compared whole).
    #[serde(default)]
    pub fields: Value,
}

/// Why a file is not a saved plan this provisioner can apply.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("not a JSON plan saved by `plan --out`: {0}")]
    NotAPlan(String),
    #[error(
        "the plan has format version {found}; this provisioner reads version {expected}: run `provisioner plan --out` with this provisioner and review it again"
    )]
    Version { found: String, expected: u32 },
}

impl SavedPlan {
    /// Reads a saved plan; refuses another format version before anything else.
    pub fn parse(text: &str) -> Result<SavedPlan, SavedPlanError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| SavedPlanError::NotAPlan(e.to_string()))?;
        match value.get("format_version") {
            Some(v) if v.as_u64() == Some(u64::from(render::FORMAT_VERSION)) => {}
            found => {
                return Err(SavedPlanError::Version {
                    found: found.map_or_else(|| "none".to_owned(), Value::to_string),
                    expected: render::FORMAT_VERSION,
                });
            }
        }
        serde_json::from_value(value).map_err(|e| SavedPlanError::NotAPlan(e.to_string()))
    }

    /// A fresh plan as it would be saved.
    pub fn of(plan: &Plan) -> SavedPlan {
        SavedPlan {
            format_version: render::FORMAT_VERSION,
            stack: plan.stack.clone(),
            changes: plan
                .changes
                .iter()
                .map(|c| SavedChange {
                    address: c.address.clone(),
                    action: c.action,
                    fields: serde_json::to_value(&c.fields).unwrap_or(Value::Null),
                })
                .collect(),
            permission_changes: plan
                .permission_changes
                .iter()
                .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                .collect(),
        }
    }
}

/// Why a saved plan no longer matches `fresh`; empty when it still does.
pub fn stale_reasons(saved: &SavedPlan, fresh: &Plan) -> Vec<String> {
    let mut reasons = Vec::new();
    if saved.stack != fresh.stack {
        reasons.push(format!(
            "it was made for stack {:?}, not {:?}",
            saved.stack, fresh.stack
        ));
        return reasons;
    }
    let by_address = |plan: &SavedPlan| -> BTreeMap<String, SavedChange> {
        plan.changes
            .iter()
            .map(|c| (c.address.clone(), c.clone()))
            .collect()
    };
    let then = by_address(saved);
    let now = by_address(&SavedPlan::of(fresh));
    for (address, change) in &now {
        match then.get(address) {
            None => reasons.push(format!("{address} was not in the saved plan")),
            Some(old) if old.action != change.action => reasons.push(format!(
                "{address}: the saved plan says {}, the live state now needs {}",
                quoted(old.action),
                quoted(change.action)
            )),
            Some(old) if old.fields != change.fields => reasons.push(format!(
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

/// An action as the JSON plan spells it (`"update"`).
fn quoted(action: Action) -> String {
    serde_json::to_string(&action).unwrap_or_default()
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

    /// What `plan --out` writes, read back as `apply --plan` does.
    fn saved(plan: &Plan) -> SavedPlan {
        SavedPlan::parse(&render::json(plan).to_string()).unwrap()
    }

    #[test]
    fn the_same_plan_is_not_stale() {
        let saved = saved(&plan(Action::Update, 300));
        assert_eq!(saved, SavedPlan::of(&plan(Action::Update, 300)));
        assert!(stale_reasons(&saved, &plan(Action::Update, 300)).is_empty());
    }

    #[test]
    fn another_format_version_is_refused() {
        let mut old = render::json(&plan(Action::Update, 300));
        old.as_object_mut().unwrap().remove("format_version");
        let e = SavedPlan::parse(&old.to_string()).unwrap_err();
        assert!(e.to_string().contains("format version none"), "{e}");
        old["format_version"] = json!(render::FORMAT_VERSION + 1);
        let e = SavedPlan::parse(&old.to_string()).unwrap_err();
        assert!(
            e.to_string().contains("run `provisioner plan --out`"),
            "{e}"
        );
        let e = SavedPlan::parse("{").unwrap_err();
        assert!(matches!(e, SavedPlanError::NotAPlan(_)), "{e}");
    }

    #[test]
    fn other_actions_or_values_are_stale() {
        let saved = saved(&plan(Action::Update, 300));
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
