//! The stack's resources, declared top to bottom like the architecture
//! drawing, one file per part of it: [`queueing`] (queues, topic, the
//! prompt-age alarm), [`functions`] (log group → role → function → alias,
//! the worker's trigger), [`api`] (the HTTP API and its invoke permissions),
//! [`alarms`] (every way an image is lost, and the dashboard), [`client`]
//! (the client identity and the permissions boundary). Each returns typed
//! handles the next wires to (`dlq.arn()`), which also make the dependency
//! graph. No AWS call is made here; the clients are only stored for later.

use std::sync::Arc;

use crate::artifacts::Artifacts;
use crate::aws::Aws;
use crate::aws::buckets::ReferencedBucket;
use crate::aws::http_apis::ApiAttrs;
use crate::aws::models::ReferencedModel;
use crate::aws::policies::{PolicyDocument, Statement};
use crate::engine::{Handle, Resource, Text};
pub use crate::kind::Kind;
use crate::stack::Stack;
use couch_contract::outputs::Output;
use couch_contract::routes::{self, Route};

pub mod alarms;
pub mod api;
pub mod client;
pub mod functions;
pub mod queueing;
pub mod warnings;

pub use alarms::MODEL_THROTTLES_WHAT;
pub use functions::function_environment;
pub use warnings::{capacity_warnings, warnings};

pub const DLQ: &str = "queue.dlq";
pub const QUEUE: &str = "queue.prompts";
pub const TOPIC: &str = "topic.alerts";
pub const SUBSCRIPTION: &str = "subscription.alerts_email";
pub const ALARM: &str = "alarm.prompt_age";
/// The loss-and-failure alarms (`alarms:` in the stack file).
pub const DLQ_ALARM: &str = "alarm.dlq_messages";
pub const FAILED_IMAGES_ALARM: &str = "alarm.failed_images";
pub const WORKER_ERRORS_ALARM: &str = "alarm.worker_errors";
pub const WORKER_THROTTLES_ALARM: &str = "alarm.worker_throttles";
pub const HTTP_ERRORS_ALARM: &str = "alarm.http_errors";
pub const HTTP_THROTTLES_ALARM: &str = "alarm.http_throttles";
pub const API_5XX_ALARM: &str = "alarm.api_5xx";
pub const MODEL_THROTTLES_ALARM: &str = "alarm.model_throttles";
/// The stack's CloudWatch dashboard.
pub const DASHBOARD: &str = "dashboard.stack";
pub const BUCKET: &str = "bucket.images";
pub const MODEL: &str = "model.image";
pub const WORKER_LOGS: &str = "log_group.worker";
pub const WORKER_ROLE: &str = "role.worker";
pub const WORKER: &str = "function.worker";
pub const WORKER_ALIAS: &str = "alias.worker";
pub const TRIGGER: &str = "trigger.prompts";
pub const HTTP_LOGS: &str = "log_group.http";
pub const HTTP_ROLE: &str = "role.http";
pub const HTTP: &str = "function.http";
pub const HTTP_ALIAS: &str = "alias.http";
pub const API: &str = "api.http";
pub const API_PERMISSION: &str = "permission.api_invoke";
/// The account's Lambda concurrency (read when a reservation is declared).
pub const CONCURRENCY: &str = "account.lambda_concurrency";
/// The client identity (`client:`).
pub const CLIENT_ROLE: &str = "role.client";
/// The permissions boundary every role of the stack carries.
pub const BOUNDARY: &str = "policy.boundary";
/// The boundary of every preview of the stack (made by `bootstrap`).
pub const PREVIEW_BOUNDARY: &str = "policy.preview_boundary";

/// The invoke permissions of the asynchronous routes.
pub const SUBMIT_PERMISSION: &str = "permission.api_submit";
pub const STATUS_PERMISSION: &str = "permission.api_status";
/// The invoke permission of the page (`GET /`).
pub const PAGE_PERMISSION: &str = "permission.api_page";

/// Every route the HTTP API has (`couch_contract::routes`), each to the
/// HTTP function, each with the stack's authorization and throttling, with
/// its invoke permission's address and statement id.
/// The page is public ([`Route::is_public`]): authorization `NONE` whatever
/// the stack's.
pub const ROUTES: [(Route, &str, &str); 4] = [
    (routes::SYNC, API_PERMISSION, "AllowHttpApiInvoke"),
    (routes::SUBMIT, SUBMIT_PERMISSION, "AllowHttpApiSubmit"),
    (routes::STATUS, STATUS_PERMISSION, "AllowHttpApiStatus"),
    (routes::PAGE, PAGE_PERMISSION, "AllowHttpApiPage"),
];

/// The routes the stack's authorization guards (all but the public page):
/// the ones an `execute-api:Invoke` grant names.
pub fn guarded_routes() -> impl Iterator<Item = Route> {
    ROUTES
        .into_iter()
        .map(|(route, _, _)| route)
        .filter(|route| !route.is_public())
}

/// A route's path as execute-api ARNs name it (a path parameter is `*`).
pub fn arn_path(path: &str) -> String {
    path.split('/')
        .map(|p| if p.starts_with('{') { "*" } else { p })
        .collect::<Vec<_>>()
        .join("/")
}

/// Kinds as the engine takes them (each `Kind` is a `Resource`).
pub fn resources(kinds: &[Arc<dyn Kind>]) -> Vec<Arc<dyn Resource>> {
    kinds
        .iter()
        .map(|k| Arc::clone(k) as Arc<dyn Resource>)
        .collect()
}

/// The alarm names' suffixes (`{stack}-{what}`) of the alarms that watch
/// the HTTP function, shared by the alarms and the alias's shift.
const HTTP_ERRORS_WHAT: &str = "http-errors";
const HTTP_THROTTLES_WHAT: &str = "http-throttles";
const API_5XX_WHAT: &str = "api-5xx";

/// The declared resources, in declaration order, and the stack's outputs.
pub struct Declaration {
    /// Each resource as the engine drives it ([`Resource`]) and with what it
    /// means outside the engine: CloudFormation (`export`) and IAM (`bootstrap`).
    pub kinds: Vec<Arc<dyn Kind>>,
    /// Output name → value (a reference into a resource, or fixed text).
    pub outputs: Vec<(&'static str, Text)>,
    /// The permissions boundary's document: every statement any role of
    /// the stack may ever be given (the client identity's even when it is
    /// not declared, but never a preview's: a preview has no client), each
    /// under its first role's `Sid` prefix, nothing on IAM. For a preview it
    /// is what the file's preview boundary holds.
    pub boundary: PolicyDocument,
}

impl Declaration {
    /// Adds a resource; its handle is how others reference it.
    fn add<K: Kind + 'static>(&mut self, resource: K) -> Handle<K> {
        let handle = Handle::new(resource.address());
        self.kinds.push(Arc::new(resource));
        handle
    }

    /// The same list, as the engine takes it.
    pub fn resources(&self) -> Vec<Arc<dyn Resource>> {
        resources(&self.kinds)
    }

    fn output(&mut self, output: Output, value: impl Into<Text>) {
        self.outputs.push((output.name(), value.into()));
    }

    /// Adds a role's statements to the boundary, their ids prefixed with
    /// `role` (IAM wants a `Sid` unique within a policy); a statement another
    /// role already brought (the model's invoke, the images' listing) once.
    fn bound(&mut self, role: &str, statements: &[Statement]) {
        for st in statements {
            let same = |b: &Statement| {
                (&b.effect, &b.action, &b.resource, &b.condition)
                    == (&st.effect, &st.action, &st.resource, &st.condition)
            };
            if !self.boundary.statement.iter().any(same) {
                let mut st = st.clone();
                st.sid = Some(format!("{role}{}", st.sid.as_deref().unwrap_or_default()));
                self.boundary.statement.push(st);
            }
        }
    }
}

/// What the stack references and never changes: the images bucket and the
/// Bedrock model both functions call (checked at every plan).
pub struct References {
    pub bucket: Handle<ReferencedBucket>,
    pub model: Handle<ReferencedModel>,
}

/// Everything the stack declares, bound to the clients that read and write it.
pub fn declare(stack: &Stack, artifacts: &Artifacts, aws: &Arc<Aws>) -> Declaration {
    let mut d = Declaration {
        kinds: Vec::new(),
        outputs: Vec::new(),
        boundary: PolicyDocument::new(Vec::new()),
    };
    let bucket = d.add(ReferencedBucket::new(
        BUCKET,
        stack.images.bucket.clone(),
        &stack.images.prefix,
        Arc::clone(aws),
    ));
    let model = d.add(ReferencedModel::new(MODEL, &stack.model, Arc::clone(aws)));

    let refs = References { bucket, model };
    let q = queueing::declare(&mut d, stack, aws);
    let worker = functions::worker(&mut d, stack, aws, artifacts, &refs, &q);
    let http = functions::http(&mut d, stack, aws, artifacts, &refs, &q);
    let api = api::declare(&mut d, stack, aws, &http.alias);
    alarms::declare(&mut d, stack, aws, &q, &worker, &http, &api);
    d.output(Output::QueueUrl, q.queue.url());
    d.output(Output::QueueArn, q.queue.arn());
    d.output(Output::DlqUrl, q.dlq.url());
    d.output(Output::DlqArn, q.dlq.arn());
    d.output(Output::TopicArn, q.topic.arn());
    d.output(Output::AlarmName, q.alarm.name());
    d.output(Output::AlarmArn, q.alarm.arn());
    d.output(Output::ImagesBucket, stack.images.bucket.as_str());
    d.output(Output::ImagesPrefix, stack.images.prefix.as_str());
    d.output(Output::ModelId, stack.model.id.as_str());
    d.output(Output::ModelRegion, stack.model.region.as_str());
    functions::reservation(&mut d, stack, aws);
    client::declare(&mut d, stack, aws, &refs, &q, &api);
    client::permissions_boundary(&mut d, stack, aws);
    d.output(
        Output::ApiUrl,
        Text::from(api.endpoint()).then(routes::SYNC.path),
    );
    d.output(
        Output::ImagesUrl,
        Text::from(api.endpoint()).then(routes::SUBMIT.path),
    );
    d.output(Output::ApiAuth, stack.http.auth.word());
    d.output(Output::WorkerFunctionName, worker.function.name());
    d.output(Output::HttpFunctionName, http.function.name());
    d.output(Output::WorkerRoleArn, worker.role.arn());
    d.output(Output::HttpRoleArn, http.role.arn());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{Mode, PlanOptions, Snapshot, compute, depends_on};
    use serde_json::json;
    use std::path::Path;

    /// Each typed field (`fields!`) is the name a spec serialises: a serde
    /// rename without `= "name"` in `fields!` would never match a change.
    #[test]
    fn every_typed_field_names_a_serialised_field() {
        use crate::aws::{
            aliases::AliasSpec, functions::FunctionSpec, http_apis::HttpApiSpec,
            log_groups::LogGroupSpec, managed_policies::ManagedPolicySpec, roles::RoleSpec,
            subscriptions::SubscriptionSpec, triggers::TriggerSpec,
        };
        let aws = Arc::new(Aws::offline("eu-west-1"));
        let d = declare(&stack(), &no_code(), &aws);
        let keys = |kind: &str| -> std::collections::BTreeSet<String> {
            d.kinds
                .iter()
                .filter(|k| k.kind() == kind)
                .flat_map(|k| k.desired().into_keys())
                .collect()
        };
        fn names<S>(fields: &[crate::engine::Field<S>]) -> Vec<&'static str> {
            fields.iter().map(|f| f.name()).collect()
        }
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("lambda-function", names(FunctionSpec::FIELDS)),
            ("iam-role", names(RoleSpec::FIELDS)),
            ("log-group", names(LogGroupSpec::FIELDS)),
            ("iam-managed-policy", names(ManagedPolicySpec::FIELDS)),
            ("lambda-alias", names(AliasSpec::FIELDS)),
            ("lambda-sqs-trigger", names(TriggerSpec::FIELDS)),
            ("http-api", names(HttpApiSpec::FIELDS)),
            ("sns-subscription", names(SubscriptionSpec::FIELDS)),
        ];
        for (kind, fields) in cases {
            let keys = keys(kind);
            assert!(!fields.is_empty() && !keys.is_empty(), "{kind}");
            for f in fields {
                assert!(keys.contains(f), "{kind}: {f} is not one of {keys:?}");
            }
        }
    }

    fn no_code() -> Artifacts {
        Artifacts::load(std::path::Path::new("/nonexistent"))
    }

    fn stack() -> Stack {
        crate::stack::parse(
            Path::new("t.yaml"),
            "name: couch-prod\nimages: { bucket: b-1, prefix: \"11\" }\nalarm: { email: Team@Example.com }\ntags: { team: couch }\n",
        )
        .unwrap()
    }

    #[test]
    fn the_functions_read_the_environment_the_provisioner_declares() {
        let s = stack();
        let env = function_environment(&s);
        let config = imagegen::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(config.bucket, s.images.bucket);
        assert_eq!(config.prefix, s.images.prefix);
        assert_eq!(config.model_id, s.model.id);
        assert_eq!(config.model_region, s.model.region);
        // The roles may write exactly where the worker writes.
        let key = imagegen::image_key(&config.prefix, "msg-1");
        assert!(key.starts_with(&couch_contract::images_prefix(&s.images.prefix)));
    }

    #[test]
    fn references_make_the_dependency_graph() {
        let aws = Arc::new(Aws::offline("eu-west-1"));
        let rs = declare(&stack(), &no_code(), &aws).resources();
        let deps = |a: &str| {
            depends_on(rs.iter().find(|r| r.address() == a).unwrap().as_ref())
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(deps(QUEUE), [DLQ]);
        assert_eq!(deps(SUBSCRIPTION), [TOPIC]);
        assert_eq!(deps(ALARM), [QUEUE, TOPIC]);
        assert!(deps(DLQ).is_empty());
        // The loss-and-failure alarms watch what they name and notify the topic.
        assert_eq!(deps(DLQ_ALARM), [DLQ, TOPIC]);
        assert_eq!(deps(FAILED_IMAGES_ALARM), [WORKER, TOPIC]);
        assert_eq!(deps(HTTP_THROTTLES_ALARM), [HTTP, TOPIC]);
        assert_eq!(deps(API_5XX_ALARM), [API, TOPIC]);
    }

    #[test]
    fn offline_plan_creates_everything_with_ownership_tags() {
        let s = stack();
        let aws = Arc::new(Aws::offline("eu-west-1"));
        let plan = compute(
            &declare(&s, &no_code(), &aws).resources(),
            &Snapshot::default(),
            &PlanOptions {
                stack: s.name.clone(),
                mode: Mode::Apply,
                adopt: false,
            },
        );
        assert_eq!(plan.summary.create, 29);
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        let q = plan.change(QUEUE).unwrap();
        let tags = q
            .fields
            .iter()
            .find(|f| f.path == "tags")
            .and_then(|f| f.after.clone());
        assert_eq!(
            tags,
            Some(
                json!({"managed-by": "couch-provisioner", "stack": "couch-prod", "team": "couch"})
            )
        );
        // The DLQ's ARN is unknown until it exists.
        assert_eq!(
            q.fields
                .iter()
                .find(|f| f.path == "redrive_policy")
                .unwrap()
                .after,
            None
        );
        // The queue's name is fixed by the declaration: the alarm's dimension is known offline.
        let alarm = plan.change(ALARM).unwrap();
        assert_eq!(
            alarm
                .fields
                .iter()
                .find(|f| f.path == "dimensions")
                .unwrap()
                .after,
            Some(json!([{"name": "QueueName", "value": "couch-prod-prompts"}]))
        );
        let sub = plan.change(SUBSCRIPTION).unwrap();
        assert!(
            sub.fields
                .iter()
                .any(|f| f.after == Some(json!("team@example.com")))
        );
    }
}
