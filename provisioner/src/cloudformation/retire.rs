//! `provisioner retire`: leaving an old CloudFormation (SAM) stack. What it
//! holds is compared with what this stack declares; deleting it keeps the
//! resources named with `--retain` (marked `DeletionPolicy: Retain` first,
//! since CloudFormation accepts `RetainResources` only for a stack whose
//! deletion already failed).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// One resource of the old stack, as `ListStackResources` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldResource {
    pub logical_id: String,
    pub type_name: String,
    pub physical_id: String,
    pub status: String,
}

/// What becomes of an old resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// The same physical resource the provisioner manages: deleting the old
    /// stack would delete it, so it must be retained.
    Shared(String),
    /// Kept (`--retain`).
    Retained,
    /// Deleted; this stack's resources of the same type take over.
    ReplacedBy(Vec<String>),
    /// Deleted, and nothing in this stack takes its place.
    Deleted,
}

/// A declared resource as retire sees it: address, CloudFormation type,
/// physical name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ours {
    pub address: String,
    pub type_name: String,
    pub physical_name: String,
}

/// The fate of each old resource, in the old stack's order.
pub fn fates(old: &[OldResource], ours: &[Ours], retain: &BTreeSet<String>) -> Vec<Fate> {
    old.iter()
        .map(|r| {
            if let Some(same) = ours.iter().find(|o| same_resource(r, o)) {
                return Fate::Shared(same.address.clone());
            }
            if retain.contains(&r.logical_id) {
                return Fate::Retained;
            }
            let by: Vec<String> = ours
                .iter()
                .filter(|o| o.type_name == r.type_name)
                .map(|o| o.address.clone())
                .collect();
            if by.is_empty() {
                Fate::Deleted
            } else {
                Fate::ReplacedBy(by)
            }
        })
        .collect()
}

/// Physical ids are names for most types and ARNs or URLs for some (queues,
/// topics): the name is what both spell.
fn same_resource(old: &OldResource, ours: &Ours) -> bool {
    old.type_name == ours.type_name
        && (old.physical_id == ours.physical_name
            || old
                .physical_id
                .rsplit(['/', ':'])
                .next()
                .is_some_and(|tail| tail == ours.physical_name))
}

/// Problems that stop retire before it changes anything.
pub fn refusals(old: &[OldResource], fates: &[Fate], retain: &BTreeSet<String>) -> Vec<String> {
    let known: BTreeSet<&str> = old.iter().map(|r| r.logical_id.as_str()).collect();
    let mut problems: Vec<String> = retain
        .iter()
        .filter(|id| !known.contains(id.as_str()))
        .map(|id| format!("--retain {id}: the old stack has no resource with that logical id"))
        .collect();
    for (r, fate) in old.iter().zip(fates) {
        if let Fate::Shared(address) = fate
            && !retain.contains(&r.logical_id)
        {
            problems.push(format!(
                "{} ({}) is {address}, which this stack manages: deleting the old stack would delete it; add --retain {}",
                r.logical_id, r.physical_id, r.logical_id
            ));
        }
    }
    problems
}

/// The old stack's template with `DeletionPolicy: Retain` on `retain`.
/// `None` when the template already retains them.
pub fn retaining(template: &Value, retain: &BTreeSet<String>) -> Option<Value> {
    let mut t = template.clone();
    let resources = t.get_mut("Resources")?.as_object_mut()?;
    let mut changed = false;
    for id in retain {
        if let Some(Value::Object(r)) = resources.get_mut(id) {
            for key in ["DeletionPolicy", "UpdateReplacePolicy"] {
                if r.get(key).and_then(Value::as_str) != Some("Retain") {
                    r.insert(key.into(), Value::String("Retain".into()));
                    changed = true;
                }
            }
        }
    }
    changed.then_some(t)
}

/// The table `retire` prints: logical id, type, physical id, fate.
pub fn table(old: &[OldResource], fates: &[Fate]) -> String {
    let rows: Vec<[String; 4]> = old
        .iter()
        .zip(fates)
        .map(|(r, f)| {
            let fate = match f {
                Fate::Shared(a) => format!("is {a}: must be retained"),
                Fate::Retained => "kept (--retain)".into(),
                Fate::ReplacedBy(by) => format!("deleted; replaced by {}", by.join(", ")),
                Fate::Deleted => "deleted; nothing in this stack replaces it".into(),
            };
            [
                r.logical_id.clone(),
                r.type_name.clone(),
                r.physical_id.clone(),
                fate,
            ]
        })
        .collect();
    let mut width = [0usize; 3];
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for [id, ty, phys, fate] in rows {
        out.push_str(&format!(
            "  {id:<w0$}  {ty:<w1$}  {phys:<w2$}  {fate}\n",
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        ));
    }
    out
}

/// Counts by fate, for the summary line.
pub fn summary(fates: &[Fate]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for f in fates {
        let key = match f {
            Fate::Shared(_) | Fate::Retained => "kept",
            Fate::ReplacedBy(_) | Fate::Deleted => "deleted",
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn old(id: &str, ty: &str, phys: &str) -> OldResource {
        OldResource {
            logical_id: id.into(),
            type_name: ty.into(),
            physical_id: phys.into(),
            status: "CREATE_COMPLETE".into(),
        }
    }

    fn ours(address: &str, ty: &str, name: &str) -> Ours {
        Ours {
            address: address.into(),
            type_name: ty.into(),
            physical_name: name.into(),
        }
    }

    #[test]
    fn each_old_resource_is_shared_retained_replaced_or_deleted() {
        let old = [
            old("Fn", "AWS::Lambda::Function", "old-http"),
            old("Role", "AWS::IAM::Role", "old-role"),
            old(
                "Queue",
                "AWS::SQS::Queue",
                "https://sqs.eu-west-1.amazonaws.com/1/couch-prompts",
            ),
            old("Bucket", "AWS::S3::Bucket", "old-bucket"),
        ];
        let ours = [
            ours("function.http", "AWS::Lambda::Function", "couch-http"),
            ours("function.worker", "AWS::Lambda::Function", "couch-worker"),
            ours("queue.prompts", "AWS::SQS::Queue", "couch-prompts"),
        ];
        let retain: BTreeSet<String> = ["Role".to_owned()].into();
        let f = fates(&old, &ours, &retain);
        assert_eq!(
            f,
            [
                Fate::ReplacedBy(vec!["function.http".into(), "function.worker".into()]),
                Fate::Retained,
                Fate::Shared("queue.prompts".into()),
                Fate::Deleted,
            ]
        );
        // The shared queue must be retained, and --retain must name real ids.
        let retain_more: BTreeSet<String> = ["Role".to_owned(), "Nope".to_owned()].into();
        let problems = refusals(&old, &f, &retain_more);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("--retain Nope"));
        assert!(problems[1].contains("add --retain Queue"));
        assert!(table(&old, &f).contains("deleted; replaced by function.http, function.worker"));
    }

    #[test]
    fn retained_resources_get_a_retain_deletion_policy_once() {
        let t = json!({"Resources": {"Role": {"Type": "AWS::IAM::Role"}, "Fn": {"Type": "AWS::Lambda::Function"}}});
        let retain: BTreeSet<String> = ["Role".to_owned()].into();
        let changed = retaining(&t, &retain).expect("changed");
        assert_eq!(changed["Resources"]["Role"]["DeletionPolicy"], "Retain");
        assert_eq!(
            changed["Resources"]["Role"]["UpdateReplacePolicy"],
            "Retain"
        );
        assert!(changed["Resources"]["Fn"].get("DeletionPolicy").is_none());
        assert_eq!(retaining(&changed, &retain), None);
    }
}
