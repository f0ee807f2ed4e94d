//! Benchmark (not a test): a batch of 10 SQS records with a fake model that
//! takes 200 ms per call. Prints the wall time of the concurrent worker and
//! its ratio to one model call (goal <= 1.3), next to the one-at-a-time
//! baseline of the seed's loop (about 10) measured in the same run.
//!
//! Run: `cargo bench -p image-worker --bench batch`

use std::time::{Duration, Instant};

use aws_lambda_events::sqs::SqsMessage;
use image_worker::{DEFAULT_CONCURRENCY, batch_response, process_batch};
use imagegen::Generator;
use imagegen::fakes::{FakeModel, FakeStore};

const MODEL_DELAY: Duration = Duration::from_millis(200);
const RECORDS: usize = 10;
const ROUNDS: usize = 5;

fn records(round: usize) -> Vec<SqsMessage> {
    (0..RECORDS)
        .map(|i| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("r{round}-m{i}"));
            m.body = Some(format!("prompt number {i}"));
            m
        })
        .collect()
}

async fn time_batch(concurrency: usize, round: usize) -> Duration {
    let g = Generator::new(FakeModel::new(MODEL_DELAY), FakeStore::default(), "11");
    let recs = records(round);
    let start = Instant::now();
    let outcomes = process_batch(&g, &recs, concurrency).await;
    let elapsed = start.elapsed();
    assert!(
        batch_response(&recs, &outcomes)
            .batch_item_failures
            .is_empty()
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    // One model call alone: the unit of the ratio, measured, not assumed.
    let mut single = Vec::new();
    for r in 0..ROUNDS {
        single.push(time_batch(1, 100 + r).await / RECORDS as u32);
    }
    let one_call = median(single);
    let mut concurrent = Vec::new();
    let mut sequential = Vec::new();
    for r in 0..ROUNDS {
        concurrent.push(time_batch(DEFAULT_CONCURRENCY, r).await);
        sequential.push(time_batch(1, 200 + r).await);
    }
    let (c, s) = (median(concurrent), median(sequential));
    let ratio = |d: Duration| d.as_secs_f64() / one_call.as_secs_f64();
    println!(
        "worker batch benchmark: {RECORDS} records, fake model {} ms per call, median of {ROUNDS}",
        MODEL_DELAY.as_millis()
    );
    println!(
        "  one model call            {:>8.1} ms",
        one_call.as_secs_f64() * 1e3
    );
    println!(
        "  concurrent (bound {DEFAULT_CONCURRENCY:>2})     {:>8.1} ms   ratio {:.2} (goal <= 1.3)",
        c.as_secs_f64() * 1e3,
        ratio(c)
    );
    println!(
        "  sequential (seed's loop)  {:>8.1} ms   ratio {:.2}",
        s.as_secs_f64() * 1e3,
        ratio(s)
    );
    println!(
        "  speed-up                  {:>8.2}x",
        s.as_secs_f64() / c.as_secs_f64()
    );
}
