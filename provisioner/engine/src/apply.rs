//! Executes a plan as a dependency graph: a change starts as soon as the
//! changes it depends on are done (creates and updates in reference order,
//! deletes in reverse), independent changes run concurrently. Progress is
//! reported as [`Event`]s; anything that takes long reports its elapsed time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock: the same as std's at run time, and controllable in tests.
use tokio::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};

use super::diff::diff;
use super::plan::{Action, Change, Plan, Snapshot, known_attrs, resolve_fields};
use super::resource::{DeleteOutcome, Fields, Live, Resource, ResourceError};

/// Progress of an apply, for the user interface.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        address: String,
        action: Action,
    },
    StillRunning {
        address: String,
        action: Action,
        elapsed: Duration,
        /// What it is waiting for, if not its call: `ConflictException,
        /// retrying`, `waiting until Active` ([`super::retry`]).
        note: Option<String>,
    },
    Finished {
        address: String,
        action: Action,
        elapsed: Duration,
        id: Option<String>,
    },
    Warning {
        address: String,
        message: String,
    },
    Failed {
        address: String,
        action: Action,
        error: String,
    },
    Skipped {
        address: String,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("apply refused: {}", .0.join("; "))]
    Refused(Vec<String>),
    #[error("{} change(s) failed:\n{}", .0.len(), .0.iter().map(|(a, e)| format!("  {a}: {e}")).collect::<Vec<_>>().join("\n"))]
    Failed(Vec<(String, String)>),
}

/// How often a long-running change reports that it is still running.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

type Attrs = Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>;

fn lock_attrs(
    attrs: &Attrs,
) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, String>>> {
    // A poisoned lock only means another change panicked; the map is still usable.
    attrs.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which changes must finish before `c` may start.
fn blockers(c: &Change, plan: &Plan) -> BTreeSet<String> {
    let active: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action.mutates())
        .map(|c| c.address.as_str())
        .collect();
    if c.action == Action::Delete {
        // Delete dependents first.
        plan.changes
            .iter()
            .filter(|o| o.action == Action::Delete && o.depends_on.contains(&c.address))
            .map(|o| o.address.clone())
            .collect()
    } else {
        c.depends_on
            .iter()
            .filter(|d| active.contains(d.as_str()))
            .cloned()
            .collect()
    }
}

/// Executes `plan` against `resources`, whose live state is `snapshot`.
/// Refuses before touching anything if the plan has problems.
pub async fn execute(
    plan: &Plan,
    resources: &[Arc<dyn Resource>],
    snapshot: &Snapshot,
    report: &(dyn Fn(Event) + Sync),
) -> Result<(), ApplyError> {
    execute_beating(plan, resources, snapshot, report, HEARTBEAT).await
}

/// [`execute`], reporting [`Event::StillRunning`] every `heartbeat`.
pub(crate) async fn execute_beating(
    plan: &Plan,
    resources: &[Arc<dyn Resource>],
    snapshot: &Snapshot,
    report: &(dyn Fn(Event) + Sync),
    heartbeat: Duration,
) -> Result<(), ApplyError> {
    if !plan.problems.is_empty() {
        return Err(ApplyError::Refused(plan.problems.clone()));
    }
    let by_address: HashMap<&str, &Arc<dyn Resource>> =
        resources.iter().map(|r| (r.address(), r)).collect();
    let attrs: Attrs = Arc::new(Mutex::new(known_attrs(resources, snapshot)));
    let mut pending: Vec<&Change> = plan.changes.iter().filter(|c| c.action.mutates()).collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut given_up: BTreeSet<String> = BTreeSet::new();
    let mut running = FuturesUnordered::new();

    loop {
        // Start everything whose blockers are done; give up on what depends on a failure.
        let mut i = 0;
        while i < pending.len() {
            let c = pending[i];
            let blocked_by = blockers(c, plan);
            if let Some(bad) = blocked_by.iter().find(|b| given_up.contains(*b)) {
                report(Event::Skipped {
                    address: c.address.clone(),
                    reason: format!("{bad} did not complete"),
                });
                given_up.insert(c.address.clone());
                pending.remove(i);
                continue;
            }
            if blocked_by.iter().all(|b| done.contains(b)) {
                pending.remove(i);
                let of = c.duplicate_of.as_deref().unwrap_or(&c.address);
                let Some(resource) = by_address.get(of) else {
                    failed.push((c.address.clone(), "no such resource declared".into()));
                    given_up.insert(c.address.clone());
                    continue;
                };
                let resource = Arc::clone(resource);
                let live = snapshot.live_for(c);
                let attrs = Arc::clone(&attrs);
                running.push(async move {
                    let address = c.address.clone();
                    let result =
                        run_with_heartbeat(c, resource.as_ref(), live, &attrs, report, heartbeat)
                            .await;
                    (address, c.action, result)
                });
                continue;
            }
            i += 1;
        }
        let Some((address, action, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(()) => {
                done.insert(address);
            }
            Err(e) => {
                report(Event::Failed {
                    address: address.clone(),
                    action,
                    error: e.message.clone(),
                });
                failed.push((address.clone(), e.message));
                given_up.insert(address);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Failed(failed))
    }
}

async fn run_with_heartbeat(
    c: &Change,
    resource: &dyn Resource,
    live: Option<Live>,
    attrs: &Attrs,
    report: &(dyn Fn(Event) + Sync),
    heartbeat: Duration,
) -> Result<(), ResourceError> {
    let start = Instant::now();
    report(Event::Started {
        address: c.address.clone(),
        action: c.action,
    });
    let (progress, mut notes) = super::retry::Progress::new();
    let work = super::retry::scoped(progress, run(c, resource, live, attrs, report));
    tokio::pin!(work);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut noted: Option<String> = None;
    let still = |note: Option<String>| Event::StillRunning {
        address: c.address.clone(),
        action: c.action,
        elapsed: start.elapsed(),
        note,
    };
    let id = loop {
        tokio::select! {
            r = &mut work => break r?,
            _ = beat.tick() => report(still(notes.borrow().clone())),
            Ok(()) = notes.changed() => {
                // A new reason to wait is shown at once; its repeats and its
                // end wait for the heartbeat.
                let now = notes.borrow_and_update().clone();
                if now.is_some() && now != noted {
                    report(still(now.clone()));
                }
                noted = now;
            }
        }
    };
    report(Event::Finished {
        address: c.address.clone(),
        action: c.action,
        elapsed: start.elapsed(),
        id,
    });
    Ok(())
}

fn desired_now(resource: &dyn Resource, attrs: &Attrs) -> Result<Fields, ResourceError> {
    let known = lock_attrs(attrs).clone();
    let lookup = |addr: &str, attr: &str| known.get(addr).and_then(|a| a.get(attr).cloned());
    let (fields, unknown) = resolve_fields(resource, &lookup);
    if unknown.is_empty() {
        Ok(fields)
    } else {
        Err(ResourceError::new(format!(
            "cannot resolve {} of {}: a dependency did not produce the attribute",
            unknown.join(", "),
            resource.address()
        )))
    }
}

/// Executes one change; returns the identifier to show.
async fn run(
    c: &Change,
    resource: &dyn Resource,
    live: Option<Live>,
    attrs: &Attrs,
    report: &(dyn Fn(Event) + Sync),
) -> Result<Option<String>, ResourceError> {
    let missing = || {
        ResourceError::new(format!(
            "{} vanished while the plan ran; re-run apply",
            c.address
        ))
    };
    let id_of = |l: &Live| l.attrs.get("arn").or_else(|| l.attrs.get("url")).cloned();
    match c.action {
        Action::Create => {
            let desired = desired_now(resource, attrs)?;
            let created = resource.create(&desired).await?;
            lock_attrs(attrs).insert(c.address.clone(), created.attrs.clone());
            Ok(id_of(&created))
        }
        Action::Update => {
            let live = live.ok_or_else(missing)?;
            let desired = desired_now(resource, attrs)?;
            // Re-diff with references now resolved: a field "known after apply" may turn out equal.
            let changed: BTreeSet<String> = diff(&desired, &[], &live.fields)
                .iter()
                .map(|f| f.field().to_owned())
                .collect();
            if !changed.is_empty() {
                resource.update(&live, &desired, &changed).await?;
                if !resource.volatile().is_empty() {
                    // What refers to it waits for the attributes the update changed.
                    let now = resource.read().await?.ok_or_else(missing)?;
                    lock_attrs(attrs).insert(c.address.clone(), now.attrs);
                }
            }
            Ok(id_of(&live))
        }
        Action::Replace => {
            let old = live.ok_or_else(missing)?;
            let desired = desired_now(resource, attrs)?;
            let created = resource.create(&desired).await?;
            lock_attrs(attrs).insert(c.address.clone(), created.attrs.clone());
            if let DeleteOutcome::Skipped(why) = resource.delete(&old).await? {
                report(Event::Warning {
                    address: c.address.clone(),
                    message: format!("the old one was not deleted: {why}"),
                });
            }
            Ok(id_of(&created))
        }
        Action::Delete => {
            let live = live.ok_or_else(missing)?;
            if let DeleteOutcome::Skipped(why) = resource.delete(&live).await? {
                report(Event::Warning {
                    address: c.address.clone(),
                    message: format!("not deleted: {why}"),
                });
            }
            Ok(id_of(&live))
        }
        Action::NoOp | Action::NotOwned => Ok(None),
    }
}
