//! The stack's resources, declared top to bottom like the architecture
//! drawing: each kind's typed spec, wired to the others through the typed
//! references its handle exports (`dlq.arn()`), which also make the dependency
//! graph. No AWS call is made here; the clients are only stored for later.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::artifacts::{Artifact, Artifacts};
use crate::aws::Aws;
use crate::aws::alarms::{AlarmSpec, Dimension, MetricAlarmResource};
use crate::aws::aliases::{AliasSpec, FunctionAlias, LIVE, Shift};
use crate::aws::buckets::{ReferencedBucket, image_store_statements};
use crate::aws::concurrency::{AccountConcurrency, ConcurrencySpec, Reservation};
use crate::aws::dashboards::{Board, Dashboard};
use crate::aws::functions::{ARM64, FunctionAttrs, FunctionSpec, HANDLER, LambdaFunction, RUNTIME};
use crate::aws::http_apis::{self, ApiAttrs, HttpApi, HttpApiSpec};
use crate::aws::log_groups::{LogGroup, LogGroupSpec, writer_statement};
use crate::aws::managed_policies::{ManagedPolicy, ManagedPolicySpec};
use crate::aws::models::{ReferencedModel, invoke_statement};
use crate::aws::permissions::{InvokePermission, PermissionSpec};
use crate::aws::policies::{PolicyDocument, Statement};
use crate::aws::queues::{QueueSpec, Redrive, SqsQueue};
use crate::aws::roles::{IamRole, RoleSpec};
use crate::aws::subscriptions::EmailSubscription;
use crate::aws::topics::{SnsTopic, TopicSpec};
use crate::aws::triggers::{
    QueueTrigger, REPORT_BATCH_ITEM_FAILURES, TriggerSpec, consumer_statement,
};
use crate::engine::{Handle, Ref, Resource, Text};
pub use crate::kind::Kind;
use crate::stack::{Auth, DLQ_RETENTION_SECONDS, Stack};
use couch_contract::metrics;

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

/// The HTTP function's synchronous route.
pub const ROUTE_METHOD: &str = "POST";
pub const ROUTE_PATH: &str = "/image_generator";
/// The asynchronous routes: submit, and read a request's status.
pub const SUBMIT_PATH: &str = "/images";
pub const STATUS_PATH: &str = "/images/{id}";
/// The invoke permissions of the asynchronous routes.
pub const SUBMIT_PERMISSION: &str = "permission.api_submit";
pub const STATUS_PERMISSION: &str = "permission.api_status";

/// Every route (method, path) the HTTP API has, each to the HTTP function,
/// each with the stack's authorization and throttling, with its invoke
/// permission's address and statement id.
pub const ROUTES: [(&str, &str, &str, &str); 3] = [
    (
        ROUTE_METHOD,
        ROUTE_PATH,
        API_PERMISSION,
        "AllowHttpApiInvoke",
    ),
    ("POST", SUBMIT_PATH, SUBMIT_PERMISSION, "AllowHttpApiSubmit"),
    ("GET", STATUS_PATH, STATUS_PERMISSION, "AllowHttpApiStatus"),
];

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

/// A CloudWatch metric an alarm watches.
struct Metric {
    namespace: &'static str,
    name: &'static str,
    dimensions: Vec<(&'static str, Text)>,
    statistic: &'static str,
}

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

    fn output(&mut self, name: &'static str, value: impl Into<Text>) {
        self.outputs.push((name, value.into()));
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

/// The configuration both functions read (imagegen's `Config::from_env`).
pub fn function_environment(stack: &Stack) -> BTreeMap<String, String> {
    use couch_contract::env;
    [
        (env::IMAGE_BUCKET, stack.images.bucket.as_str()),
        (env::IMAGE_PREFIX, stack.images.prefix.as_str()),
        (env::MODEL_ID, stack.model.id.as_str()),
        (env::MODEL_REGION, stack.model.region.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// One function with what it needs: its log group (created first, so Lambda
/// never makes an unmanaged one), its role with the policy derived from
/// `grants`, the function itself and its `live` alias (what everything
/// that calls it names).
struct FunctionDecl<'a> {
    /// Its statements' `Sid` prefix in the boundary.
    bound_as: &'static str,
    log_group: &'static str,
    role: &'static str,
    function: &'static str,
    alias: &'static str,
    name: String,
    memory_mb: u32,
    timeout_seconds: u32,
    code: &'a Artifact,
    grants: Vec<Statement>,
    /// How its alias moves to a new version.
    shift: Shift,
    reserved_concurrency: Option<u32>,
    /// Variables for this function only, besides [`function_environment`].
    environment: BTreeMap<String, String>,
}

fn function(
    d: &mut Declaration,
    stack: &Stack,
    aws: &Arc<Aws>,
    f: FunctionDecl<'_>,
) -> (
    Handle<IamRole>,
    Handle<LambdaFunction>,
    Handle<FunctionAlias>,
) {
    let tags = stack.resource_tags();
    let logs = d.add(LogGroup::new(
        f.log_group,
        Stack::log_group_name(&f.name),
        &LogGroupSpec {
            retention_in_days: stack.logs.retention_days,
            tags: tags.clone(),
        },
        Arc::clone(aws),
    ));
    let mut grants = f.grants;
    grants.push(writer_statement(&logs));
    d.bound(f.bound_as, &grants);
    let role = d.add(IamRole::new(
        f.role,
        f.name.clone(),
        &RoleSpec {
            assume_role_policy: PolicyDocument::trust("lambda.amazonaws.com"),
            policy: PolicyDocument::new(grants),
            other_inline_policies: Vec::new(),
            managed_policies: Vec::new(),
            permissions_boundary: Some(boundary().into()),
            tags: tags.clone(),
        },
        Arc::clone(aws),
    ));
    let name = f.name.clone();
    let function = d.add(LambdaFunction::new(
        f.function,
        f.name,
        FunctionSpec {
            runtime: RUNTIME.into(),
            architectures: vec![ARM64.into()],
            handler: HANDLER.into(),
            memory_size: f.memory_mb,
            timeout: f.timeout_seconds,
            environment: {
                let mut env = function_environment(stack);
                env.extend(f.environment);
                env
            },
            role: role.arn().into(),
            log_group: logs.name().into(),
            // One JSON object per line (the functions write JSON on Lambda).
            log_format: "JSON".into(),
            application_log_level: stack.logs.level.to_ascii_uppercase(),
            system_log_level: "INFO".into(),
            code_sha256: String::new(),
            published: true,
            reserved_concurrency: f.reserved_concurrency,
            tags,
        },
        f.code.clone(),
        stack.deploy.keep_versions,
        Arc::clone(aws),
    ));
    let alias = d.add(FunctionAlias::new(
        f.alias,
        &name,
        &AliasSpec {
            function_name: function.name().into(),
            function_version: function.version().into(),
            weights: BTreeMap::new(),
        },
        f.shift,
        Arc::clone(aws),
    ));
    (role, function, alias)
}

/// The stack's permissions boundary, as the roles name it.
fn boundary() -> Ref {
    Handle::<ManagedPolicy>::new(BOUNDARY).arn()
}

/// The alarm names' suffixes (`{stack}-{what}`) of the alarms that watch
/// the HTTP function, shared by the alarms and the alias's shift.
const HTTP_ERRORS_WHAT: &str = "http-errors";
const HTTP_THROTTLES_WHAT: &str = "http-throttles";
const API_5XX_WHAT: &str = "api-5xx";

/// The HTTP alias's shift (`deploy:`): rolled back by the HTTP function's
/// errors and throttles, the API's 5xx, and the alarms the stack file names.
fn http_shift(stack: &Stack) -> Shift {
    let d = &stack.deploy;
    let mut alarms: Vec<String> = [HTTP_ERRORS_WHAT, HTTP_THROTTLES_WHAT, API_5XX_WHAT]
        .iter()
        .map(|what| stack.alarm_name_for(what))
        .collect();
    alarms.extend(d.alarms.iter().cloned());
    Shift {
        steps: d.steps(),
        interval: std::time::Duration::from_secs(u64::from(d.interval_seconds)),
        alarms,
        named: d.alarms.clone(),
    }
}

/// What every plan of the stack says about its door, whatever the account
/// holds: an open route, with what the throttle still lets anyone spend.
pub fn warnings(stack: &Stack) -> Vec<String> {
    let mut out = Vec::new();
    let h = &stack.http;
    if h.auth == Auth::None {
        let cap = h.reserved_concurrency.map_or(String::new(), |n| {
            format!(", {n} at a time (http.reserved_concurrency)")
        });
        out.push(format!(
            "{API}: the route {ROUTE_METHOD} {ROUTE_PATH} is open (http.auth: none): anyone with its URL can generate images, each a paid model call; the throttle lets through at most {} an hour ({} at once, then {}/s){cap}. Set http.auth to iam or jwt to close it",
            h.images_per_hour(),
            h.burst,
            h.rate_per_second
        ));
    }
    out.extend(capacity_warnings(stack));
    out
}

/// What the stack's throughput means for its alarm and its worker: the
/// prompt-age alarm rings during a burst the stack is sized for when its
/// threshold is shorter than the drain; a batch that cannot be done within
/// the worker's timeout at its calls at once returns records unfinished.
pub fn capacity_warnings(stack: &Stack) -> Vec<String> {
    let mut out = Vec::new();
    let c = stack
        .capacity()
        .unwrap_or_else(|_| stack.adaptive_capacity());
    let drain = c.drain_seconds(stack.queue.burst);
    let threshold = f64::from(stack.alarm.threshold_seconds);
    if threshold < drain {
        out.push(format!(
            "{ALARM}: a burst of {} prompts (queue.burst) takes about {} to drain, and the oldest waits that long: the prompt-age alarm (alarm.threshold_seconds {}) rings during every such burst. Raise the threshold above {:.0} s if that is expected load, or raise the model's capacity",
            stack.queue.burst,
            crate::stack::capacity::minutes(drain),
            stack.alarm.threshold_seconds,
            drain.ceil()
        ));
    }
    let rounds = stack.worker.batch_size.div_ceil(c.per_instance.max(1));
    let batch_secs = f64::from(rounds) * c.seconds_per_image;
    if batch_secs > f64::from(stack.worker.timeout_seconds) {
        out.push(format!(
            "{WORKER}: a batch of {} at {} call(s) at a time takes about {:.0} s at {} s an image, longer than worker.timeout_seconds ({}): each invocation returns the records it has no time for (they come back at once, each return a receive). Lower worker.batch_size to {} or raise the timeout",
            stack.worker.batch_size,
            c.per_instance,
            batch_secs,
            c.seconds_per_image,
            stack.worker.timeout_seconds,
            (f64::from(stack.worker.timeout_seconds) / c.seconds_per_image).floor().max(1.0) as u32 * c.per_instance
        ));
    }
    out
}

/// The alarm name suffix of the model-throttles alarm.
pub const MODEL_THROTTLES_WHAT: &str = "model-throttles";

/// What the model-throttles alarm watches: Bedrock's own
/// `InvocationThrottles` for the model (namespace `AWS/Bedrock`, dimension
/// `ModelId`: bedrock/latest/userguide/monitoring-runtime-metrics.html) when
/// the model is called in the stack's Region; when it is called in another,
/// the functions' own count of throttled calls (`ModelThrottles`, same
/// meaning, in the stack's Region), because a CloudWatch alarm watches
/// only metrics of its own Region (and its SNS action is the stack's).
fn model_throttles_metric(stack: &Stack, worker: &Handle<LambdaFunction>) -> Metric {
    if stack.model.region == stack.region {
        Metric {
            namespace: "AWS/Bedrock",
            name: "InvocationThrottles",
            dimensions: vec![("ModelId", stack.model.id.as_str().into())],
            statistic: "Sum",
        }
    } else {
        Metric {
            namespace: metrics::NAMESPACE,
            name: metrics::MODEL_THROTTLES,
            dimensions: vec![(metrics::FUNCTION_NAME, worker.name().into())],
            statistic: "Sum",
        }
    }
}

/// Everything the stack declares, bound to the clients that read and write it.
pub fn declare(stack: &Stack, artifacts: &Artifacts, aws_clients: &Arc<Aws>) -> Declaration {
    let mut d = Declaration {
        kinds: Vec::new(),
        outputs: Vec::new(),
        boundary: PolicyDocument::new(Vec::new()),
    };
    let aws = || Arc::clone(aws_clients);
    let tags = stack.resource_tags();

    let bucket = d.add(ReferencedBucket::new(
        BUCKET,
        stack.images.bucket.clone(),
        &stack.images.prefix,
        aws(),
    ));
    // The Bedrock model both functions call: checked at every plan.
    let model = d.add(ReferencedModel::new(MODEL, &stack.model, aws()));

    let dlq = d.add(SqsQueue::new(
        DLQ,
        stack.dlq_name(),
        &QueueSpec {
            visibility_timeout_seconds: None,
            message_retention_seconds: DLQ_RETENTION_SECONDS,
            sqs_managed_sse: true,
            redrive: None,
            tags: tags.clone(),
        },
        aws(),
    ));

    let queue = d.add(SqsQueue::new(
        QUEUE,
        stack.queue_name(),
        &QueueSpec {
            visibility_timeout_seconds: Some(stack.queue.visibility_timeout_seconds),
            message_retention_seconds: stack.queue.message_retention_seconds,
            sqs_managed_sse: true,
            redrive: Some(Redrive {
                dead_letter_target_arn: dlq.arn().into(),
                // A safety net for crashed invocations: the worker moves
                // what it gives up itself, and throttles do not count.
                max_receive_count: couch_contract::queues::safety_net(
                    stack.queue.max_receive_count,
                ),
            }),
            tags: tags.clone(),
        },
        aws(),
    ));

    let topic = d.add(SnsTopic::new(
        TOPIC,
        stack.topic_name(),
        &TopicSpec { tags: tags.clone() },
        aws(),
    ));

    d.add(EmailSubscription::new(
        SUBSCRIPTION,
        stack.topic_name(),
        topic.arn(),
        &stack.alarm.email,
        aws(),
    ));

    let alarm = d.add(MetricAlarmResource::new(
        ALARM,
        stack.alarm_name(),
        &AlarmSpec {
            description: format!(
                "Prompts wait too long in the queue ({}); managed by couch-provisioner",
                stack.alarm_name()
            ),
            namespace: "AWS/SQS".into(),
            metric_name: "ApproximateAgeOfOldestMessage".into(),
            dimensions: vec![Dimension {
                name: "QueueName".into(),
                value: queue.name().into(),
            }],
            statistic: "Maximum".into(),
            comparison_operator: "GreaterThanThreshold".into(),
            threshold: f64::from(stack.alarm.threshold_seconds),
            period: stack.alarm.period_seconds,
            evaluation_periods: stack.alarm.evaluation_periods,
            treat_missing_data: "notBreaching".into(),
            actions_enabled: true,
            alarm_actions: vec![topic.arn().into()],
            ok_actions: vec![topic.arn().into()],
            tags: tags.clone(),
        },
        aws(),
    ));

    // The worker: fed by the queue, stores images, moves what it gives up
    // to the dead-letter queue itself (with the reason).
    let capacity = stack
        .capacity()
        .unwrap_or_else(|_| stack.adaptive_capacity());
    let mut worker_grants = vec![
        consumer_statement(queue.arn()),
        invoke_statement(&model, &stack.model),
        Statement::allow(
            "DeadLetterPrompts",
            &["sqs:SendMessage"],
            vec![dlq.arn().into()],
        ),
    ];
    worker_grants.extend(image_store_statements(&bucket, &stack.images.prefix));
    let (worker_role, worker, worker_alias) = function(
        &mut d,
        stack,
        aws_clients,
        FunctionDecl {
            bound_as: "Worker",
            log_group: WORKER_LOGS,
            role: WORKER_ROLE,
            function: WORKER,
            alias: WORKER_ALIAS,
            name: stack.worker_name(),
            memory_mb: stack.worker.memory_mb,
            timeout_seconds: stack.worker.timeout_seconds,
            code: &artifacts.worker,
            grants: worker_grants,
            // The worker moves at once: for a poll-based trigger, AWS does
            // not document how an alias's weights split the batches (README).
            shift: Shift::at_once(),
            // Capped by its trigger's maximum_concurrency instead.
            reserved_concurrency: None,
            // Its last allowed receive of a prompt dead-letters it; its
            // share of the model's capacity; where given-up prompts go.
            environment: [
                (
                    couch_contract::env::MAX_RECEIVE_COUNT.to_owned(),
                    stack.queue.max_receive_count.to_string(),
                ),
                (
                    couch_contract::env::WORKER_CONCURRENCY.to_owned(),
                    capacity.per_instance.to_string(),
                ),
                (
                    couch_contract::env::WORKER_PACE.to_owned(),
                    if capacity.model_limit.is_some() {
                        "stated"
                    } else {
                        "adaptive"
                    }
                    .to_owned(),
                ),
                (couch_contract::env::DLQ_NAME.to_owned(), stack.dlq_name()),
            ]
            .into(),
        },
    );
    d.add(QueueTrigger::new(
        TRIGGER,
        &stack.queue_name(),
        &stack.worker_name(),
        &TriggerSpec {
            event_source_arn: queue.arn().into(),
            function_name: worker_alias.name().into(),
            batch_size: stack.worker.batch_size,
            function_response_types: vec![REPORT_BATCH_ITEM_FAILURES.into()],
            maximum_concurrency: capacity.instances,
            enabled: true,
        },
        aws(),
    ));

    // The HTTP function: behind the API, stores images and reads their
    // status; on SQS it only sends prompts (POST /images).
    let mut http_grants = vec![invoke_statement(&model, &stack.model)];
    http_grants.extend(image_store_statements(&bucket, &stack.images.prefix));
    http_grants.push(Statement::allow(
        "SubmitPrompts",
        &["sqs:SendMessage"],
        vec![queue.arn().into()],
    ));
    let (http_role, http, http_alias) = function(
        &mut d,
        stack,
        aws_clients,
        FunctionDecl {
            bound_as: "Http",
            log_group: HTTP_LOGS,
            role: HTTP_ROLE,
            function: HTTP,
            alias: HTTP_ALIAS,
            name: stack.http_name(),
            memory_mb: stack.http.memory_mb,
            timeout_seconds: stack.http.timeout_seconds,
            code: &artifacts.http,
            grants: http_grants,
            shift: http_shift(stack),
            reserved_concurrency: stack.http.reserved_concurrency,
            // POST /images puts the prompt there.
            environment: [(
                couch_contract::env::QUEUE_ARN.to_owned(),
                Text::from(queue.arn()).to_string(),
            )]
            .into(),
        },
    );
    // Every route alike: to the function, with the stack's authorization.
    let route = http_apis::Route {
        to_integration: true,
        authorization_type: match &stack.http.auth {
            Auth::None => "NONE",
            Auth::Iam => "AWS_IAM",
            Auth::Jwt(_) => "JWT",
        }
        .into(),
        authorization_scopes: match &stack.http.auth {
            Auth::Jwt(jwt) => {
                let mut scopes = jwt.scopes.clone();
                scopes.sort();
                scopes
            }
            Auth::None | Auth::Iam => Vec::new(),
        },
        to_authorizer: matches!(stack.http.auth, Auth::Jwt(_)),
    };
    let api = d.add(HttpApi::new(
        API,
        stack.api_name(),
        &HttpApiSpec {
            protocol_type: "HTTP".into(),
            integration: http_apis::Integration {
                kind: "AWS_PROXY".into(),
                uri: http_alias.arn().into(),
                payload_format_version: "2.0".into(),
                timeout_ms: stack.http.timeout_seconds * 1000,
            },
            authorizer: match &stack.http.auth {
                Auth::Jwt(jwt) => Some(http_apis::Authorizer {
                    name: stack.authorizer_name(),
                    issuer: jwt.issuer.clone(),
                    audience: jwt.audience.clone(),
                    identity_source: vec![http_apis::IDENTITY_SOURCE.into()],
                }),
                Auth::None | Auth::Iam => None,
            },
            routes: ROUTES
                .iter()
                .map(|(method, path, _, _)| (format!("{method} {path}"), route.clone()))
                .collect(),
            stage: http_apis::Stage {
                name: "$default".into(),
                auto_deploy: true,
                throttling: Some(http_apis::Throttling {
                    rate_limit: stack.http.rate_per_second,
                    burst_limit: stack.http.burst,
                }),
            },
            tags,
        },
        aws(),
    ));
    for (method, path, address, sid) in ROUTES {
        d.add(InvokePermission::new(
            address,
            &format!("{}:{LIVE}", stack.http_name()),
            sid,
            &PermissionSpec {
                function_name: http_alias.name().into(),
                action: "lambda:InvokeFunction".into(),
                principal: "apigateway.amazonaws.com".into(),
                // Only this API's route, in any of its stages.
                source_arn: Text::from(api.execution_arn())
                    .then(format!("/*/{method}{}", arn_path(path))),
            },
            aws(),
        ));
    }

    // Every way an image is lost or a part fails, each telling the alerts
    // topic when its metric is above its threshold in one period (and OK again).
    let a = &stack.alarms;
    let alarm_on = |description: String, metric: Metric, threshold: u32| AlarmSpec {
        description: format!("{description}; managed by couch-provisioner"),
        namespace: metric.namespace.into(),
        metric_name: metric.name.into(),
        dimensions: metric
            .dimensions
            .into_iter()
            .map(|(name, value)| Dimension {
                name: name.into(),
                value,
            })
            .collect(),
        statistic: metric.statistic.into(),
        comparison_operator: "GreaterThanThreshold".into(),
        threshold: f64::from(threshold),
        period: a.period_seconds,
        evaluation_periods: 1,
        // No data is no failure (nothing ran, nothing was lost).
        treat_missing_data: "notBreaching".into(),
        actions_enabled: true,
        alarm_actions: vec![topic.arn().into()],
        ok_actions: vec![topic.arn().into()],
        tags: stack.resource_tags(),
    };
    let lambda = |name: &'static str, function: &Handle<LambdaFunction>| Metric {
        namespace: "AWS/Lambda",
        name,
        dimensions: vec![("FunctionName", function.name().into())],
        statistic: "Sum",
    };
    let loss_alarms = [
        (
            DLQ_ALARM,
            "dlq-messages",
            Metric {
                namespace: "AWS/SQS",
                name: "ApproximateNumberOfMessagesVisible",
                dimensions: vec![("QueueName", dlq.name().into())],
                statistic: "Maximum",
            },
            a.dlq_messages,
        ),
        (
            FAILED_IMAGES_ALARM,
            "failed-images",
            Metric {
                namespace: metrics::NAMESPACE,
                name: metrics::IMAGES_FAILED,
                dimensions: vec![(metrics::FUNCTION_NAME, worker.name().into())],
                statistic: "Sum",
            },
            a.failed_images,
        ),
        (
            WORKER_ERRORS_ALARM,
            "worker-errors",
            lambda("Errors", &worker),
            a.function_errors,
        ),
        (
            WORKER_THROTTLES_ALARM,
            "worker-throttles",
            lambda("Throttles", &worker),
            a.function_throttles,
        ),
        (
            HTTP_ERRORS_ALARM,
            HTTP_ERRORS_WHAT,
            lambda("Errors", &http),
            a.function_errors,
        ),
        (
            HTTP_THROTTLES_ALARM,
            HTTP_THROTTLES_WHAT,
            lambda("Throttles", &http),
            a.function_throttles,
        ),
        (
            MODEL_THROTTLES_ALARM,
            MODEL_THROTTLES_WHAT,
            model_throttles_metric(stack, &worker),
            a.model_throttles,
        ),
        (
            API_5XX_ALARM,
            API_5XX_WHAT,
            Metric {
                namespace: "AWS/ApiGateway",
                name: "5xx",
                dimensions: vec![("ApiId", api.id().into()), ("Stage", "$default".into())],
                statistic: "Sum",
            },
            a.api_5xx,
        ),
    ];
    let mut alarm_arns: Vec<Text> = vec![alarm.arn().into()];
    for (address, what, metric, threshold) in loss_alarms {
        let description = match address {
            DLQ_ALARM => format!(
                "An image request was lost: more than {threshold} prompt(s) in the dead-letter queue {} (`provisioner redrive` sends them back)",
                stack.dlq_name()
            ),
            MODEL_THROTTLES_ALARM => format!(
                "More than {threshold} model call(s) throttled in {} s ({} {}): the stack asks more of {} than the account allows; see plan's throughput line",
                a.period_seconds, metric.namespace, metric.name, stack.model.id
            ),
            FAILED_IMAGES_ALARM => format!(
                "More than {threshold} failed image attempt(s) in {} s ({} metric {} of {})",
                a.period_seconds,
                metrics::NAMESPACE,
                metrics::IMAGES_FAILED,
                stack.worker_name()
            ),
            _ => format!(
                "More than {threshold} {what} in {} s ({} {})",
                a.period_seconds, metric.namespace, metric.name
            ),
        };
        let spec = alarm_on(description, metric, threshold);
        let added = d.add(MetricAlarmResource::new(
            address,
            stack.alarm_name_for(what),
            &spec,
            aws(),
        ));
        alarm_arns.push(added.arn().into());
    }

    // One view of all of it, derived from the same handles.
    d.add(Dashboard::new(
        DASHBOARD,
        stack.name.clone(),
        &Board {
            stack: stack.name.clone(),
            region: stack.region.clone(),
            queue: queue.name().into(),
            dlq: dlq.name().into(),
            worker: worker.name().into(),
            http: http.name().into(),
            api_id: api.id().into(),
            model_id: stack.model.id.clone(),
            model_region: stack.model.region.clone(),
            alarms: alarm_arns,
        },
        aws(),
    ));

    d.output("queue_url", queue.url());
    d.output("queue_arn", queue.arn());
    d.output("dlq_url", dlq.url());
    d.output("dlq_arn", dlq.arn());
    d.output("topic_arn", topic.arn());
    d.output("alarm_name", alarm.name());
    d.output("alarm_arn", alarm.arn());
    d.output("images_bucket", stack.images.bucket.as_str());
    d.output("images_prefix", stack.images.prefix.as_str());
    d.output("model_id", stack.model.id.as_str());
    d.output("model_region", stack.model.region.as_str());
    if let Some(n) = stack.http.reserved_concurrency {
        let mut reservations = BTreeMap::new();
        reservations.insert(
            stack.http_name(),
            Reservation {
                executions: n,
                declared_as: "http.reserved_concurrency".into(),
            },
        );
        d.add(AccountConcurrency::new(
            CONCURRENCY,
            &stack.region,
            ConcurrencySpec { reservations },
            aws(),
        ));
    }

    // The identity `couch-client` runs as: send prompts, read pictures (and,
    // with `auth: iam`, call the route); trusted as the stack file says.
    // Its statements are in the boundary whether or not it is declared.
    let images = couch_contract::images_prefix(&stack.images.prefix);
    let call_the_api = Statement::allow(
        "CallTheApi",
        &["execute-api:Invoke"],
        ROUTES
            .iter()
            .map(|(method, path, _, _)| {
                Text::from(api.execution_arn())
                    .then(format!("/$default/{method}{}", arn_path(path)))
            })
            .collect(),
    );
    let mut client_grants = vec![
        Statement::allow(
            "SendPrompts",
            &["sqs:SendMessage"],
            vec![queue.arn().into()],
        ),
        // Pictures only: the status objects beside them (`_status/*.json`)
        // hold other callers' prompts and owners.
        Statement::allow(
            "ReadImages",
            &["s3:GetObject"],
            vec![Text::from(bucket.arn()).then(format!("/{images}*.png"))],
        ),
        // Without s3:ListBucket, S3 answers a HEAD of a key that is not
        // there yet with 403, not 404 (s3/latest/API/API_HeadObject.html),
        // and `couch-client --wait` could not tell "not yet" from "denied".
        Statement::allow(
            "SeeWhetherAnImageExists",
            &["s3:ListBucket"],
            vec![bucket.arn().into()],
        )
        .when("StringLike", "s3:prefix", vec![format!("{images}*").into()]),
    ];
    // In the boundary the API is any of the account's with these routes in
    // the stack's Region: its id is AWS's to choose, and the API cannot be
    // made before the boundary (its integration names the HTTP function,
    // whose role carries the boundary). The client's own policy names the
    // stack's API.
    // A preview declares no client (`client:` is refused with `--name`):
    // its boundary holds no client statement, so no role a preview makes
    // can call an API or read pictures the way a client would.
    let mut bounded = client_grants.clone();
    bounded.push(Statement::allow(
        "CallTheApi",
        &["execute-api:Invoke"],
        ROUTES
            .iter()
            .map(|(method, path, _, _)| {
                Text::from(format!(
                    "arn:{}:execute-api:{}:*:*/$default/{method}{}",
                    aws_clients.partition(),
                    aws_clients.region,
                    arn_path(path)
                ))
            })
            .collect(),
    ));
    if stack.preview_of.is_none() {
        d.bound("Client", &bounded);
    }
    if stack.http.auth == Auth::Iam {
        client_grants.push(call_the_api);
    }
    if let Some(client) = &stack.client {
        let role = d.add(IamRole::new(
            CLIENT_ROLE,
            stack.client_role_name(),
            &RoleSpec {
                assume_role_policy: PolicyDocument::trust_principals(&client.assumed_by),
                policy: PolicyDocument::new(client_grants),
                other_inline_policies: Vec::new(),
                managed_policies: Vec::new(),
                permissions_boundary: Some(boundary().into()),
                tags: stack.resource_tags(),
            },
            aws(),
        ));
        d.output("client_role_arn", role.arn());
    } else {
        d.add(IamRole::absent(
            CLIENT_ROLE,
            stack.client_role_name(),
            Some(boundary().into()),
            stack.resource_tags(),
            aws(),
        ));
    }

    // The ceiling of every role above: the stack's own boundary, or for a
    // preview the one `bootstrap` made for every preview of the file.
    match &stack.preview_of {
        None => {
            let spec = ManagedPolicySpec {
                document: d.boundary.clone(),
                tags: stack.resource_tags(),
            };
            d.add(ManagedPolicy::new(
                BOUNDARY,
                stack.boundary_name(),
                &spec,
                aws(),
            ));
        }
        Some(file) => {
            d.add(ManagedPolicy::referenced(
                BOUNDARY,
                stack.boundary_name(),
                format!(
                    "`provisioner bootstrap --stack <the stack file> --github-repo OWNER/NAME` makes it for every preview of {file}"
                ),
                aws(),
            ));
        }
    }

    d.output("api_url", Text::from(api.endpoint()).then(ROUTE_PATH));
    d.output("images_url", Text::from(api.endpoint()).then(SUBMIT_PATH));
    d.output("api_auth", stack.http.auth.word());
    d.output("worker_function_name", worker.name());
    d.output("http_function_name", http.name());
    d.output("worker_role_arn", worker_role.arn());
    d.output("http_role_arn", http_role.arn());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{Mode, PlanOptions, Snapshot, compute, depends_on};
    use serde_json::json;
    use std::path::Path;

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
        assert_eq!(plan.summary.create, 28);
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
