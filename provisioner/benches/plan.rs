//! Benchmark (not a test): `plan` with no changes against the emulator.
//! Prints the wall time, the AWS calls made and how many had to be sequential,
//! and compares with (a) one AWS round trip and (b) the same reads done one
//! resource after another, all measured in the same run.
//!
//! Run: `cargo bench -p provisioner --bench plan` (starts its own moto server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioner::aws::Aws;
use provisioner::aws::calls::stats;
use provisioner::commands::Session;
use provisioner::engine::plan::{Mode, Snapshot, compute};
use provisioner::stack;

const ROUNDS: usize = 20;
/// Added to every request: about a round trip to a nearby AWS region.
const LATENCY: Duration = Duration::from_millis(50);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = testkit::proxy::start(testkit::moto_endpoint(), LATENCY).await;
    let conf = testkit::sdk_config(&endpoint, "eu-west-1");
    let name = testkit::unique("bench-");
    let bucket = format!("{name}-images");
    let text = format!(
        "name: {name}\nimages: {{ bucket: {bucket}, prefix: \"11\" }}\nalarm: {{ email: team@example.com }}\n"
    );
    let s = stack::parse(std::path::Path::new("bench.yaml"), &text)?;
    let zips = testkit::zips::write_function_zips(
        &std::env::temp_dir().join(format!("{name}-zips")),
        "bench",
    );
    let artifacts = provisioner::artifacts::Artifacts::load(&zips);
    // Bedrock's control plane (the model check): the stand-in, behind the same latency.
    let model = testkit::bedrock::FakeBedrock::start(Duration::ZERO).await;
    let model_endpoint = testkit::proxy::start(&model.endpoint, LATENCY).await;
    let aws = Aws::from_conf(&conf).with_bedrock_endpoint(&conf, &model_endpoint);
    let session = Session::new(s, &artifacts, Arc::new(aws));
    testkit::create_bucket(&session.aws.s3, &bucket).await;
    let (plan, snapshot) = session.plan(Mode::Apply, false).await?;
    provisioner::engine::execute(&plan, &session.resources(), &snapshot, &|_| {}).await?;
    // Warm-up: moto loads each service on first use.
    session.plan(Mode::Apply, false).await?;

    let mut walls = Vec::new();
    let mut calls = Vec::new();
    let mut sequential = Vec::new();
    let mut busy = Vec::new();
    for _ in 0..ROUNDS {
        session.aws.calls.clear();
        let start = Instant::now();
        let (plan, _) = session.plan(Mode::Apply, false).await?;
        walls.push(start.elapsed());
        anyhow::ensure!(
            !plan.has_changes(),
            "the benchmark stack should have no changes"
        );
        let log = session.aws.calls.snapshot();
        busy.push(
            log.iter()
                .filter_map(|c| c.end.map(|e| e - c.start))
                .sum::<Duration>(),
        );
        let st = stats(&log);
        calls.push(st.calls);
        sequential.push(st.sequential);
    }

    // Baseline 1: one round trip (the cheapest SQS read).
    let mut trips = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        session
            .aws
            .sqs
            .get_queue_url()
            .queue_name(session.stack.queue_name())
            .send()
            .await?;
        trips.push(start.elapsed());
    }
    // Baseline 2: the same reads, one resource after another.
    let mut serial = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut snap = Snapshot::default();
        for r in &session.resources() {
            snap.live.insert(r.address().to_owned(), r.read().await?);
        }
        let plan = compute(
            &session.resources(),
            &snap,
            &session.options(Mode::Apply, false),
        );
        serial.push(start.elapsed());
        anyhow::ensure!(!plan.has_changes());
    }

    let (wall, trip, ser, busy) = (median(walls), median(trips), median(serial), median(busy));
    calls.sort();
    sequential.sort();
    println!(
        "plan benchmark: {} resources, no changes, moto on 127.0.0.1 behind a proxy adding {} ms per request, median of {ROUNDS}",
        session.resources().len(),
        LATENCY.as_millis()
    );
    println!("  plan wall time            {:>8.2} ms", ms(wall));
    println!(
        "  AWS calls per plan        {:>8}   (min {}, max {})",
        calls[ROUNDS / 2],
        calls[0],
        calls[ROUNDS - 1]
    );
    println!(
        "  sequential rounds         {:>8}   (min {}, max {})",
        sequential[ROUNDS / 2],
        sequential[0],
        sequential[ROUNDS - 1]
    );
    println!(
        "  sum of call durations     {:>8.2} ms   (calls in flight on average: {:.1})",
        ms(busy),
        busy.as_secs_f64() / wall.as_secs_f64()
    );
    println!("  one round trip            {:>8.2} ms", ms(trip));
    println!(
        "  plan / one round trip     {:>8.2}",
        wall.as_secs_f64() / trip.as_secs_f64()
    );
    println!(
        "  reads one by one (+plan)  {:>8.2} ms   ratio to concurrent plan {:.2}",
        ms(ser),
        ser.as_secs_f64() / wall.as_secs_f64()
    );
    Ok(())
}
