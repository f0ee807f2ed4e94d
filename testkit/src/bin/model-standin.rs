//! The Bedrock stand-in as a program, for running the system locally:
//! `model-standin [--port N] [--throttle-every N] [--delay-ms N | --latency-ms N]
//! [--max-in-flight N] [--model-state MODEL_ID=active|legacy|eol|unknown|unsubscribed ...]`.
//! Prints its endpoint (for `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, the
//! functions' model calls, and `AWS_ENDPOINT_URL_BEDROCK`, the provisioner's
//! checks of the declared model) and serves until killed. Prompts containing
//! FILTER are refused like the content filter (the HTTP function answers
//! 422), THROTTLE or every n-th call are throttled (429); with
//! `--max-in-flight N` a call beyond N at once is throttled (a capacity, as
//! Bedrock's quota), each picture taking `--latency-ms`. `GET
//! /_standin/stats` answers the accepted and throttled counts.

use std::time::Duration;

use testkit::bedrock::{Catalog, FakeBedrock, ModelState, Options};

fn usage() -> ! {
    eprintln!(
        "usage: model-standin [--port N] [--throttle-every N] [--delay-ms N | --latency-ms N] [--max-in-flight N] [--model-state MODEL_ID=active|legacy|eol|unknown|unsubscribed ...]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut options = Options::default();
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    let mut states = Vec::new();
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        if flag == "--model-state" {
            let (id, state) = value.split_once('=').unwrap_or_else(|| usage());
            let state: ModelState = state.parse().unwrap_or_else(|_| usage());
            states.push((id.to_owned(), state));
            continue;
        }
        let number = value.parse::<u64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--port" => port = u16::try_from(number).unwrap_or_else(|_| usage()),
            "--throttle-every" => options.throttle_every = Some(number),
            "--delay-ms" | "--latency-ms" => options.delay = Duration::from_millis(number),
            "--max-in-flight" if number > 0 => {
                options.max_in_flight = Some(usize::try_from(number).unwrap_or_else(|_| usage()))
            }
            _ => usage(),
        }
    }
    let model = FakeBedrock::start_with_catalog(port, options, Catalog::default()).await;
    for (id, state) in states {
        model.set_model(&id, state);
    }
    println!("model stand-in on {}", model.endpoint);
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
