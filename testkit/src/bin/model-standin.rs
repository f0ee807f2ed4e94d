//! The Bedrock stand-in as a program, for running the system locally:
//! `model-standin [--port N] [--throttle-every N] [--delay-ms N]`. Prints its
//! endpoint (for `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`) and serves until killed.
//! Prompts containing FILTER are refused like the content filter (the HTTP
//! function answers 422), THROTTLE or every n-th call are throttled (429).

use std::time::Duration;

use testkit::bedrock::{FakeBedrock, Options};

fn usage() -> ! {
    eprintln!("usage: model-standin [--port N] [--throttle-every N] [--delay-ms N]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut options = Options::default();
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        let number = value.parse::<u64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--port" => port = u16::try_from(number).unwrap_or_else(|_| usage()),
            "--throttle-every" => options.throttle_every = Some(number),
            "--delay-ms" => options.delay = Duration::from_millis(number),
            _ => usage(),
        }
    }
    let model = FakeBedrock::start_on(port, options).await;
    println!("model stand-in on {}", model.endpoint);
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
