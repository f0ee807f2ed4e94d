//! Volume through the local trigger: prompts on a queue in the emulator, the
//! local SQS trigger, the real worker code (`process_batch` with the real S3
//! and Bedrock clients: S3 in moto, Bedrock played by the model stand-in with
//! every n-th call throttled). Shared by `tests/volume.rs` (a few hundred
//! prompts, in CI) and `benches/volume.rs` (1000, figures).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use imagegen::{BedrockModel, Generator, S3Store};
use provisioner::local::trigger::{Invoke, Trigger};
use serde_json::Value;
use testkit::bedrock::{FakeBedrock, Options};

pub struct Settings {
    pub prompts: usize,
    /// One in `poison_every` prompts is invalid (10%: 10).
    pub poison_every: usize,
    /// The model throttles one call in `throttle_every` (5%: 20).
    pub throttle_every: Option<u64>,
    /// The model's capacity: calls beyond it at once are throttled.
    pub max_in_flight: Option<usize>,
    /// A picture's time at the model.
    pub latency: Duration,
    /// Model calls at once per worker invocation (`WORKER_CONCURRENCY`).
    pub worker_concurrency: usize,
    /// `WORKER_PACE=stated`: all of them from the start.
    pub capacity_stated: bool,
    pub max_receive_count: u32,
    /// Longer than the slowest batch (throttled calls back off), or SQS
    /// redelivers a message still in work and the model is called twice.
    pub visibility_timeout: u32,
    pub batch_size: u32,
    pub pollers: u32,
}

impl Settings {
    /// Issue 10's mix: 10% poison, 5% of model calls throttled, 2 receives
    /// before the DLQ, batches of 10, 5 pollers. The visibility timeout is
    /// also the invocation timeout (AWS refuses a mapping whose function may
    /// outlive it): 30 s, because a batch that outlived a 15 s timeout on a
    /// loaded 2-core machine was delivered twice and the model called twice.
    pub fn issue_10(prompts: usize) -> Settings {
        Settings {
            prompts,
            poison_every: 10,
            throttle_every: Some(20),
            max_in_flight: None,
            latency: Duration::ZERO,
            worker_concurrency: 10,
            capacity_stated: false,
            max_receive_count: 2,
            visibility_timeout: 30,
            batch_size: 10,
            pollers: 5,
        }
    }

    /// Issue 30's burst: `prompts` valid prompts, at most `capacity` model
    /// calls at once of `latency` each, one receive for failures (a throttle
    /// must not spend it), and a worker of `pollers` x `worker_concurrency`
    /// calls: equal to the capacity when the stack states it, or a batch's
    /// worth each when it does not (the worker must find the capacity).
    pub fn burst(
        prompts: usize,
        capacity: usize,
        latency: Duration,
        pollers: u32,
        worker_concurrency: usize,
    ) -> Settings {
        Settings {
            prompts,
            poison_every: usize::MAX,
            throttle_every: None,
            max_in_flight: Some(capacity),
            latency,
            worker_concurrency,
            capacity_stated: pollers as usize * worker_concurrency <= capacity,
            max_receive_count: 1,
            visibility_timeout: 30,
            batch_size: 10,
            pollers,
        }
    }

    /// The shortest drain the model allows: prompts x latency / capacity.
    pub fn ideal(&self) -> Duration {
        let valid = self.prompts - self.prompts / self.poison_every.max(1);
        self.latency
            .mul_f64(valid as f64 / self.max_in_flight.unwrap_or(usize::MAX) as f64)
    }
}

pub struct Report {
    pub prompts: usize,
    pub valid: usize,
    pub poison: usize,
    pub images: usize,
    pub dead_lettered: usize,
    pub model_calls: usize,
    pub throttled: usize,
    /// Model or S3 failures the worker reported (with their messages).
    pub upstream_failures: Vec<String>,
    /// Model answers the SDK did not receive (and retried by itself).
    pub lost_answers: usize,
    /// From the first send until every valid prompt is an image.
    pub images_after: Duration,
    /// Until the queue is empty and every poison message is in the DLQ.
    pub settled_after: Duration,
    /// Receive counts of the dead-lettered messages.
    pub dlq_receive_counts: BTreeSet<u32>,
    pub lost: Vec<String>,
    /// From each prompt's send until its picture was seen (polled every 250 ms).
    pub latencies: Vec<Duration>,
    pub unexpected_images: Vec<String>,
    pub valid_in_dlq: Vec<String>,
}

impl Report {
    /// The `q`-quantile of the prompt-to-picture latencies.
    pub fn latency(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }

    /// Issue 30's figures for a burst against a model of `s.max_in_flight`.
    pub fn print_capacity(&self, s: &Settings) {
        let ideal = s.ideal();
        let drain = self.images_after;
        println!(
            "burst of {} at {} calls x {} ms ({} x {} in the worker): {} images, {} dead-lettered, {} throttled calls ({:.2} per image); drained in {:.1} s vs ideal {:.1} s: throughput {:.2} of capacity; prompt-to-picture p50 {:.1} s, p99 {:.1} s",
            self.prompts,
            s.max_in_flight.unwrap_or(0),
            s.latency.as_millis(),
            s.pollers,
            s.worker_concurrency,
            self.images,
            self.dead_lettered,
            self.throttled,
            self.throttled as f64 / self.images.max(1) as f64,
            drain.as_secs_f64(),
            ideal.as_secs_f64(),
            ideal.as_secs_f64() / drain.as_secs_f64(),
            self.latency(0.5).as_secs_f64(),
            self.latency(0.99).as_secs_f64()
        );
    }

    pub fn print(&self) {
        let secs = self.images_after.as_secs_f64();
        println!(
            "{} prompts ({} valid, {} poison): {} images in {:.1} s = {:.1} images/s; settled (DLQ {}) after {:.1} s = {:.1} messages/s",
            self.prompts,
            self.valid,
            self.poison,
            self.images,
            secs,
            self.images as f64 / secs,
            self.dead_lettered,
            self.settled_after.as_secs_f64(),
            self.prompts as f64 / self.settled_after.as_secs_f64()
        );
        println!(
            "model calls {} for {} images ({} throttled, {} answers lost and retried by the SDK, {} other model/S3 failures {:?}): {:.3} calls per image; DLQ receive counts {:?}; lost {}",
            self.model_calls,
            self.images,
            self.throttled,
            self.lost_answers,
            self.upstream_failures.len(),
            self.upstream_failures,
            self.model_calls as f64 / self.images.max(1) as f64,
            self.dlq_receive_counts,
            self.lost.len()
        );
    }
}

/// The worker as Lambda runs it: SQS event in, batch response out; one
/// instance's pace kept between invocations (as a warm Lambda keeps it).
struct Worker {
    generator: Generator<BedrockModel, S3Store>,
    /// One pace per warm instance: an invocation takes a free one (at most
    /// `pollers` run at once, as many as instances) and gives it back.
    paces: std::sync::Mutex<Vec<Arc<image_worker::Pace>>>,
    queues: image_worker::SqsQueues,
    max_receive_count: u32,
    timeout: Duration,
    /// Records that failed on the model or S3 (not throttling, not the
    /// prompt): each may have cost a model call before it failed.
    upstream_failures: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl Invoke for Worker {
    async fn invoke(&self, event: Value) -> Result<Value, String> {
        let event: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
        let rules = image_worker::Rules {
            max_receive_count: Some(self.max_receive_count),
            deadline: Instant::now() + self.timeout,
        };
        let pace = self
            .paces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .ok_or("more invocations at once than instances")?;
        let outcomes =
            image_worker::process_records(&self.generator, &pace, &rules, &event.records).await;
        self.paces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pace);
        let outcomes =
            image_worker::settle(&self.generator, &self.queues, &event.records, outcomes).await;
        for o in &outcomes {
            if let image_worker::Outcome::Failed(e) = o
                && e.kind() == imagegen::ErrorKind::Upstream
            {
                self.upstream_failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e.to_string());
            }
        }
        serde_json::to_value(image_worker::batch_response(&event.records, &outcomes))
            .map_err(|e| e.to_string())
    }
}

async fn image_ids(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("11/images/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            if let Some(id) = o
                .key()
                .and_then(|k| k.strip_prefix("11/images/"))
                .and_then(|k| k.strip_suffix(".png"))
            {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

pub async fn run(s: &Settings) -> Report {
    let (s3, bucket) = testkit::bucket("volume-").await;
    let bedrock = FakeBedrock::start_with(Options {
        delay: s.latency,
        throttle_every: s.throttle_every,
        max_in_flight: s.max_in_flight,
    })
    .await;
    let bconf = testkit::sdk_config(&bedrock.endpoint, provisioner::stack::DEFAULT_MODEL_REGION);
    let lost_answers = testkit::bedrock::LostAnswers::default();
    let generator = Generator::new(
        BedrockModel::new(
            aws_sdk_bedrockruntime::Client::from_conf(
                aws_sdk_bedrockruntime::config::Builder::from(&bconf)
                    .interceptor(lost_answers.clone())
                    // As the worker's: no SDK retry, the worker paces itself.
                    .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
                    .build(),
            ),
            provisioner::stack::DEFAULT_MODEL_ID,
        )
        .expect("the default model is of a known family"),
        S3Store::new(s3.clone(), bucket.clone()),
        "11",
    );
    let testkit::queues::QueueWithDlq {
        sqs,
        url,
        arn,
        dlq_url,
        ..
    } = testkit::queues::queue_with_dlq(
        "t-volume-",
        couch_contract::queues::safety_net(s.max_receive_count),
        s.visibility_timeout,
    )
    .await;
    let trigger = Arc::new(Trigger {
        queue_url: url.clone(),
        queue_arn: arn,
        region: "eu-west-1".into(),
        batch_size: s.batch_size,
        wait_seconds: 1,
        timeout: Duration::from_secs(u64::from(s.visibility_timeout)),
    });
    let worker = Arc::new(Worker {
        generator,
        paces: std::sync::Mutex::new(
            (0..s.pollers)
                .map(|_| {
                    Arc::new(if s.capacity_stated {
                        image_worker::Pace::new(s.worker_concurrency)
                    } else {
                        image_worker::Pace::adaptive(s.worker_concurrency)
                    })
                })
                .collect(),
        ),
        queues: image_worker::SqsQueues {
            client: sqs.clone(),
            dlq: Some(image_worker::DeadLetterQueue::Url(dlq_url.clone())),
        },
        max_receive_count: s.max_receive_count,
        timeout: Duration::from_secs(u64::from(s.visibility_timeout)),
        upstream_failures: std::sync::Mutex::new(Vec::new()),
    });

    // Send: one poison message in `poison_every` (whitespace only, or longer
    // than the model accepts).
    let too_long =
        couch_contract::model::PromptRule::for_model(provisioner::stack::DEFAULT_MODEL_ID)
            .expect("the default model has a prompt rule")
            .max_chars
            + 1;
    let started = Instant::now();
    let mut valid = BTreeSet::new();
    let mut poison = BTreeSet::new();
    let bodies: Vec<(bool, String)> = (0..s.prompts)
        .map(|i| {
            if i % s.poison_every == s.poison_every - 1 {
                let body = if i % 2 == 0 {
                    "   ".to_owned()
                } else {
                    "y".repeat(too_long)
                };
                (true, body)
            } else {
                (false, format!("volume prompt {i}: a couch on the moon"))
            }
        })
        .collect();
    for (n, chunk) in bodies.chunks(10).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, (_, body))| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("{n}-{i}"))
                    .message_body(body)
                    .build()
                    .unwrap()
            })
            .collect();
        let out = sqs
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(out.failed().is_empty(), "{:?}", out.failed());
        for ok in out.successful() {
            let i: usize = ok.id().rsplit('-').next().unwrap().parse().unwrap();
            let id = ok.message_id().to_owned();
            if chunk[i].0 {
                poison.insert(id);
            } else {
                valid.insert(id);
            }
        }
    }

    let running = {
        let (trigger, worker, sqs, pollers) = (
            Arc::clone(&trigger),
            Arc::clone(&worker),
            sqs.clone(),
            s.pollers,
        );
        tokio::spawn(async move { trigger.run(&sqs, worker.as_ref(), pollers).await })
    };

    let deadline = Instant::now() + Duration::from_secs(900);
    let mut images_after = None;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut latencies = Vec::new();
    let settled_after = loop {
        let images = image_ids(&s3, &bucket).await;
        for id in images.difference(&seen.clone()) {
            seen.insert(id.clone());
            latencies.push(started.elapsed());
        }
        if images_after.is_none() && images.len() >= valid.len() {
            images_after = Some(started.elapsed());
        }
        let in_queue = testkit::queues::depth(&sqs, &url).await;
        let in_dlq = testkit::queues::depth(&sqs, &dlq_url).await;
        if in_queue == 0 && images_after.is_some() {
            assert_eq!(in_dlq, poison.len(), "queue empty, DLQ holds {in_dlq}");
            break started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {in_queue} in the queue, {in_dlq} in the DLQ, {} images",
            images.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    running.abort();
    latencies.sort();

    let images = image_ids(&s3, &bucket).await;
    let mut dead = BTreeSet::new();
    let mut dlq_receive_counts = BTreeSet::new();
    for m in testkit::queues::drain(&sqs, &dlq_url).await {
        // The worker moved it: the request id and receives are attributes.
        dead.insert(
            m.attributes
                .get(couch_contract::queues::REQUEST_ID_ATTRIBUTE)
                .cloned()
                .unwrap_or(m.message_id),
        );
        if let Some(c) = m.attributes.get(couch_contract::queues::RECEIVES_ATTRIBUTE) {
            dlq_receive_counts.insert(c.parse().unwrap_or(0));
        }
    }
    let accounted: BTreeSet<&String> = images.iter().chain(dead.iter()).collect();
    Report {
        prompts: s.prompts,
        valid: valid.len(),
        poison: poison.len(),
        images: images.len(),
        dead_lettered: dead.len(),
        model_calls: bedrock.call_count(),
        throttled: bedrock.throttled(),
        upstream_failures: worker
            .upstream_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        lost_answers: lost_answers.count(),
        images_after: images_after.unwrap_or(settled_after),
        settled_after,
        dlq_receive_counts,
        lost: valid
            .iter()
            .chain(poison.iter())
            .filter(|id| !accounted.contains(id))
            .cloned()
            .collect(),
        latencies,
        unexpected_images: images.difference(&valid).cloned().collect(),
        valid_in_dlq: dead.intersection(&valid).cloned().collect(),
    }
}

/// What must hold after any volume run.
pub fn check(r: &Report, s: &Settings) {
    assert!(r.lost.is_empty(), "lost: {:?}", r.lost);
    assert!(
        r.unexpected_images.is_empty(),
        "images for poison or unknown ids: {:?}",
        r.unexpected_images
    );
    assert!(
        r.valid_in_dlq.is_empty(),
        "valid prompts dead-lettered: {:?}",
        r.valid_in_dlq
    );
    assert_eq!(r.images, r.valid, "every valid prompt is exactly one image");
    assert_eq!(r.dead_lettered, r.poison, "every poison message in the DLQ");
    assert!(
        r.throttled > 0 || s.throttle_every.is_none(),
        "the model stand-in throttled nothing: the transient path was not exercised"
    );
    // Every model call is an image or a transient failure: throttling, a
    // model/S3 failure the worker reported (the record comes back), or an
    // answer the SDK did not receive and retried by itself.
    assert!(
        r.model_calls <= r.images + r.throttled + r.upstream_failures.len() + r.lost_answers,
        "model calls {} > images {} + throttled {} + lost answers {} + other transient failures {:?}",
        r.model_calls,
        r.images,
        r.throttled,
        r.lost_answers,
        r.upstream_failures
    );
    // Poison is moved by the worker on its first receive, with its receives.
    assert!(
        r.dlq_receive_counts.iter().all(|&c| c == 1),
        "poison dead-lettered on another receive than the first: {:?}",
        r.dlq_receive_counts
    );
}
