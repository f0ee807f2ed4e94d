//! `couch-client`: puts a prompt on the stack's queue and prints the message id.
//! The worker turns it into `s3://{bucket}/{prefix}/images/{message id}.png`.

use anyhow::{Context, Result, bail};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "couch-client",
    version,
    about = "Queue a prompt for the Couch Explorers image worker"
)]
struct Args {
    /// The prompt (1..=512 characters).
    prompt: String,
    /// Queue URL (`provisioner outputs` prints it as queue_url).
    #[arg(long, env = "COUCH_QUEUE_URL", conflicts_with = "queue_name")]
    queue_url: Option<String>,
    /// Queue name, e.g. couch-prod-prompts, resolved to its URL.
    #[arg(long, env = "COUCH_QUEUE_NAME")]
    queue_name: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let prompt = args.prompt.trim();
    if prompt.is_empty() || prompt.chars().count() > 512 {
        bail!("the prompt must be 1 to 512 characters");
    }
    // The stacks live in eu-west-1 unless the environment or profile says otherwise.
    let region =
        aws_config::meta::region::RegionProviderChain::default_provider().or_else("eu-west-1");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let url = match (args.queue_url, args.queue_name) {
        (Some(url), _) => url,
        (None, Some(name)) => sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .with_context(|| format!("looking up queue {name}"))?
            .queue_url
            .context("SQS returned no URL")?,
        (None, None) => {
            bail!("pass --queue-url or --queue-name (or set COUCH_QUEUE_URL / COUCH_QUEUE_NAME)")
        }
    };
    let sent = sqs
        .send_message()
        .queue_url(&url)
        .message_body(prompt)
        .send()
        .await
        .with_context(|| format!("sending the prompt to {url}"))?;
    println!("{}", sent.message_id.unwrap_or_default());
    Ok(())
}
