//! `couch-client`: puts a prompt on the stack's queue and prints the message
//! id; the worker turns it into `s3://{bucket}/{prefix}/images/{id}.png`.
//! Runs like the old Java client (`SQS_QUEUE_URL` and the prompt as
//! arguments), and can wait for the image, send many prompts, or use the
//! synchronous HTTP API. Behaviour lives in the library; this file wires it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use couch_client::outputs::{Output, Outputs};
use couch_client::prompts::{self, Prompt, PromptRule};
use couch_client::{endpoint_of_queue_url, http, image_key, region_of_queue_url, send, wait};

#[derive(Parser)]
#[command(
    name = "couch-client",
    version,
    about = "Queue prompts for the Couch Explorers image worker (or POST one to the HTTP API)"
)]
struct Args {
    /// The prompt (words are joined with spaces), or `-` to read one prompt per
    /// line from standard input and send them ten at a time.
    #[arg(required = true, num_args = 1..)]
    prompt: Vec<String>,
    /// Queue URL (`provisioner outputs` prints it as queue_url). Also read from
    /// SQS_QUEUE_URL (the old client's variable) or COUCH_QUEUE_URL.
    #[arg(long, env = "SQS_QUEUE_URL", conflicts_with = "queue_name")]
    queue_url: Option<String>,
    /// Queue name, e.g. couch-prod-prompts, resolved to its URL.
    #[arg(long, env = "COUCH_QUEUE_NAME")]
    queue_name: Option<String>,
    /// After sending, wait until the image exists in S3 and print its s3:// URI.
    #[arg(long)]
    wait: bool,
    /// With --wait: also save the PNG to this file, or into this directory
    /// (an existing one, or a path ending in `/`) as `{message id}.png`.
    #[arg(long, value_name = "FILE|DIR", requires = "wait")]
    download: Option<PathBuf>,
    /// With --wait: give up after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    timeout: u64,
    /// The images bucket (`provisioner outputs`: images_bucket).
    #[arg(long, env = "IMAGE_BUCKET")]
    bucket: Option<String>,
    /// The images prefix (`provisioner outputs`: images_prefix).
    #[arg(long, env = "IMAGE_PREFIX")]
    prefix: Option<String>,
    /// Over HTTP (`provisioner outputs`: api_url): POST the prompt to this URL
    /// and print the image's s3:// URI and presigned URL (synchronous). With
    /// --wait, the asynchronous path instead: `POST /images` (prints the id),
    /// then `GET /images/{id}` with back-off until done, failed or --timeout.
    /// The queue's URL or name (also from SQS_QUEUE_URL, ...) is not used then.
    #[arg(long, value_name = "URL")]
    http: Option<String>,
    /// With --http: how the route authorises (the stack's http.auth; with
    /// --stack, its api_auth output): `iam` signs with SigV4 using the AWS
    /// credentials (e.g. the stack's client role), `jwt` sends the bearer
    /// token in COUCH_API_TOKEN, `none` nothing.
    #[arg(long, env = "COUCH_API_AUTH", value_parser = http::AUTH_WORDS, requires = "http")]
    auth: Option<String>,
    /// The stack's outputs, as `provisioner outputs --json > FILE` writes them:
    /// defaults for the queue URL, bucket, prefix and model id.
    #[arg(long, value_name = "FILE")]
    stack: Option<PathBuf>,
    /// The stack's model id (`provisioner outputs`: model_id): prompts are
    /// checked with its limit. Without it (or --stack), the loosest rule.
    #[arg(long, env = "MODEL_ID")]
    model_id: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(mut args: Args) -> Result<ExitCode> {
    let from_stdin = args.prompt.len() == 1 && args.prompt[0] == "-";
    if let Some(path) = &args.stack {
        let outputs = Outputs::read(path)?;
        args.model_id = args
            .model_id
            .take()
            .or_else(|| outputs.get(Output::ModelId));
        args.bucket = args
            .bucket
            .take()
            .or_else(|| outputs.get(Output::ImagesBucket));
        args.prefix = args
            .prefix
            .take()
            .or_else(|| outputs.get(Output::ImagesPrefix));
        if args.http.is_none() && args.queue_url.is_none() && args.queue_name.is_none() {
            args.queue_url = outputs.get(Output::QueueUrl);
        }
        if args.http.is_some() {
            args.auth = args.auth.take().or_else(|| outputs.get(Output::ApiAuth));
        }
    }
    let rule: PromptRule = prompts::rule_for(args.model_id.as_deref()).map_err(|e| anyhow!(e))?;
    if let Some(url) = &args.http {
        if from_stdin {
            bail!("--http sends one prompt; pass it as arguments");
        }
        let prompt = Prompt::parse(&args.prompt.join(" "), rule).map_err(|e| anyhow!(e))?;
        let auth = http_auth(args.auth.as_deref(), url).await?;
        if args.wait {
            return submit_and_wait(url, prompt.as_str(), auth, &args).await;
        }
        let (url, text) = (url.clone(), prompt.as_str().to_owned());
        let answer = tokio::task::spawn_blocking(move || http::generate(&url, &text, &auth))
            .await
            .context("the HTTP request did not finish")?
            .map_err(|e| anyhow!(e))?;
        return Ok(match answer {
            http::Answer::Created { s3_uri, url } => {
                println!("{s3_uri}");
                println!("{url}");
                ExitCode::SUCCESS
            }
            http::Answer::Refused { status, error } => {
                eprintln!("Error: HTTP {status}: {error}");
                ExitCode::from(1)
            }
        });
    }

    let queue_url = args.queue_url.clone().or_else(|| {
        std::env::var("COUCH_QUEUE_URL")
            .ok()
            .filter(|v| !v.is_empty())
    });
    // The stacks live in eu-west-1 unless the environment, the profile or the
    // queue URL says otherwise.
    let fallback = queue_url
        .as_deref()
        .and_then(region_of_queue_url)
        .unwrap_or_else(|| "eu-west-1".to_owned());
    let region = region_chain(None, fallback);
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(couch_https::client())
        .region(region)
        .load()
        .await;
    let mut sqs_conf = aws_sdk_sqs::config::Builder::from(&conf);
    // An emulator's queue URL is also its endpoint, unless an endpoint is
    // configured the SDK's way (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SQS`).
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    let configured = conf.endpoint_url().is_some()
        || set("AWS_ENDPOINT_URL_SQS")
        || std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_ok_and(|v| v == "true");
    if !configured && let Some(endpoint) = queue_url.as_deref().and_then(endpoint_of_queue_url) {
        eprintln!("the queue is an emulator's on this machine or network: sending to {endpoint}");
        sqs_conf = sqs_conf.endpoint_url(endpoint);
    }
    let sqs = aws_sdk_sqs::Client::from_conf(sqs_conf.build());
    let url = match (queue_url, &args.queue_name) {
        (Some(url), _) => url,
        (None, Some(name)) => sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .with_context(|| format!("looking up queue {name}"))?
            .queue_url
            .context("SQS returned no URL")?,
        (None, None) => bail!(
            "pass --queue-url or --queue-name (or set SQS_QUEUE_URL, COUCH_QUEUE_URL or COUCH_QUEUE_NAME)"
        ),
    };

    if from_stdin {
        if args.wait {
            bail!("--wait follows one prompt; with `-` the ids are printed, one per line");
        }
        return send_lines(&sqs, &url, rule).await;
    }

    let prompt = Prompt::parse(&args.prompt.join(" "), rule).map_err(|e| anyhow!(e))?;
    let id = send::one(&sqs, &url, &prompt).await?;
    println!("{id}");
    std::io::stdout().flush().ok();
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }

    let (Some(bucket), Some(prefix)) = (args.bucket, args.prefix) else {
        bail!(
            "--wait needs the images bucket and prefix: --bucket/--prefix or IMAGE_BUCKET/IMAGE_PREFIX"
        );
    };
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            // Emulators serve buckets path-style; real S3 is fine either way.
            .force_path_style(conf.endpoint_url().is_some())
            .build(),
    );
    let key = image_key(&prefix, &id);
    let on_terminal = std::io::stderr().is_terminal();
    let mut progress = |elapsed: Duration| {
        if on_terminal {
            eprint!(
                "\rwaiting for s3://{bucket}/{key} ... {} s",
                elapsed.as_secs()
            );
        } else {
            eprintln!(
                "waiting for s3://{bucket}/{key} ... {} s",
                elapsed.as_secs()
            );
        }
    };
    let waited = wait::until_exists(
        &s3,
        &bucket,
        &key,
        Duration::from_secs(args.timeout),
        Duration::from_secs(1),
        &mut progress,
    )
    .await;
    if on_terminal {
        eprintln!();
    }
    waited?;
    println!("s3://{bucket}/{key}");
    if let Some(target) = &args.download {
        let file = wait::download_path(target, &key);
        let n = wait::download(&s3, &bucket, &key, &file).await?;
        eprintln!("saved {} ({n} bytes)", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The asynchronous path over HTTP: submit, print the id, poll with back-off
/// (1 s, growing by half up to 5 s) until done (print the s3:// URI, and
/// download the picture with --download), failed (the reason, exit 1) or
/// --timeout (exit 1).
async fn submit_and_wait(
    url: &str,
    prompt: &str,
    auth: http::Auth,
    args: &Args,
) -> Result<ExitCode> {
    let base = http::api_base(url).to_owned();
    let auth = std::sync::Arc::new(auth);
    let blocking = |f: Box<dyn FnOnce() -> Result<http::Status, http::Answer> + Send>| async move {
        tokio::task::spawn_blocking(f)
            .await
            .context("the HTTP request did not finish")
    };
    let (text, a) = (prompt.to_owned(), std::sync::Arc::clone(&auth));
    let submitted = tokio::task::spawn_blocking(move || http::submit(&base, &text, &a))
        .await
        .context("the HTTP request did not finish")?;
    let (id, status_url) = match submitted {
        Ok(s) => s,
        Err(http::Answer::Refused { status, error }) => {
            eprintln!("Error: HTTP {status}: {error}");
            return Ok(ExitCode::from(1));
        }
        Err(http::Answer::Created { .. }) => bail!("the API answered 201 to POST /images"),
    };
    println!("{id}");
    std::io::stdout().flush().ok();
    let started = std::time::Instant::now();
    let timeout = Duration::from_secs(args.timeout);
    let mut pause = Duration::from_secs(1);
    loop {
        let (u, a) = (status_url.clone(), std::sync::Arc::clone(&auth));
        match blocking(Box::new(move || http::status(&u, &a))).await? {
            Ok(http::Status::Done { s3_uri, url }) => {
                println!("{s3_uri}");
                if let Some(target) = &args.download {
                    let key = s3_uri.splitn(4, '/').nth(3).unwrap_or(&id).to_owned();
                    let file = wait::download_path(target, &key);
                    let saved = file.clone();
                    let n = tokio::task::spawn_blocking(move || http::download(&url, &saved))
                        .await
                        .context("the download did not finish")?
                        .map_err(|e| anyhow!(e))?;
                    eprintln!("saved {} ({n} bytes)", file.display());
                }
                return Ok(ExitCode::SUCCESS);
            }
            Ok(http::Status::Failed { reason }) => {
                eprintln!("Error: image {id} failed: {reason}");
                return Ok(ExitCode::from(1));
            }
            Ok(http::Status::Queued) => {}
            Err(http::Answer::Refused { status, error }) => {
                eprintln!("Error: HTTP {status}: {error}");
                return Ok(ExitCode::from(1));
            }
            Err(http::Answer::Created { .. }) => bail!("unexpected 201 to GET {status_url}"),
        }
        if started.elapsed() + pause > timeout {
            eprintln!(
                "Error: image {id} is still queued after {} s ({status_url})",
                args.timeout
            );
            return Ok(ExitCode::from(1));
        }
        eprintln!("waiting for {id} ... {} s", started.elapsed().as_secs());
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_secs(5));
    }
}

/// `first` if given, then AWS's default region chain (the environment, the
/// profile, the instance metadata), then `fallback`. The chain is built here
/// rather than taken from `RegionProviderChain::default_provider()` because its
/// instance-metadata client must be given the project's HTTP client
/// (`couch_https`): the SDK here has none of its own.
fn region_chain(
    first: Option<aws_config::Region>,
    fallback: String,
) -> aws_config::meta::region::RegionProviderChain {
    let providers = aws_config::provider_config::ProviderConfig::default()
        .with_http_client(couch_https::client());
    aws_config::meta::region::RegionProviderChain::first_try(first)
        .or_else(aws_config::environment::region::EnvironmentVariableRegionProvider::new())
        .or_else(
            aws_config::profile::region::ProfileFileRegionProvider::builder()
                .configure(&providers)
                .build(),
        )
        .or_else(
            aws_config::imds::region::ImdsRegionProvider::builder()
                .configure(&providers)
                .build(),
        )
        .or_else(aws_config::Region::new(fallback))
}

/// What `--auth` asks for: the AWS credentials (SigV4) or the bearer token.
async fn http_auth(word: Option<&str>, url: &str) -> Result<http::Auth> {
    use aws_credential_types::provider::ProvideCredentials;
    match word.unwrap_or("none") {
        "iam" => {
            let fallback = http::region_of_api_url(url).unwrap_or_else(|| "eu-west-1".to_owned());
            let region = region_chain(
                http::region_of_api_url(url).map(aws_config::Region::new),
                fallback,
            );
            let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(couch_https::client())
                .region(region)
                .load()
                .await;
            let provider = conf
                .credentials_provider()
                .context("--auth iam signs requests, but no AWS credentials are configured")?;
            let credentials = provider
                .provide_credentials()
                .await
                .context("--auth iam: reading the AWS credentials")?;
            let region = conf
                .region()
                .map(|r| r.as_ref().to_owned())
                .unwrap_or_else(|| "eu-west-1".to_owned());
            Ok(http::Auth::Iam {
                credentials,
                region,
            })
        }
        "jwt" => {
            let token = std::env::var(http::TOKEN_VARIABLE)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .with_context(|| {
                    format!(
                        "--auth jwt sends a bearer token: set {} to one the stack's issuer gave you",
                        http::TOKEN_VARIABLE
                    )
                })?;
            Ok(http::Auth::Bearer(token.trim().to_owned()))
        }
        "none" => Ok(http::Auth::None),
        other => bail!(
            "the route's authorization {other:?} is none of {}",
            http::AUTH_WORDS.join(", ")
        ),
    }
}

/// `-`: one prompt per line from standard input; ids printed one per line in
/// input order; lines that are not prompts are reported and skipped.
async fn send_lines(sqs: &aws_sdk_sqs::Client, url: &str, rule: PromptRule) -> Result<ExitCode> {
    let lines = prompts::lines(std::io::stdin().lock(), rule).context("reading standard input")?;
    let mut skipped = 0;
    let mut good = Vec::new();
    for line in lines {
        match line.prompt {
            Ok(p) => good.push(p),
            Err(e) => {
                skipped += 1;
                eprintln!("line {}: skipped: {e}", line.number);
            }
        }
    }
    let outcomes = send::many(sqs, url, &good).await?;
    let mut failed = 0;
    for outcome in outcomes {
        match outcome {
            Ok(id) => println!("{id}"),
            Err(why) => {
                failed += 1;
                eprintln!("not sent: {why}");
            }
        }
    }
    eprintln!(
        "sent {}, skipped {skipped}, failed {failed}",
        good.len() - failed
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
