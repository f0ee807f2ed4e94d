//! The functions: each as log group → role → function → `live` alias, with
//! the policy derived from what it is wired to; the worker's trigger on the
//! queue; the HTTP function's reserved concurrency, checked against the
//! account's.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::queueing::Queueing;
use super::{
    API_5XX_WHAT, BOUNDARY, CONCURRENCY, Declaration, HTTP, HTTP_ALIAS, HTTP_ERRORS_WHAT,
    HTTP_LOGS, HTTP_ROLE, HTTP_THROTTLES_WHAT, References, TRIGGER, WORKER, WORKER_ALIAS,
    WORKER_LOGS, WORKER_ROLE,
};
use crate::artifacts::{Artifact, Artifacts};
use crate::aws::Aws;
use crate::aws::aliases::{AliasSpec, FunctionAlias, Shift};
use crate::aws::buckets::image_store_statements;
use crate::aws::concurrency::{AccountConcurrency, ConcurrencySpec, Reservation};
use crate::aws::functions::{ARM64, FunctionAttrs, FunctionSpec, HANDLER, LambdaFunction, RUNTIME};
use crate::aws::log_groups::{LogGroup, LogGroupSpec, writer_statement};
use crate::aws::managed_policies::ManagedPolicy;
use crate::aws::models::invoke_statement;
use crate::aws::policies::{PolicyDocument, Statement};
use crate::aws::roles::{IamRole, RoleSpec};
use crate::aws::triggers::{
    QueueTrigger, REPORT_BATCH_ITEM_FAILURES, TriggerSpec, consumer_statement,
};
use crate::engine::{Handle, Ref, Text};
use crate::stack::Stack;

/// A function as the rest of the stack wires to it.
pub struct Function {
    pub role: Handle<IamRole>,
    pub function: Handle<LambdaFunction>,
    pub alias: Handle<FunctionAlias>,
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

fn function(d: &mut Declaration, stack: &Stack, aws: &Arc<Aws>, f: FunctionDecl<'_>) -> Function {
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
            application_log_level: stack.logs.level.lambda().into(),
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
    Function {
        role,
        function,
        alias,
    }
}

/// The stack's permissions boundary, as the roles name it.
pub fn boundary() -> Ref {
    Handle::<ManagedPolicy>::new(BOUNDARY).arn()
}

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

/// The worker: fed by the queue, stores images, moves what it gives up to
/// the dead-letter queue itself (with the reason); its trigger.
pub fn worker(
    d: &mut Declaration,
    stack: &Stack,
    aws: &Arc<Aws>,
    artifacts: &Artifacts,
    refs: &References,
    q: &Queueing,
) -> Function {
    let (bucket, model, queue, dlq) = (&refs.bucket, &refs.model, &q.queue, &q.dlq);
    let capacity = stack
        .capacity()
        .unwrap_or_else(|_| stack.adaptive_capacity());
    let mut worker_grants = vec![
        consumer_statement(queue.arn()),
        invoke_statement(model, &stack.model),
        Statement::allow(
            "DeadLetterPrompts",
            &["sqs:SendMessage"],
            vec![dlq.arn().into()],
        ),
    ];
    worker_grants.extend(image_store_statements(bucket, &stack.images.prefix));
    let worker = function(
        d,
        stack,
        aws,
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
            // not document how an alias's weights split the batches (docs/reference/functions.md).
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
            function_name: worker.alias.name().into(),
            batch_size: stack.worker.batch_size,
            function_response_types: vec![REPORT_BATCH_ITEM_FAILURES.into()],
            maximum_concurrency: capacity.instances,
            enabled: true,
        },
        Arc::clone(aws),
    ));

    worker
}

/// The HTTP function: behind the API, stores images and reads their status;
/// on SQS it only sends prompts (POST /images).
pub fn http(
    d: &mut Declaration,
    stack: &Stack,
    aws: &Arc<Aws>,
    artifacts: &Artifacts,
    refs: &References,
    q: &Queueing,
) -> Function {
    let (bucket, model, queue) = (&refs.bucket, &refs.model, &q.queue);
    let mut http_grants = vec![invoke_statement(model, &stack.model)];
    http_grants.extend(image_store_statements(bucket, &stack.images.prefix));
    http_grants.push(Statement::allow(
        "SubmitPrompts",
        &["sqs:SendMessage"],
        vec![queue.arn().into()],
    ));
    function(
        d,
        stack,
        aws,
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
    )
}

/// The HTTP function's reservation, checked against the account's
/// concurrency (declared only with one).
pub fn reservation(d: &mut Declaration, stack: &Stack, aws: &Arc<Aws>) {
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
            Arc::clone(aws),
        ));
    }
}
