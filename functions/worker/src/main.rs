//! Lambda entry point of the queue worker.

use aws_lambda_events::sqs::SqsEvent;
use image_worker::{DEFAULT_CONCURRENCY, batch_response, process_batch, record_given_up};
use imagegen::clients;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Configuration now; the AWS clients on the first event (see `Clients`).
    let clients = clients::cold_start()?;
    let concurrency = std::env::var("WORKER_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CONCURRENCY);
    let clients = &clients;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        if let Some(answer) = clients.health_answer(&ev.payload).await {
            return Ok::<Value, Error>(answer);
        }
        let event: SqsEvent = serde_json::from_value(ev.payload)?;
        let generator = clients.generator().await;
        let records = event.records;
        let outcomes = process_batch(generator, &records, concurrency).await;
        if let Some(max) = clients.config().max_receive_count {
            record_given_up(generator, &records, &outcomes, max).await;
        }
        let response = batch_response(&records, &outcomes);
        tracing::info!(
            records = records.len(),
            failed = response.batch_item_failures.len(),
            "batch done"
        );
        Ok(serde_json::to_value(response)?)
    }))
    .await
}
