//! `provisioner local`: the deployed stack's functions run on this machine
//! against the emulator. `cargo lambda watch` serves both functions with the
//! configuration the stack deploys (read back from the deployed stack, as
//! `provisioner outputs` does); the local trigger feeds the worker from the
//! stack's queue; the local API Gateway serves `POST /image_generator`.
//! Stops everything it started on Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use http::Method;
use tokio::signal::unix::{SignalKind, signal};

use crate::artifacts::{HTTP_PACKAGE, WORKER_PACKAGE};
use crate::local::api_gateway::ApiGateway;
use crate::local::trigger::{Trigger, pause_emulator_mappings, resume_emulator_mappings};
use crate::local::watch::{LambdaApi, Watch, WatchConfig, prebuild};
use couch_contract::outputs::Output;
use couch_contract::routes;

/// Run the deployed stack's functions on this machine against the emulator
/// (AWS_ENDPOINT_URL): cargo lambda watch serves them, a local trigger feeds
/// the worker from the queue, a local API Gateway serves the HTTP route.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Port of the local HTTP API.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Port of cargo-lambda's emulated Lambda API.
    #[arg(long, default_value_t = 9000)]
    pub lambda_port: u16,
    /// The model the functions call (e.g. the printed endpoint of `model-standin`).
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME")]
    pub model_endpoint: Option<String>,
    /// The cargo-lambda executable [default: .venv/bin/cargo-lambda, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub cargo_lambda: Option<PathBuf>,
    /// Do not build the functions first (they are built on first invocation).
    #[arg(long)]
    pub no_build: bool,
}

fn cargo_lambda(args: &Args) -> PathBuf {
    args.cargo_lambda.clone().unwrap_or_else(|| {
        let venv = Path::new(".venv/bin/cargo-lambda");
        if venv.exists() {
            venv.to_path_buf()
        } else {
            PathBuf::from("cargo-lambda")
        }
    })
}

/// The emulator the functions run against and the model they call; both
/// required before anything starts.
fn endpoints(args: &Args) -> Result<(String, String)> {
    let emulator = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            anyhow!(
                "`provisioner local` runs the functions against an AWS emulator: set AWS_ENDPOINT_URL \
                 (`source scripts/moto` starts one)"
            )
        })?;
    let model = args.model_endpoint.clone().ok_or_else(|| {
        anyhow!(
            "the functions need a model: start the stand-in (`target/debug/model-standin`) and pass \
             --model-endpoint URL (or set AWS_ENDPOINT_URL_BEDROCK_RUNTIME)"
        )
    })?;
    Ok((emulator, model))
}

/// cargo lambda watch's own environment: where AWS and the model are.
fn process_environment(emulator: &str, model: &str, region: &str) -> BTreeMap<String, String> {
    [
        ("AWS_ENDPOINT_URL", emulator),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", model),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The functions' environment as the deployed ones have it: the deployed
/// outputs both read, and the worker's settings (both functions share cargo
/// lambda watch's environment; the HTTP one ignores them): its last allowed
/// receive dead-letters a prompt, where to, and its share of the model's
/// capacity.
fn function_environment(
    stack: &crate::stack::Stack,
    outputs: &BTreeMap<String, Option<String>>,
    capacity: &crate::stack::capacity::Capacity,
) -> Result<BTreeMap<String, String>> {
    use couch_contract::env;
    let function_env: BTreeMap<String, String> = [
        (env::IMAGE_BUCKET, Output::ImagesBucket),
        (env::IMAGE_PREFIX, Output::ImagesPrefix),
        (env::MODEL_ID, Output::ModelId),
        (env::MODEL_REGION, Output::ModelRegion),
        (env::QUEUE_ARN, Output::QueueArn),
    ]
    .into_iter()
    .map(|(var, output)| Ok((var.to_owned(), super::deployed(outputs, output)?.to_owned())))
    .collect::<Result<_>>()?;
    let mut function_env = function_env;
    function_env.insert(
        env::MAX_RECEIVE_COUNT.to_owned(),
        stack.queue.max_receive_count.to_string(),
    );
    function_env.insert(env::DLQ_NAME.to_owned(), stack.dlq_name());
    // cargo lambda watch gives no real deadline; the worker's budget is the
    // timeout the local trigger holds it to.
    function_env.insert(
        env::WORKER_TIMEOUT_SECONDS.to_owned(),
        stack.worker.timeout_seconds.to_string(),
    );
    function_env.insert(
        env::WORKER_CONCURRENCY.to_owned(),
        capacity.per_instance.to_string(),
    );
    function_env.insert(
        env::WORKER_PACE.to_owned(),
        if capacity.model_limit.is_some() {
            "stated"
        } else {
            "adaptive"
        }
        .to_owned(),
    );
    Ok(function_env)
}

/// The functions' lines into their log groups, as Lambda does.
fn forward_logs(watch: &mut Watch, session: &super::Session) {
    let stack = &session.stack;
    if let Some(output) = watch.take_output() {
        let sink = crate::local::logs::LogSink {
            logs: session.aws.logs.clone(),
            groups: [
                (WORKER_PACKAGE, stack.worker_name()),
                (HTTP_PACKAGE, stack.http_name()),
            ]
            .into_iter()
            .map(|(package, function)| {
                (
                    package.to_owned(),
                    crate::stack::Stack::log_group_name(&function),
                )
            })
            .collect(),
            stream: format!("local/{}", std::process::id()),
        };
        tokio::spawn(sink.forward(output));
    }
}

/// What the local run prints once everything is up.
struct Announce<'a> {
    watch: &'a str,
    model: &'a str,
    emulator: &'a str,
    queue_url: &'a str,
    stack: &'a crate::stack::Stack,
    capacity: &'a crate::stack::capacity::Capacity,
    paused: &'a [String],
    api_url: &'a str,
    port: u16,
}

fn announce(a: &Announce<'_>) {
    println!(
        "functions: cargo lambda watch on {} ({WORKER_PACKAGE}, {HTTP_PACKAGE}; model at {}; AWS at {})",
        a.watch, a.model, a.emulator
    );
    println!(
        "worker: polling {} (batches of up to {}, {} at a time, {} model call(s) each){}",
        a.queue_url,
        a.stack.worker.batch_size,
        a.capacity.instances,
        a.capacity.per_instance,
        if a.paused.is_empty() {
            String::new()
        } else {
            format!(
                "; the emulator's event source mapping {} is disabled until this stops",
                a.paused.join(", ")
            )
        }
    );
    println!(
        "http: curl -X POST {} -H 'content-type: application/json' -d '{{\"prompt\": \"a cat on a couch\"}}'",
        a.api_url
    );
    println!(
        "http: curl -i -X POST http://127.0.0.1:{}{} -d '{{\"prompt\": \"a cat on a couch\"}}' (202, then GET the Location)",
        a.port,
        routes::SUBMIT.path
    );
    println!(
        "page: http://127.0.0.1:{}{} (try it in a browser)",
        a.port,
        routes::PAGE.path
    );
    println!("ready: local API {} (Ctrl-C stops everything)", a.api_url);
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    let (emulator, model) = endpoints(args)?;
    let session = super::Session::open(path, inputs).await?;
    let snapshot = session.read().await?;
    let outputs = session.outputs(&snapshot);
    let queue_url = super::deployed(&outputs, Output::QueueUrl)?.to_owned();
    let queue_arn = super::deployed(&outputs, Output::QueueArn)?.to_owned();
    let worker_name = super::deployed(&outputs, Output::WorkerFunctionName)?.to_owned();
    let capacity = session
        .stack
        .capacity()
        .unwrap_or_else(|_| session.stack.adaptive_capacity());
    let function_env = function_environment(&session.stack, &outputs, &capacity)?;
    let region = session.aws.region.clone();
    let process_env = process_environment(&emulator, &model, &region);
    // The port first: a busy port fails before anything is started or changed.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{} (--port)", args.port))?;
    if !args.no_build {
        eprintln!(
            "building both functions for local runs (cargo build --bin {WORKER_PACKAGE} / {HTTP_PACKAGE})"
        );
        prebuild(&[WORKER_PACKAGE, HTTP_PACKAGE]).await?;
    }
    let stack = &session.stack;
    let mut watch = Watch::start(&WatchConfig {
        cargo_lambda: cargo_lambda(args),
        port: args.lambda_port,
        concurrency: capacity.instances,
        function_env,
        process_env,
    })
    .await?;
    forward_logs(&mut watch, &session);
    let paused = match pause_emulator_mappings(&session.aws.lambda, &worker_name, &queue_arn).await
    {
        Ok(p) => p,
        Err(e) => {
            watch.stop().await;
            return Err(e.into());
        }
    };

    let trigger = trigger(stack, &queue_url, queue_arn, &region);
    let worker = LambdaApi::new(&watch.endpoint, &region, WORKER_PACKAGE);
    let api = api_gateway(&watch.endpoint, &region, stack);
    let api_url = format!("http://127.0.0.1:{}{}", args.port, routes::SYNC.path);
    announce(&Announce {
        watch: &watch.endpoint,
        model: &model,
        emulator: &emulator,
        queue_url: &queue_url,
        stack,
        capacity: &capacity,
        paused: &paused,
        api_url: &api_url,
        port: args.port,
    });

    let outcome = serve(
        &session,
        &trigger,
        &worker,
        api,
        listener,
        &mut watch,
        capacity.instances,
    )
    .await;
    eprintln!(
        "stopping: the emulator's event source mapping is enabled again, then cargo lambda watch stops"
    );
    if let Err(e) = resume_emulator_mappings(&session.aws.lambda, &paused).await {
        eprintln!("warning: {e}; `provisioner apply` enables it again");
    }
    watch.stop().await;
    outcome.map(|()| ExitCode::SUCCESS)
}

/// The queue's event source mapping, as Lambda would poll it for the
/// worker: its batch size, a long poll, the worker's timeout.
fn trigger(
    stack: &crate::stack::Stack,
    queue_url: &str,
    queue_arn: String,
    region: &str,
) -> Trigger {
    Trigger {
        queue_url: queue_url.to_owned(),
        queue_arn,
        region: region.to_owned(),
        batch_size: stack.worker.batch_size,
        wait_seconds: 20,
        timeout: Duration::from_secs(u64::from(stack.worker.timeout_seconds)),
    }
}

/// The local API Gateway: every route of the contract to the HTTP function
/// under `cargo lambda watch`, with the stack's integration timeout.
fn api_gateway(watch: &str, region: &str, stack: &crate::stack::Stack) -> Arc<ApiGateway> {
    let routes: Vec<(Method, &str)> = routes::ALL
        .iter()
        .map(|r| (r.method.parse().unwrap_or(Method::POST), r.path))
        .collect();
    Arc::new(ApiGateway::new(
        &routes,
        Arc::new(LambdaApi::new(watch, region, HTTP_PACKAGE)),
        Duration::from_secs(u64::from(stack.http.timeout_seconds)),
    ))
}

/// Polls the queue into the worker and serves the API until Ctrl-C,
/// SIGTERM, or `cargo lambda watch` stopping (an error).
async fn serve(
    session: &super::Session,
    trigger: &Trigger,
    worker: &LambdaApi,
    api: Arc<ApiGateway>,
    listener: tokio::net::TcpListener,
    watch: &mut Watch,
    instances: u32,
) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        () = trigger.run(&session.aws.sqs, worker, instances) => Ok(()),
        () = api.serve(listener) => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = term.recv() => Ok(()),
        status = watch.exited() => Err(anyhow!("cargo lambda watch stopped ({status})")),
    }
}
