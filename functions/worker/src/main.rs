//! Lambda entry point of the queue worker.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::SqsEvent;
use image_worker::{
    DEFAULT_CONCURRENCY, DeadLetterQueue, Pace, Rules, SqsQueues, handle, time_left,
};
use imagegen::clients;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Lambda's deadline as an instant ([`time_left`]).
fn deadline(deadline_ms: u64, fallback: Duration) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    Instant::now() + time_left(deadline_ms, now_ms, fallback)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Configuration now; the AWS clients on the first event (see `Clients`).
    let clients = clients::cold_start()?.model_attempts(1);
    // Kept between invocations: the instance's limit learns from throttles.
    let config = clients.config();
    let most = config.worker_concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    let pace = if config.capacity_stated {
        Pace::new(most)
    } else {
        Pace::adaptive(most)
    };
    let queues = tokio::sync::OnceCell::new();
    let fallback = Duration::from_secs(
        std::env::var(couch_contract::env::WORKER_TIMEOUT_SECONDS)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30),
    );
    let (clients, pace, queues) = (&clients, &pace, &queues);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        if let Some(answer) = clients.health_answer(&ev.payload).await {
            return Ok::<Value, Error>(answer);
        }
        let event: SqsEvent = serde_json::from_value(ev.payload)?;
        let generator = clients.generator().await;
        let queues = queues
            .get_or_init(|| async {
                SqsQueues {
                    client: clients.sqs().await,
                    dlq: clients
                        .config()
                        .dlq_name
                        .clone()
                        .map(DeadLetterQueue::Named),
                }
            })
            .await;
        let rules = Rules {
            max_receive_count: clients.config().max_receive_count,
            deadline: deadline(ev.context.deadline, fallback),
        };
        let response = handle(generator, pace, &rules, queues, &event.records).await;
        Ok(serde_json::to_value(response)?)
    }))
    .await
}
