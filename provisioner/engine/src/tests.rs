//! The engine with an in-memory resource kind: planning and execution rules
//! without any AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::plan::{Mode, PlanOptions, Snapshot, compute, read_all};
use super::refs::reference;
use super::*;

/// An account: address → live fields; plus a log of operations in order.
#[derive(Default)]
struct Account {
    objects: Mutex<BTreeMap<String, Fields>>,
    log: Mutex<Vec<String>>,
    fail: Mutex<BTreeSet<String>>,
    /// Deletes AWS refuses for now (like a pending e-mail subscription).
    undeletable: Mutex<BTreeSet<String>>,
}

struct Fake {
    declared: Declared,
    replace_on: &'static [&'static str],
    account: Arc<Account>,
}

impl Fake {
    fn resource(account: &Arc<Account>, address: &str, fields: Value) -> Arc<dyn Resource> {
        Arc::new(Fake {
            declared: Declared::new(
                address,
                address,
                fields.as_object().unwrap().clone().into_iter().collect(),
            ),
            replace_on: &["immutable"],
            account: Arc::clone(account),
        })
    }
    fn record(&self, op: &str) -> Result<(), ResourceError> {
        self.account
            .log
            .lock()
            .unwrap()
            .push(format!("{op} {}", self.declared.address));
        if self
            .account
            .fail
            .lock()
            .unwrap()
            .contains(&self.declared.address)
        {
            return Err(ResourceError::new("boom"));
        }
        Ok(())
    }
}

fn live_of(address: &str, fields: &Fields) -> Live {
    Live {
        fields: fields.clone(),
        attrs: [
            ("arn".to_owned(), format!("arn:fake:{address}")),
            // Changes with every update, like a function's published version.
            (
                "revision".to_owned(),
                Value::Object(fields.clone().into_iter().collect()).to_string(),
            ),
        ]
        .into(),
        ..Live::default()
    }
}

#[async_trait]
impl Resource for Fake {
    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn replace_on(&self) -> Vec<&'static str> {
        self.replace_on.to_vec()
    }
    fn volatile(&self) -> &'static [&'static str] {
        &["revision"]
    }
    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        Ok(self
            .account
            .objects
            .lock()
            .unwrap()
            .get(&self.declared.address)
            .map(|f| live_of(&self.declared.address, f)))
    }
    async fn create(&self, desired: &Fields) -> Result<Live, ResourceError> {
        self.record("create")?;
        self.account
            .objects
            .lock()
            .unwrap()
            .insert(self.declared.address.clone(), desired.clone());
        Ok(live_of(&self.declared.address, desired))
    }
    async fn update(
        &self,
        _live: &Live,
        desired: &Fields,
        _changed: &BTreeSet<String>,
    ) -> Result<(), ResourceError> {
        self.record("update")?;
        self.account
            .objects
            .lock()
            .unwrap()
            .insert(self.declared.address.clone(), desired.clone());
        Ok(())
    }
    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        self.record("delete")?;
        if self
            .account
            .undeletable
            .lock()
            .unwrap()
            .contains(&self.declared.address)
        {
            return Ok(DeleteOutcome::Skipped("pending confirmation".into()));
        }
        self.account
            .objects
            .lock()
            .unwrap()
            .remove(&self.declared.address);
        Ok(DeleteOutcome::Deleted)
    }
}

/// A resource that does not exist and whose create runs `on_create`.
struct OnCreate<F> {
    declared: Declared,
    on_create: F,
}

impl<F, Fut> OnCreate<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    fn resource(address: &str, on_create: F) -> Arc<dyn Resource> {
        Arc::new(OnCreate {
            declared: Declared::new(address, address, Fields::new()),
            on_create,
        })
    }
}

#[async_trait]
impl<F, Fut> Resource for OnCreate<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: std::future::Future<Output = ()> + Send,
{
    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn kind(&self) -> &'static str {
        "on-create"
    }
    fn taggable(&self) -> bool {
        false
    }
    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        Ok(None)
    }
    async fn create(&self, _: &Fields) -> Result<Live, ResourceError> {
        (self.on_create)().await;
        Ok(Live::default())
    }
    async fn update(
        &self,
        _: &Live,
        _: &Fields,
        _: &BTreeSet<String>,
    ) -> Result<(), ResourceError> {
        Ok(())
    }
    async fn delete(&self, _: &Live) -> Result<DeleteOutcome, ResourceError> {
        Ok(DeleteOutcome::Deleted)
    }
}

fn tags(stack: &str) -> Value {
    json!({"managed-by": "couch-provisioner", "stack": stack})
}

/// a ← b ← c (c references b, b references a), and d alone.
fn world(account: &Arc<Account>) -> Vec<Arc<dyn Resource>> {
    vec![
        Fake::resource(
            account,
            "c",
            json!({"parent": reference("b", "arn"), "tags": tags("s")}),
        ),
        Fake::resource(
            account,
            "b",
            json!({"parent": reference("a", "arn"), "immutable": 1, "tags": tags("s")}),
        ),
        Fake::resource(account, "a", json!({"size": 1, "tags": tags("s")})),
        Fake::resource(account, "d", json!({"size": 2, "tags": tags("s")})),
    ]
}

fn opts(mode: Mode, adopt: bool) -> PlanOptions {
    PlanOptions {
        stack: "s".into(),
        mode,
        adopt,
    }
}

async fn plan(rs: &[Arc<dyn Resource>], mode: Mode, adopt: bool) -> (Plan, Snapshot) {
    let snap = read_all(rs).await.unwrap();
    (compute(rs, &snap, &opts(mode, adopt)), snap)
}

async fn apply(rs: &[Arc<dyn Resource>], mode: Mode, adopt: bool) -> Result<(), ApplyError> {
    let (p, snap) = plan(rs, mode, adopt).await;
    execute(&p, rs, &snap, &|_| {}).await
}

fn log(account: &Account) -> Vec<String> {
    std::mem::take(&mut *account.log.lock().unwrap())
}

fn pos(log: &[String], entry: &str) -> usize {
    log.iter()
        .position(|l| l == entry)
        .unwrap_or_else(|| panic!("{entry} not in {log:?}"))
}

#[tokio::test]
async fn creates_follow_references_and_resolve_them() {
    let account = Arc::new(Account::default());
    let rs = world(&account);
    let (p, _) = plan(&rs, Mode::Apply, false).await;
    assert_eq!(p.summary.create, 4);
    assert_eq!(
        p.change("c")
            .unwrap()
            .fields
            .iter()
            .find(|f| f.path == "parent")
            .unwrap()
            .after,
        None
    );
    apply(&rs, Mode::Apply, false).await.unwrap();
    let l = log(&account);
    assert!(pos(&l, "create a") < pos(&l, "create b"));
    assert!(pos(&l, "create b") < pos(&l, "create c"));
    assert_eq!(
        account.objects.lock().unwrap()["c"]["parent"],
        json!("arn:fake:b")
    );
    // Apply twice is a no-op.
    let (p, _) = plan(&rs, Mode::Apply, false).await;
    assert!(!p.has_changes(), "{p:#?}");
    apply(&rs, Mode::Apply, false).await.unwrap();
    assert!(log(&account).is_empty());
}

#[tokio::test]
async fn changed_field_is_update_and_immutable_field_is_replace() {
    let account = Arc::new(Account::default());
    apply(&world(&account), Mode::Apply, false).await.unwrap();
    log(&account);
    account
        .objects
        .lock()
        .unwrap()
        .get_mut("a")
        .unwrap()
        .insert("size".into(), json!(5));
    account
        .objects
        .lock()
        .unwrap()
        .get_mut("b")
        .unwrap()
        .insert("immutable".into(), json!(9));
    let rs = world(&account);
    let (p, _) = plan(&rs, Mode::Apply, false).await;
    assert_eq!(p.change("a").unwrap().action, Action::Update);
    assert_eq!(p.change("b").unwrap().action, Action::Replace);
    assert_eq!(p.change("c").unwrap().action, Action::NoOp);
    assert_eq!(
        p.summary,
        Summary {
            create: 0,
            update: 1,
            replace: 1,
            delete: 0
        }
    );
    assert_eq!(
        render::summary_line(&p),
        "Plan: 1 to add, 1 to change, 1 to destroy. (1 replaced)"
    );
    apply(&rs, Mode::Apply, false).await.unwrap();
    let l = log(&account);
    // Replace creates the new one before deleting the old one.
    assert!(pos(&l, "create b") < pos(&l, "delete b"), "{l:?}");
}

#[tokio::test]
async fn what_refers_to_a_volatile_attribute_changes_with_it() {
    let account = Arc::new(Account::default());
    let world = |size: u32| {
        vec![
            Fake::resource(
                &account,
                "alias",
                json!({"version": reference("function", "revision"), "tags": tags("s")}),
            ),
            Fake::resource(
                &account,
                "function",
                json!({"size": size, "tags": tags("s")}),
            ),
        ]
    };
    apply(&world(1), Mode::Apply, false).await.unwrap();
    log(&account);
    let (p, _) = plan(&world(1), Mode::Apply, false).await;
    assert!(!p.has_changes(), "unchanged: no change planned: {p:#?}");

    // A changed function: what refers to its revision is "known after apply"
    // and changes after it, with the revision the update produced.
    let rs = world(2);
    let (p, _) = plan(&rs, Mode::Apply, false).await;
    assert_eq!(p.change("function").unwrap().action, Action::Update);
    let alias = p.change("alias").unwrap();
    assert_eq!(alias.action, Action::Update);
    assert_eq!(alias.fields.len(), 1);
    assert_eq!(alias.fields[0].path, "version");
    assert_eq!(alias.fields[0].after, None, "known after apply");
    apply(&rs, Mode::Apply, false).await.unwrap();
    let l = log(&account);
    assert!(
        pos(&l, "update function") < pos(&l, "update alias"),
        "{l:?}"
    );
    let objects = account.objects.lock().unwrap().clone();
    assert_eq!(
        objects["alias"]["version"],
        json!(live_of("function", &objects["function"]).attrs["revision"])
    );
    let (p, _) = plan(&rs, Mode::Apply, false).await;
    assert!(!p.has_changes(), "converged: {p:#?}");
}

#[tokio::test]
async fn foreign_resources_are_not_owned_unless_adopted() {
    let account = Arc::new(Account::default());
    account
        .objects
        .lock()
        .unwrap()
        .insert("d".into(), [("size".to_owned(), json!(2))].into());
    let rs = world(&account);
    let (p, _) = plan(&rs, Mode::Apply, false).await;
    assert_eq!(p.change("d").unwrap().action, Action::NotOwned);
    assert_eq!(p.problems.len(), 1);
    assert!(p.problems[0].contains("--adopt"));
    let err = apply(&rs, Mode::Apply, false).await.unwrap_err();
    assert!(matches!(err, ApplyError::Refused(_)));
    assert!(log(&account).is_empty(), "refusal touches nothing");

    let (p, _) = plan(&rs, Mode::Apply, true).await;
    let d = p.change("d").unwrap();
    assert_eq!(d.action, Action::Update);
    assert!(d.fields.iter().any(|f| f.path == "tags"), "{d:#?}");
    apply(&rs, Mode::Apply, true).await.unwrap();
    assert_eq!(account.objects.lock().unwrap()["d"]["tags"], tags("s"));
}

/// `d` declared as not wanted, like an optional section left out.
fn without_d(account: &Arc<Account>) -> Vec<Arc<dyn Resource>> {
    let mut rs = world(account);
    rs.pop();
    rs.push(Arc::new(Fake {
        declared: Declared::new("d", "d", Fields::new()).absent(),
        replace_on: &[],
        account: Arc::clone(account),
    }));
    rs
}

#[tokio::test]
async fn an_absent_resource_is_deleted_if_ours_and_otherwise_not_planned() {
    let account = Arc::new(Account::default());
    // Never created: nothing to plan for it.
    let (p, _) = plan(&without_d(&account), Mode::Apply, false).await;
    assert!(p.change("d").is_none(), "{p:#?}");
    assert_eq!(p.summary.create, 3);
    // Created while declared, then left out: apply deletes it, once.
    apply(&world(&account), Mode::Apply, false).await.unwrap();
    log(&account);
    let (p, _) = plan(&without_d(&account), Mode::Apply, false).await;
    assert_eq!(p.change("d").unwrap().action, Action::Delete);
    assert_eq!(
        (p.summary.delete, p.summary.create, p.summary.update),
        (1, 0, 0)
    );
    apply(&without_d(&account), Mode::Apply, false)
        .await
        .unwrap();
    assert_eq!(log(&account), ["delete d"]);
    let (p, _) = plan(&without_d(&account), Mode::Apply, false).await;
    assert!(!p.has_changes());
    // Someone else's of that name: left alone, not even shown.
    account
        .objects
        .lock()
        .unwrap()
        .insert("d".into(), [("tags".to_owned(), tags("other"))].into());
    let (p, _) = plan(&without_d(&account), Mode::Apply, false).await;
    assert!(p.change("d").is_none() && p.problems.is_empty(), "{p:#?}");
}

#[tokio::test]
async fn another_stacks_resource_is_not_owned() {
    let account = Arc::new(Account::default());
    account.objects.lock().unwrap().insert(
        "d".into(),
        [
            ("size".to_owned(), json!(2)),
            ("tags".to_owned(), tags("other")),
        ]
        .into(),
    );
    let (p, _) = plan(&world(&account), Mode::Apply, false).await;
    assert_eq!(p.change("d").unwrap().action, Action::NotOwned);
}

#[tokio::test]
async fn destroy_deletes_dependents_first_and_leaves_foreign_alone() {
    let account = Arc::new(Account::default());
    let rs = world(&account);
    apply(&rs, Mode::Apply, false).await.unwrap();
    log(&account);
    account
        .objects
        .lock()
        .unwrap()
        .get_mut("d")
        .unwrap()
        .insert("tags".into(), json!({}));
    let (p, _) = plan(&rs, Mode::Destroy, false).await;
    assert_eq!(p.summary.delete, 3);
    assert_eq!(p.change("d").unwrap().action, Action::NotOwned);
    assert_eq!(p.warnings.len(), 1);
    apply(&rs, Mode::Destroy, false).await.unwrap();
    let l = log(&account);
    assert!(pos(&l, "delete c") < pos(&l, "delete b"));
    assert!(pos(&l, "delete b") < pos(&l, "delete a"));
    assert_eq!(
        account.objects.lock().unwrap().keys().collect::<Vec<_>>(),
        ["d"]
    );
}

#[tokio::test]
async fn a_delete_aws_refuses_is_a_warning_not_a_failure() {
    let account = Arc::new(Account::default());
    let rs = world(&account);
    apply(&rs, Mode::Apply, false).await.unwrap();
    account.undeletable.lock().unwrap().insert("c".into());
    let (p, snap) = plan(&rs, Mode::Destroy, false).await;
    let events = Mutex::new(Vec::new());
    execute(&p, &rs, &snap, &|e| events.lock().unwrap().push(e))
        .await
        .unwrap();
    let events = events.into_inner().unwrap();
    assert!(
        events.iter().any(|e| matches!(e, Event::Warning { address, message } if address == "c" && message.contains("pending"))),
        "{events:?}"
    );
    // Its parents were still deleted after it.
    assert!(!account.objects.lock().unwrap().contains_key("a"));
}

#[tokio::test]
async fn a_failure_skips_dependents_but_not_independent_changes() {
    let account = Arc::new(Account::default());
    account.fail.lock().unwrap().insert("a".into());
    let rs = world(&account);
    let (p, snap) = plan(&rs, Mode::Apply, false).await;
    let events = Mutex::new(Vec::new());
    let err = execute(&p, &rs, &snap, &|e| events.lock().unwrap().push(e))
        .await
        .unwrap_err();
    let ApplyError::Failed(failed) = err else {
        panic!("{err:?}")
    };
    assert_eq!(failed, [("a".to_owned(), "boom".to_owned())]);
    let l = log(&account);
    assert!(l.contains(&"create d".to_owned()));
    assert!(
        !l.iter().any(|e| e.ends_with(" b") || e.ends_with(" c")),
        "{l:?}"
    );
    let events = events.into_inner().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Skipped { address, .. } if address == "b"))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Skipped { address, .. } if address == "c"))
    );
    // Re-run after the cause is fixed: converges.
    account.fail.lock().unwrap().clear();
    apply(&rs, Mode::Apply, false).await.unwrap();
    assert!(!plan(&rs, Mode::Apply, false).await.0.has_changes());
}

#[tokio::test]
async fn independent_changes_run_concurrently() {
    // Resources whose create waits on a barrier for all of them: only a
    // concurrent executor gets past it.
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let rs: Vec<Arc<dyn Resource>> = (0..3)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            OnCreate::resource(&format!("g{i}"), move || {
                let barrier = Arc::clone(&barrier);
                async move {
                    barrier.wait().await;
                }
            })
        })
        .collect();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        apply(&rs, Mode::Apply, false),
    )
    .await;
    assert!(matches!(r, Ok(Ok(()))), "creates did not overlap: {r:?}");
}

#[tokio::test]
async fn reference_to_an_undeclared_resource_is_a_problem() {
    let account = Arc::new(Account::default());
    let rs = vec![Fake::resource(
        &account,
        "x",
        json!({"p": reference("nowhere", "arn")}),
    )];
    let (p, _) = plan(&rs, Mode::Apply, false).await;
    assert!(p.problems[0].contains("nowhere"), "{:?}", p.problems);
}

#[tokio::test]
async fn findings_of_a_read_become_problems_and_warnings_of_an_apply_plan_only() {
    let account = Arc::new(Account::default());
    let rs = vec![Fake::resource(
        &account,
        "a",
        json!({"size": 1, "tags": tags("s")}),
    )];
    let mut snap = read_all(&rs).await.unwrap();
    snap.live.insert(
        "a".into(),
        Some(Live {
            fields: rs[0].desired(),
            findings: vec![
                Finding::Problem("gone soon".into()),
                Finding::Warning("legacy".into()),
            ],
            ..Live::default()
        }),
    );
    let p = compute(&rs, &snap, &opts(Mode::Apply, false));
    assert_eq!(p.problems, ["a: gone soon"]);
    assert_eq!(p.warnings, ["a: legacy"]);
    // Destroying does not depend on what the read found.
    let p = compute(&rs, &snap, &opts(Mode::Destroy, false));
    assert!(p.problems.is_empty() && p.warnings.is_empty(), "{p:?}");
}

#[test]
fn json_rendering_follows_the_documented_schema() {
    let p = Plan {
        stack: "couch-prod".into(),
        changes: vec![Change {
            address: "queue.prompts".into(),
            kind: "sqs-queue".into(),
            name: "couch-prod-prompts".into(),
            action: Action::Update,
            fields: vec![diff::FieldChange {
                path: "visibility_timeout_seconds".into(),
                before: json!(30),
                after: Some(json!(180)),
            }],
            referenced: false,
            depends_on: BTreeSet::new(),
            duplicate_of: None,
        }],
        summary: Summary {
            create: 0,
            update: 1,
            replace: 0,
            delete: 0,
        },
        problems: vec![],
        warnings: vec![],
        permission_changes: crate::permission_changes::changes(
            "role.worker",
            &[],
            &[crate::Permission {
                document: "inline policy".into(),
                effect: "Allow".into(),
                actions: vec!["sqs:ReceiveMessage".into()],
                resources: vec!["arn:aws:sqs:eu-west-1:1:q".into()],
                principals: vec![],
                conditions: vec![crate::permission_changes::Condition {
                    operator: "StringEquals".into(),
                    key: "aws:RequestedRegion".into(),
                    values: vec!["eu-west-1".into()],
                }],
            }],
        ),
    };
    let v = render::json(&p);
    assert_eq!(
        v,
        json!({
            "format_version": 1,
            "stack": "couch-prod",
            "changes": [{"address": "queue.prompts", "kind": "sqs-queue", "name": "couch-prod-prompts", "action": "update",
                         "fields": [{"path": "visibility_timeout_seconds", "before": 30, "after": 180}]}],
            "summary": {"create": 0, "update": 1, "replace": 0, "delete": 0},
            "problems": [],
            "warnings": [],
            "permission_changes": [{"address": "role.worker", "change": "+", "document": "inline policy",
                "effect": "Allow", "actions": ["sqs:ReceiveMessage"], "resources": ["arn:aws:sqs:eu-west-1:1:q"],
                "principals": [], "conditions": [{"operator": "StringEquals", "key": "aws:RequestedRegion",
                "values": ["eu-west-1"]}], "broadening": true}]
        })
    );
    let text = render::text(&p);
    // A permission line longer than the screen wraps between words.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(&text).contains("Permission changes (1, 1 broadening): + role.worker inline policy: Allow sqs:ReceiveMessage on arn:aws:sqs:eu-west-1:1:q when aws:RequestedRegion StringEquals eu-west-1 [broadening]"),
        "{text}"
    );
    assert!(
        text.lines()
            .all(|l| l.chars().count() <= crate::json_lines::WIDTH),
        "{text}"
    );
    let md = render::markdown(&p);
    assert!(
        md.contains("#### Permission changes (1, 1 broadening)"),
        "{md}"
    );
    assert!(
        md.contains(
            "| `+` **broadening** | `role.worker` | inline policy | Allow | `sqs:ReceiveMessage` |"
        ),
        "{md}"
    );
    assert!(text.contains("  ~ queue.prompts"), "{text}");
    assert!(
        text.contains("~ visibility_timeout_seconds: 30 -> 180"),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 0 to add, 1 to change, 0 to destroy.\n"),
        "{text}"
    );
    let md = render::markdown(&p);
    assert!(md.contains("| `~` | `queue.prompts` |"), "{md}");
}

#[tokio::test]
async fn slow_changes_report_their_elapsed_time() {
    // Real time, scaled down: a beat every 50 ms during a 400 ms change.
    let every = std::time::Duration::from_millis(50);
    let rs = vec![OnCreate::resource("s", || {
        tokio::time::sleep(std::time::Duration::from_millis(400))
    })];
    let (p, snap) = plan(&rs, Mode::Apply, false).await;
    let events = Mutex::new(Vec::new());
    apply::execute_beating(&p, &rs, &snap, &|e| events.lock().unwrap().push(e), every)
        .await
        .unwrap();
    let events = events.into_inner().unwrap();
    let beats: Vec<std::time::Duration> = events
        .iter()
        .filter_map(|e| match e {
            Event::StillRunning { elapsed, .. } => Some(*elapsed),
            _ => None,
        })
        .collect();
    // However late the scheduler runs them, the k-th beat comes no sooner
    // than k intervals in, and they come before the change finishes.
    assert!(!beats.is_empty(), "{events:?}");
    for (k, elapsed) in beats.iter().enumerate() {
        assert!(
            *elapsed >= every * (k as u32 + 1),
            "beat {k} at {elapsed:?}"
        );
    }
    assert!(beats.windows(2).all(|w| w[0] < w[1]), "{beats:?}");
    assert!(
        matches!(events.last(), Some(Event::Finished { elapsed, .. }) if *elapsed >= std::time::Duration::from_millis(400)),
        "{events:?}"
    );
}
