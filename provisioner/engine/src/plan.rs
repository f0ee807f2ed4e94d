//! Reading live state and computing a [`Plan`]: a pure function of the
//! declared resources and a [`Snapshot`] of what exists.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;

use super::diff::{FieldChange, diff};
use super::permission_changes::{self, PermissionChange};
use super::refs::{dependencies, resolve};
use super::resource::{Attrs, Fields, Finding, Live, Resource, ResourceError};

/// What happens to one resource. Everything else (symbols, JSON, scheduling)
/// is a function of this value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Create the new one, then delete the old one.
    Replace,
    Delete,
    /// Exists with our physical name but without our ownership tags.
    NotOwned,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NotOwned => "!",
        }
    }
    /// Whether executing the plan does anything for this change.
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update | Action::Replace | Action::Delete
        )
    }
}

/// One resource's line in a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub address: String,
    pub kind: String,
    pub name: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// Only referenced by the stack (never created, changed or deleted).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub referenced: bool,
    /// Addresses this resource references (creation order; reversed for deletes).
    #[serde(skip)]
    pub depends_on: BTreeSet<String>,
    /// For the deletion of an owned duplicate: the address of the resource it
    /// duplicates (this change's address is `{that} (duplicate {id})`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
}

/// The plan is a value: computed once, rendered many ways, then executed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub stack: String,
    pub changes: Vec<Change>,
    pub summary: Summary,
    /// Reasons `apply` must refuse (missing referenced resources, not-owned ones).
    pub problems: Vec<String>,
    /// Things the user should know that do not stop `apply`.
    pub warnings: Vec<String>,
    /// Every change to what anyone may do (the permission section).
    pub permission_changes: Vec<PermissionChange>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.mutates())
    }
    /// The permission changes that grant more than before.
    pub fn broadening(&self) -> impl Iterator<Item = &PermissionChange> {
        self.permission_changes.iter().filter(|c| c.broadening)
    }
    pub fn change(&self, address: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.address == address)
    }
}

/// `Apply` brings the account to the declaration; `Destroy` removes what the stack owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Destroy,
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub stack: String,
    pub mode: Mode,
    /// Take over same-named resources that lack our ownership tags.
    pub adopt: bool,
}

/// What exists, by address (`None`: does not exist). Empty for `--offline`.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub live: HashMap<String, Option<Live>>,
    /// Attributes of resources that do not exist yet, as AWS will derive them.
    pub predicted: HashMap<String, Attrs>,
    /// What each resource's [`Resource::check`] found, whether it exists or not.
    pub checked: HashMap<String, Vec<Finding>>,
}

impl Snapshot {
    pub fn get(&self, address: &str) -> Option<&Live> {
        self.live.get(address).and_then(Option::as_ref)
    }
    /// The live resource a change acts on: its own, or the duplicate it deletes.
    pub fn live_for(&self, change: &Change) -> Option<Live> {
        match &change.duplicate_of {
            None => self.get(&change.address).cloned(),
            Some(of) => self.get(of).and_then(|l| {
                l.duplicates
                    .iter()
                    .find(|(id, _)| duplicate_address(of, id) == change.address)
                    .map(|(_, d)| d.clone())
            }),
        }
    }
    /// `attr` of the resource at `address`, if it exists.
    pub fn attr(&self, address: &str, attr: &str) -> Option<String> {
        self.get(address).and_then(|l| l.attrs.get(attr).cloned())
    }
}

/// `api.http (duplicate jcwlwabs)`: the address of an owned duplicate's deletion.
pub fn duplicate_address(address: &str, id: &str) -> String {
    format!("{address} (duplicate {id})")
}

/// Reads every resource concurrently. Errors are collected, not short-circuited,
/// so the user sees all of them.
pub async fn read_all(
    resources: &[Arc<dyn Resource>],
) -> Result<Snapshot, Vec<(String, ResourceError)>> {
    let reads = resources.iter().map(|r| async move {
        let (read, checked) = tokio::join!(
            async {
                match r.read().await {
                    Ok(None) => r.predict().await.map(|p| (None, Some(p))),
                    other => other.map(|live| (live, None)),
                }
            },
            r.check()
        );
        (r.address().to_owned(), read, checked)
    });
    let mut snapshot = Snapshot::default();
    let mut errors = Vec::new();
    for (address, result, checked) in join_all(reads).await {
        // A check that could not be made stops an apply (it is a problem),
        // not a destroy or a read, which do not need it.
        let found = checked
            .unwrap_or_else(|e| vec![Finding::Problem(format!("could not be checked: {e}"))]);
        if !found.is_empty() {
            snapshot.checked.insert(address.clone(), found);
        }
        match result {
            Ok((live, predicted)) => {
                if let Some(p) = predicted {
                    snapshot.predicted.insert(address.clone(), p);
                }
                snapshot.live.insert(address, live);
            }
            Err(e) => errors.push((address, e)),
        }
    }
    if errors.is_empty() {
        Ok(snapshot)
    } else {
        Err(errors)
    }
}

/// The tag every resource the provisioner creates carries, with this value.
pub const MANAGED_BY_KEY: &str = "managed-by";
pub const MANAGED_BY_VALUE: &str = "couch-provisioner";
/// The tag that names the owning stack.
pub const STACK_KEY: &str = "stack";

/// Whether a live resource carries this stack's ownership tags.
pub fn owned_by(resource: &dyn Resource, live: &Live, stack: &str) -> bool {
    if !resource.taggable() {
        return true;
    }
    let Some(Value::Object(tags)) = live.fields.get(crate::typed::TAGS) else {
        return false;
    };
    tags.get(MANAGED_BY_KEY).and_then(Value::as_str) == Some(MANAGED_BY_VALUE)
        && tags.get(STACK_KEY).and_then(Value::as_str) == Some(stack)
}

/// Desired fields with references resolved from the snapshot; the names of the
/// fields that depend on something not existing yet.
pub fn resolve_fields(
    resource: &dyn Resource,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
) -> (Fields, Vec<String>) {
    let mut unknown = Vec::new();
    let fields = resource
        .desired()
        .into_iter()
        .map(|(k, v)| {
            let (v, known) = resolve(&v, lookup);
            if !known {
                unknown.push(k.clone());
            }
            (k, v)
        })
        .collect();
    (fields, unknown)
}

/// Addresses a resource depends on, from the references in its desired fields.
pub fn depends_on(resource: &dyn Resource) -> BTreeSet<String> {
    resource.desired().values().flat_map(dependencies).collect()
}

/// Computes the plan. Pure: no AWS call. A resource with a planned change
/// has its volatile attributes forgotten, and the plan is computed again
/// until nothing more is forgotten (what refers to them changes too).
pub fn compute(resources: &[Arc<dyn Resource>], snapshot: &Snapshot, opts: &PlanOptions) -> Plan {
    let mut known = known_attrs(resources, snapshot);
    loop {
        let plan = compute_knowing(resources, snapshot, opts, &known);
        let mut forgot = false;
        for r in resources.iter().filter(|r| !r.volatile().is_empty()) {
            let changes = plan
                .changes
                .iter()
                .any(|c| c.address == r.address() && c.action.mutates());
            if let (true, Some(attrs)) = (changes, known.get_mut(r.address())) {
                for attr in r.volatile() {
                    forgot |= attrs.remove(*attr).is_some();
                }
            }
        }
        if !forgot {
            return plan;
        }
    }
}

fn compute_knowing(
    resources: &[Arc<dyn Resource>],
    snapshot: &Snapshot,
    opts: &PlanOptions,
    known: &BTreeMap<String, Attrs>,
) -> Plan {
    let lookup = |addr: &str, attr: &str| known.get(addr).and_then(|a| a.get(attr).cloned());
    let mut p = Planning {
        opts,
        lookup: &lookup,
        plan: Plan {
            stack: opts.stack.clone(),
            changes: Vec::new(),
            summary: Summary::default(),
            problems: Vec::new(),
            warnings: Vec::new(),
            permission_changes: Vec::new(),
        },
    };
    let declared: BTreeSet<&str> = resources.iter().map(|r| r.address()).collect();
    for r in resources {
        let r = r.as_ref();
        let deps = depends_on(r);
        for d in deps.iter().filter(|d| !declared.contains(d.as_str())) {
            p.plan.problems.push(format!(
                "{} refers to {d}, which this stack does not declare",
                r.address()
            ));
        }
        let live = snapshot.get(r.address());
        if opts.mode == Mode::Apply {
            p.findings(r, live, snapshot);
        }
        let change = Change {
            address: r.address().to_owned(),
            kind: r.kind().to_owned(),
            name: r.name().to_owned(),
            action: Action::NoOp,
            fields: Vec::new(),
            referenced: !r.managed(),
            depends_on: deps,
            duplicate_of: None,
        };
        if !r.managed() {
            p.referenced(r, change, live, snapshot);
            continue;
        }
        let duplicates = p.duplicates(r, live);
        let mode = if r.declared().absent {
            // Not wanted: deleted when this stack owns it, else nothing.
            match live {
                Some(l) if owned_by(r, l, &opts.stack) => Mode::Destroy,
                _ => continue,
            }
        } else {
            opts.mode
        };
        let change = match (mode, live) {
            (Mode::Apply, None) => p.create(r, change),
            (Mode::Apply, Some(live)) => p.update(r, change, live),
            (Mode::Destroy, None) => continue,
            (Mode::Destroy, Some(live)) => p.delete(r, change, live),
        };
        p.plan.changes.push(change);
        p.plan.changes.extend(duplicates);
    }
    let mut plan = p.plan;
    if opts.mode == Mode::Destroy {
        for c in plan.changes.iter().filter(|c| c.action == Action::NotOwned) {
            plan.warnings.push(format!(
                "{} {:?} ({}) is not owned by this stack and is left alone",
                c.kind, c.name, c.address
            ));
        }
    }
    plan
}

/// A plan being computed: one resource at a time, each case a method.
struct Planning<'a> {
    opts: &'a PlanOptions,
    lookup: &'a dyn Fn(&str, &str) -> Option<String>,
    plan: Plan,
}

impl Planning<'_> {
    /// What reading and checking the resource found: problems and warnings.
    fn findings(&mut self, r: &dyn Resource, live: Option<&Live>, snapshot: &Snapshot) {
        let checked = snapshot.checked.get(r.address()).map(Vec::as_slice);
        let found = live.map(|l| l.findings.as_slice()).unwrap_or_default();
        for finding in found.iter().chain(checked.unwrap_or_default()) {
            match finding {
                Finding::Problem(m) => self.plan.problems.push(format!("{}: {m}", r.address())),
                Finding::Warning(m) => self.plan.warnings.push(format!("{}: {m}", r.address())),
            }
        }
    }

    /// A referenced resource: shown when applying, a problem when it was
    /// read and found absent (`--offline` reads nothing; destroying what
    /// the stack owns never needs it).
    fn referenced(
        &mut self,
        r: &dyn Resource,
        change: Change,
        live: Option<&Live>,
        snapshot: &Snapshot,
    ) {
        if self.opts.mode != Mode::Apply {
            return;
        }
        if live.is_none() && snapshot.live.contains_key(r.address()) {
            self.plan.problems.push(format!(
                "{} {:?} ({}) does not exist; this stack references it but does not create it",
                r.kind(),
                r.name(),
                r.address()
            ));
        }
        self.plan.changes.push(change);
    }

    /// Owned duplicates (ids AWS does not make unique): deleted, in either mode.
    fn duplicates(&mut self, r: &dyn Resource, live: Option<&Live>) -> Vec<Change> {
        let duplicates: Vec<Change> = live
            .map(|l| l.duplicates.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|(id, _)| Change {
                address: duplicate_address(r.address(), id),
                kind: r.kind().to_owned(),
                name: r.name().to_owned(),
                action: Action::Delete,
                fields: Vec::new(),
                referenced: false,
                depends_on: BTreeSet::new(),
                duplicate_of: Some(r.address().to_owned()),
            })
            .collect();
        self.plan.summary.delete += duplicates.len();
        duplicates
    }

    fn create(&mut self, r: &dyn Resource, mut change: Change) -> Change {
        let (desired, unknown) = resolve_fields(r, self.lookup);
        self.plan
            .permission_changes
            .extend(permission_changes::changes(
                r.address(),
                &[],
                &r.permissions(&desired),
            ));
        change.action = Action::Create;
        change.fields = diff(&desired, &unknown, &Fields::new());
        self.plan.summary.create += 1;
        change
    }

    /// An existing resource: its field changes, and whether they update it,
    /// replace it, or (not owned, without `--adopt`) are refused.
    fn update(&mut self, r: &dyn Resource, mut change: Change, live: &Live) -> Change {
        let (desired, unknown) = resolve_fields(r, self.lookup);
        change.fields = diff(&desired, &unknown, &live.fields);
        let stack = &self.opts.stack;
        change.action = if !owned_by(r, live, stack) && !self.opts.adopt {
            self.plan.problems.push(format!(
                "{} {:?} ({}) exists but is not owned by stack {stack:?} (no tags {MANAGED_BY_KEY}={MANAGED_BY_VALUE}, {STACK_KEY}={stack}); apply will not touch it. Re-run with --adopt to take it over.",
                r.kind(),
                r.name(),
                r.address(),
            ));
            Action::NotOwned
        } else if change.fields.is_empty() {
            Action::NoOp
        } else if change
            .fields
            .iter()
            .any(|f| r.replace_on().contains(&f.field()))
        {
            self.plan.summary.replace += 1;
            Action::Replace
        } else {
            self.plan.summary.update += 1;
            Action::Update
        };
        if change.action.mutates() {
            self.plan
                .permission_changes
                .extend(permission_changes::changes(
                    r.address(),
                    &r.permissions(&live.fields),
                    &r.permissions(&desired),
                ));
        }
        change
    }

    /// Destroying: what this stack owns is deleted, field by field.
    fn delete(&mut self, r: &dyn Resource, mut change: Change, live: &Live) -> Change {
        if !owned_by(r, live, &self.opts.stack) {
            change.action = Action::NotOwned;
            return change;
        }
        change.action = Action::Delete;
        // What is deleted grants nothing any more: a limit it carried (a
        // boundary, a Deny) goes with what it limited.
        self.plan.permission_changes.extend(
            permission_changes::changes(r.address(), &r.permissions(&live.fields), &[])
                .into_iter()
                .map(|c| PermissionChange {
                    broadening: false,
                    ..c
                }),
        );
        change.fields = live
            .fields
            .iter()
            .map(|(k, v)| FieldChange {
                path: k.clone(),
                before: v.clone(),
                after: Some(Value::Null),
            })
            .collect();
        self.plan.summary.delete += 1;
        change
    }
}

/// Every attribute known before applying, keyed by address: what the
/// declarations determine, what AWS will derive for resources not created yet,
/// and what live resources report (which wins).
pub fn known_attrs(
    resources: &[Arc<dyn Resource>],
    snapshot: &Snapshot,
) -> BTreeMap<String, Attrs> {
    let mut out: BTreeMap<String, Attrs> = resources
        .iter()
        .map(|r| (r.address().to_owned(), r.declared().known.clone()))
        .collect();
    for (address, predicted) in &snapshot.predicted {
        out.entry(address.clone())
            .or_default()
            .extend(predicted.clone());
    }
    for (address, live) in &snapshot.live {
        if let Some(live) = live {
            out.entry(address.clone())
                .or_default()
                .extend(live.attrs.clone());
        }
    }
    out
}
