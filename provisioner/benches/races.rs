//! Benchmark (not a test): apply of the whole stack from an empty account,
//! plain and behind AWS's races (`testkit::races`, default windows), in
//! alternating rounds against the same moto behind the same 50 ms latency
//! proxy. Prints, per arm, the median wall time and AWS calls (from the
//! clients' call log), and the ratio raced / plain: what waiting out
//! conflicts, propagation, transitional states and pages costs an apply.
//!
//! Run: `cargo bench -p provisioner --bench races` (starts its own moto).

use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioner::artifacts::Artifacts;
use provisioner::aws::Aws;
use provisioner::commands::Session;
use provisioner::engine::execute;
use provisioner::engine::plan::Mode;
use provisioner::stack;
use testkit::races::Races;

const ROUNDS: usize = 5;
const LATENCY: Duration = Duration::from_millis(50);

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// One apply from empty through `endpoint`: wall time and calls.
async fn apply(endpoint: &str, model: &str, zips: &Artifacts) -> anyhow::Result<(Duration, usize)> {
    let conf = testkit::sdk_config(endpoint, "eu-west-1");
    let name = testkit::unique("bench-race-");
    let bucket = format!("{name}-images");
    let text = format!(
        "name: {name}\nimages: {{ bucket: {bucket}, prefix: \"11\" }}\nalarm: {{ email: team@example.com }}\n"
    );
    let s = stack::parse(std::path::Path::new("bench.yaml"), &text)?;
    let aws = Aws::from_conf(&conf).with_bedrock_endpoint(&conf, model);
    let session = Session::new(s, zips, Arc::new(aws));
    testkit::create_bucket(&session.aws.s3, &bucket).await;
    let (plan, snapshot) = session.plan(Mode::Apply, false).await?;
    session.aws.calls.clear();
    let start = Instant::now();
    execute(&plan, &session.resources(), &snapshot, &|_| {}).await?;
    let wall = start.elapsed();
    let calls = session.aws.calls.snapshot().len();
    let (after, _) = session.plan(Mode::Apply, false).await?;
    anyhow::ensure!(!after.has_changes(), "apply did not converge");
    Ok((wall, calls))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let plain = testkit::proxy::start(testkit::moto_endpoint(), LATENCY).await;
    let races = Races::new(1);
    let raced_upstream = races.start(testkit::moto_endpoint()).await;
    let raced = testkit::proxy::start(&raced_upstream, LATENCY).await;
    let dir = std::env::temp_dir().join(testkit::unique("bench-zips-"));
    let zips = Artifacts::load(&testkit::zips::write_function_zips(&dir, "bench"));
    let model = testkit::bedrock::FakeBedrock::start(Duration::ZERO).await;
    let model = testkit::proxy::start(&model.endpoint, LATENCY).await;

    // Warm-up: moto loads each service on first use.
    apply(&plain, &model, &zips).await?;
    let (mut p_wall, mut p_calls, mut r_wall, mut r_calls, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (pw, pc) = apply(&plain, &model, &zips).await?;
        let (rw, rc) = apply(&raced, &model, &zips).await?;
        p_wall.push(pw);
        p_calls.push(pc);
        r_wall.push(rw);
        r_calls.push(rc);
        // Paired: each round's raced apply against the plain one beside it.
        ratios.push((rw.as_secs_f64() / pw.as_secs_f64() * 1000.0) as u64);
    }
    println!(
        "races benchmark: apply from empty, moto behind {} ms per request, median of {ROUNDS} alternating rounds",
        LATENCY.as_millis()
    );
    println!(
        "  plain            {:>8.2} s  {:>4} calls",
        median(p_wall).as_secs_f64(),
        median(p_calls)
    );
    println!(
        "  behind the races {:>8.2} s  {:>4} calls",
        median(r_wall).as_secs_f64(),
        median(r_calls)
    );
    println!(
        "  raced / plain    {:>8.2}   (median of the paired ratios)",
        median(ratios) as f64 / 1000.0
    );
    println!("  races played: {}", races.played.summary());
    Ok(())
}
