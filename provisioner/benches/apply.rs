//! Benchmark (not a test): `apply` of the whole stack from an empty account,
//! and `destroy` of it, against moto behind a proxy that adds a fixed
//! latency to every request.
//!
//! Compares, in the same run:
//! - the concurrent apply's wall time (the engine's graph execution);
//! - the dependency graph's critical path: for each resource, the sequential
//!   calls its creation makes when run alone; the longest dependency chain of
//!   those, times one measured round trip;
//! - the same creations one after another (what a naive tool does);
//! - the same three figures for the destroy (dependents first).
//!
//! Run: `cargo bench -p provisioner --bench apply` (starts its own moto server).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioner::artifacts::Artifacts;
use provisioner::aws::Aws;
use provisioner::aws::calls::stats;
use provisioner::commands::Session;
use provisioner::engine::plan::Mode;
use provisioner::engine::{Action, execute};
use provisioner::stack;

const ROUNDS: usize = 5;
/// Added to every request: a round trip to an AWS region some way off.
const LATENCY: Duration = Duration::from_millis(50);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A fresh stack (new name, new bucket) bound to the proxied emulator.
async fn fresh(
    conf: &aws_types::SdkConfig,
    model: &str,
    zips: &Artifacts,
) -> anyhow::Result<Session> {
    let name = testkit::unique("bench-");
    let bucket = format!("{name}-images");
    let text = format!(
        "name: {name}\nimages: {{ bucket: {bucket}, prefix: \"11\" }}\nalarm: {{ email: team@example.com }}\n"
    );
    let s = stack::parse(std::path::Path::new("bench.yaml"), &text)?;
    let aws = Aws::from_conf(conf).with_bedrock_endpoint(conf, model);
    let session = Session::new(s, zips, Arc::new(aws));
    testkit::create_bucket(&session.aws.s3, &bucket).await;
    Ok(session)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = testkit::proxy::start(testkit::moto_endpoint(), LATENCY).await;
    let conf = testkit::sdk_config(&endpoint, "eu-west-1");
    let dir = std::env::temp_dir().join(testkit::unique("bench-zips-"));
    let zips = Artifacts::load(&testkit::zips::write_function_zips(&dir, "bench"));
    // Bedrock's control plane (the model check): the stand-in, behind the same latency.
    let model = testkit::bedrock::FakeBedrock::start(Duration::ZERO).await;
    let model = testkit::proxy::start(&model.endpoint, LATENCY).await;

    // Warm-up: moto loads each service on first use.
    let warm = fresh(&conf, &model, &zips).await?;
    let (plan, snapshot) = warm.plan(Mode::Apply, false).await?;
    execute(&plan, &warm.resources(), &snapshot, &|_| {}).await?;

    let mut walls = Vec::new();
    let mut chains = Vec::new();
    let mut critical = Vec::new();
    let mut serials = Vec::new();
    let mut trips = Vec::new();
    let (mut dwalls, mut dcritical, mut dserials) = (Vec::new(), Vec::new(), Vec::new());
    let mut resources = 0;
    for _ in 0..ROUNDS {
        // One round trip.
        let start = Instant::now();
        warm.aws
            .sqs
            .get_queue_url()
            .queue_name(warm.stack.queue_name())
            .send()
            .await?;
        trips.push(start.elapsed());

        // Concurrent apply from empty.
        let session = fresh(&conf, &model, &zips).await?;
        resources = session.resources().len();
        let (plan, snapshot) = session.plan(Mode::Apply, false).await?;
        session.aws.calls.clear();
        let start = Instant::now();
        execute(&plan, &session.resources(), &snapshot, &|_| {}).await?;
        walls.push(start.elapsed());
        chains.push(stats(&session.aws.calls.snapshot()).sequential);
        let (after, _) = session.plan(Mode::Apply, false).await?;
        anyhow::ensure!(!after.has_changes(), "apply did not converge");

        // Concurrent destroy of what was just applied.
        let (plan, snapshot) = session.plan(Mode::Destroy, false).await?;
        let start = Instant::now();
        execute(&plan, &session.resources(), &snapshot, &|_| {}).await?;
        dwalls.push(start.elapsed());
        let (after, _) = session.plan(Mode::Destroy, false).await?;
        anyhow::ensure!(!after.has_changes(), "destroy did not converge");

        // Each creation alone, in dependency order: its own sequential calls.
        let session = fresh(&conf, &model, &zips).await?;
        let mut own: BTreeMap<String, usize> = BTreeMap::new();
        let mut longest: BTreeMap<String, usize> = BTreeMap::new();
        let mut serial = Duration::ZERO;
        let (full, _) = session.plan(Mode::Apply, false).await?;
        for change in full.changes.iter().filter(|c| c.action == Action::Create) {
            let (mut plan, snapshot) = session.plan(Mode::Apply, false).await?;
            plan.changes.retain(|c| c.address == change.address);
            session.aws.calls.clear();
            let start = Instant::now();
            execute(&plan, &session.resources(), &snapshot, &|_| {}).await?;
            serial += start.elapsed();
            let n = stats(&session.aws.calls.snapshot()).sequential;
            own.insert(change.address.clone(), n);
            let before = change
                .depends_on
                .iter()
                .filter_map(|d| longest.get(d))
                .max()
                .copied()
                .unwrap_or(0);
            longest.insert(change.address.clone(), before + n);
        }
        serials.push(serial);
        critical.push(longest.values().max().copied().unwrap_or(0));

        // Each deletion alone, dependents first: a deletion waits for the
        // deletions of what depends on it.
        let (full, _) = session.plan(Mode::Destroy, false).await?;
        let deletes: Vec<_> = full
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .collect();
        let mut dlongest: BTreeMap<String, usize> = BTreeMap::new();
        let mut dserial = Duration::ZERO;
        for change in deletes.iter().rev() {
            let (mut plan, snapshot) = session.plan(Mode::Destroy, false).await?;
            plan.changes.retain(|c| c.address == change.address);
            session.aws.calls.clear();
            let start = Instant::now();
            execute(&plan, &session.resources(), &snapshot, &|_| {}).await?;
            dserial += start.elapsed();
            let n = stats(&session.aws.calls.snapshot()).sequential;
            let after = deletes
                .iter()
                .filter(|d| d.depends_on.contains(&change.address))
                .filter_map(|d| dlongest.get(&d.address))
                .max()
                .copied()
                .unwrap_or(0);
            dlongest.insert(change.address.clone(), after + n);
        }
        dserials.push(dserial);
        dcritical.push(dlongest.values().max().copied().unwrap_or(0));
        if critical.len() == 1 {
            println!("sequential calls of each creation alone (one run):");
            for (address, n) in &own {
                println!("  {address:<24} {n}");
            }
        }
    }

    let (wall, trip, serial) = (median(walls), median(trips), median(serials));
    chains.sort();
    critical.sort();
    let path = critical[ROUNDS / 2];
    let path_time = trip * u32::try_from(path)?;
    println!(
        "apply benchmark: {resources} resources from an empty account, moto on 127.0.0.1 behind a proxy adding {} ms per request, median of {ROUNDS}",
        LATENCY.as_millis()
    );
    println!("  one round trip                   {:>9.2} ms", ms(trip));
    println!(
        "  critical path (calls)            {:>9}   (longest dependency chain of each creation's own sequential calls)",
        path
    );
    println!(
        "  critical path x round trip       {:>9.2} ms",
        ms(path_time)
    );
    println!("  concurrent apply wall time       {:>9.2} ms", ms(wall));
    println!(
        "  sequential calls observed        {:>9}",
        chains[ROUNDS / 2]
    );
    println!(
        "  apply / critical path            {:>9.2}   (goal <= 1.25)",
        wall.as_secs_f64() / path_time.as_secs_f64()
    );
    println!(
        "  one creation after another       {:>9.2} ms   ratio to concurrent apply {:.2}",
        ms(serial),
        serial.as_secs_f64() / wall.as_secs_f64()
    );
    let (dwall, dserial) = (median(dwalls), median(dserials));
    dcritical.sort();
    let dpath = dcritical[ROUNDS / 2];
    let dpath_time = trip * u32::try_from(dpath)?;
    println!("destroy of the same stack (dependents first):");
    println!("  critical path (calls)            {dpath:>9}");
    println!(
        "  critical path x round trip       {:>9.2} ms",
        ms(dpath_time)
    );
    println!("  concurrent destroy wall time     {:>9.2} ms", ms(dwall));
    println!(
        "  destroy / critical path          {:>9.2}   (goal <= 1.25)",
        dwall.as_secs_f64() / dpath_time.as_secs_f64()
    );
    println!(
        "  one deletion after another       {:>9.2} ms   ratio to concurrent destroy {:.2}",
        ms(dserial),
        dserial.as_secs_f64() / dwall.as_secs_f64()
    );
    Ok(())
}
