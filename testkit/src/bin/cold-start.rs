//! Cold start of Lambda functions, measured the way Lambda sees it: from
//! exec to the function's first `GET /2018-06-01/runtime/invocation/next`,
//! and the process's peak RSS (VmHWM) at that moment. Candidates run
//! interleaved (one of each per round), so machine noise hits all alike.
//!
//! `cold-start [--runs N] [--baseline NAME] NAME=COMMAND...` (COMMAND split on
//! spaces). Prints the median of each and its ratio to the baseline.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;

struct Candidate {
    name: String,
    argv: Vec<String>,
    times: Vec<Duration>,
    rss_kib: Vec<u64>,
}

fn usage() -> ! {
    eprintln!("usage: cold-start [--runs N] [--baseline NAME] NAME=COMMAND...");
    std::process::exit(2)
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// One cold start: (time to the first poll, peak RSS in KiB).
async fn once(argv: &[String], name: &str) -> (Duration, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env("AWS_LAMBDA_RUNTIME_API", &addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("IMAGE_BUCKET", "bench-images")
        .env("IMAGE_PREFIX", "11")
        .env("MODEL_ID", "amazon.titan-image-generator-v1")
        .env("MODEL_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", argv[0]));
    let accepted = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut lines = tokio::io::BufReader::new(stream).lines();
            if let Ok(Some(line)) = lines.next_line().await
                && line.contains("/runtime/invocation/next")
            {
                return started.elapsed();
            }
        }
    })
    .await;
    let rss = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    match accepted {
        Ok(t) => (t, rss),
        Err(_) => panic!("{name} did not poll the Runtime API within 30 s"),
    }
}

fn median<T: Copy + Ord>(v: &[T]) -> T {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut runs = 20;
    let mut baseline: Option<String> = None;
    let mut candidates = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--baseline" => baseline = Some(args.next().unwrap_or_else(|| usage())),
            _ => {
                let (name, command) = a.split_once('=').unwrap_or_else(|| usage());
                candidates.push(Candidate {
                    name: name.to_owned(),
                    argv: command.split_whitespace().map(str::to_owned).collect(),
                    times: Vec::new(),
                    rss_kib: Vec::new(),
                });
            }
        }
    }
    if candidates.is_empty() {
        usage();
    }
    // One unmeasured start each: the page cache, not the program, on the first.
    for c in &candidates {
        once(&c.argv, &c.name).await;
    }
    for _ in 0..runs {
        for c in candidates.iter_mut() {
            let (t, rss) = once(&c.argv, &c.name).await;
            c.times.push(t);
            c.rss_kib.push(rss);
        }
    }
    let base = baseline
        .as_deref()
        .and_then(|b| candidates.iter().find(|c| c.name == b))
        .map(|c| (median(&c.times), median(&c.rss_kib)));
    println!(
        "cold start: exec -> first poll of the Runtime API, and peak RSS; median of {runs} interleaved runs"
    );
    for c in &candidates {
        let (t, rss) = (median(&c.times), median(&c.rss_kib));
        let ratio = base
            .map(|(bt, brss)| {
                format!(
                    "  time x{:.2}, RSS x{:.2} vs {}",
                    t.as_secs_f64() / bt.as_secs_f64(),
                    rss as f64 / brss.max(1) as f64,
                    baseline.as_deref().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        println!(
            "  {:<10} {:>8.2} ms  (min {:>7.2}, max {:>7.2})  {:>6.1} MiB{ratio}",
            c.name,
            t.as_secs_f64() * 1e3,
            c.times.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            c.times.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            rss as f64 / 1024.0
        );
    }
}
