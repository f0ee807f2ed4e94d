//! Lambda entry point of the queue worker.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use image_worker::{DEFAULT_CONCURRENCY, batch_response, process_batch};
use imagegen::clients;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Configuration now; the AWS clients on the first event (see `Clients`).
    let clients = clients::cold_start()?;
    let concurrency = std::env::var("WORKER_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CONCURRENCY);
    let clients = &clients;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| async move {
        let generator = clients.generator().await;
        let records = ev.payload.records;
        let outcomes = process_batch(generator, &records, concurrency).await;
        let response = batch_response(&records, &outcomes);
        tracing::info!(
            records = records.len(),
            failed = response.batch_item_failures.len(),
            "batch done"
        );
        Ok::<SqsBatchResponse, Error>(response)
    }))
    .await
}
