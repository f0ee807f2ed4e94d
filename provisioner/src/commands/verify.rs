//! `provisioner verify --stack F [--end-to-end]`: is what is deployed able
//! to serve? Each function's `live` alias is invoked once with the health
//! event (`aws::health`: configuration, a write under the prefix, the
//! model's family; no model call), as `apply` does on every new version
//! before moving traffic. `--end-to-end` then sends one real prompt through
//! the queue and one through the HTTP API, waits for both pictures in S3 and
//! prints each one's latency: two model invocations, said before they are
//! made. Exit 1 when anything fails. Reads only: no stack lock.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use super::{Session, deployed};
use crate::aws::aliases::LIVE;
use crate::aws::health;
use couch_contract::outputs::Output;

/// Invoke each function's `live` alias with the health check (its
/// configuration, a write under the prefix, the model's family; no model
/// call), as apply does on each new version. Exit 1 when one fails.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Also send one real prompt through the queue and one through the
    /// HTTP API and wait for both pictures (two model calls, billed).
    #[arg(long)]
    pub end_to_end: bool,
    /// With --end-to-end: POST to this URL instead of the deployed API
    /// (e.g. `provisioner local`'s).
    #[arg(long, value_name = "URL", requires = "end_to_end")]
    pub api_url: Option<String>,
    /// With --end-to-end: seconds to wait for each picture.
    #[arg(long = "timeout", value_name = "TIMEOUT", default_value_t = 300)]
    pub timeout_seconds: u64,
}

/// The prompt `--end-to-end` sends.
pub const PROMPT: &str = "provisioner verify: a lighthouse on a cliff at dusk";

/// Invokes each function's `live` with the health event; prints a line per
/// function (and per failed check); whether all passed.
async fn health_checks(session: &Session) -> Result<bool> {
    let stack = &session.stack;
    let mut all_ok = true;
    for (label, name) in [("worker", stack.worker_name()), ("http", stack.http_name())] {
        let h = health::check(&session.aws.lambda, &name, LIVE)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        if h.ok {
            println!(
                "function.{label}: {name}:{LIVE} (version {}) healthy in {} ms: {}",
                h.version,
                h.latency.as_millis(),
                h.passed()
            );
        } else {
            all_ok = false;
            println!(
                "function.{label}: {name}:{LIVE} (version {}) FAILED its health check: {}",
                h.version,
                h.failure()
            );
        }
    }
    Ok(all_ok)
}

/// Waits until `key` exists in `bucket`; the time it took from `since`.
async fn wait_for_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    since: Instant,
    timeout: Duration,
) -> Result<Duration> {
    loop {
        match s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => return Ok(since.elapsed()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
            Err(e) => {
                return Err(anyhow!(crate::aws::aws_error(
                    &format!("s3:HeadObject {key}"),
                    e
                )));
            }
        }
        if since.elapsed() >= timeout {
            bail!(
                "no picture at s3://{bucket}/{key} after {} s (see `provisioner logs --id` and `provisioner status`)",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `POST {url} {"prompt": PROMPT}` (blocking client on its own thread): status and body.
async fn post_prompt(url: String, timeout: Duration) -> Result<(u16, Value)> {
    tokio::task::spawn_blocking(move || -> Result<(u16, Value)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut answer = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(json!({ "prompt": PROMPT }).to_string())
            .with_context(|| format!("POST {url}"))?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer of POST {url}"))?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    })
    .await
    .context("the HTTP call's thread")?
}

async fn end_to_end(session: &Session, args: &Args) -> Result<()> {
    let snapshot = session.read().await?;
    let outputs = session.outputs(&snapshot);
    let queue_url = deployed(&outputs, Output::QueueUrl)?.to_owned();
    let bucket = deployed(&outputs, Output::ImagesBucket)?.to_owned();
    let prefix = deployed(&outputs, Output::ImagesPrefix)?.to_owned();
    let api_url = match &args.api_url {
        Some(u) => u.clone(),
        None => deployed(&outputs, Output::ApiUrl)?.to_owned(),
    };
    println!(
        "end to end: one prompt through the queue and one through the HTTP API; this makes two calls to {} (billed by Amazon Bedrock at that model's price per image)",
        session.stack.model.id.as_str()
    );
    let sent = Instant::now();
    let message = session
        .aws
        .sqs
        .send_message()
        .queue_url(&queue_url)
        .message_body(json!({ "prompt": PROMPT }).to_string())
        .send()
        .await
        .map_err(|e| {
            anyhow!(crate::aws::aws_error(
                &format!("sqs:SendMessage {queue_url}"),
                e
            ))
        })?;
    let id = message.message_id().unwrap_or_default().to_owned();
    let key = couch_contract::image_key(&prefix, &id);
    println!("queue: message {id} sent; waiting for s3://{bucket}/{key}");

    let posted = Instant::now();
    let (status, body) =
        post_prompt(api_url.clone(), Duration::from_secs(args.timeout_seconds)).await?;
    let http_latency = posted.elapsed();
    let http = if status == 201 {
        let uri = body["s3_uri"].as_str().unwrap_or_default().to_owned();
        println!(
            "http: POST {api_url} answered 201 in {:.1} s: {uri}",
            http_latency.as_secs_f64()
        );
        Ok(())
    } else {
        println!("http: POST {api_url} answered {status}: {body}");
        Err(anyhow!("the HTTP API answered {status}: {body}"))
    };
    let queued = wait_for_object(
        &session.aws.s3,
        &bucket,
        &key,
        sent,
        Duration::from_secs(args.timeout_seconds),
    )
    .await;
    match &queued {
        Ok(latency) => println!(
            "queue: s3://{bucket}/{key} stored {:.1} s after sending",
            latency.as_secs_f64()
        ),
        Err(e) => println!("queue: {e}"),
    }
    http.and(queued.map(|_| ()))
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    let session = Session::open(path, inputs).await?;
    let healthy = health_checks(&session).await?;
    if !healthy {
        println!("verify: a function failed its health check (its answer is above)");
        return Ok(ExitCode::FAILURE);
    }
    if args.end_to_end {
        if let Err(e) = end_to_end(&session, args).await {
            println!("verify: end to end failed: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
        println!("verify: healthy, and both paths made a picture");
    } else {
        println!("verify: both functions are healthy (`--end-to-end` also makes two pictures)");
    }
    Ok(ExitCode::SUCCESS)
}
