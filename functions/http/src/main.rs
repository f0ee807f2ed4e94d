//! Lambda entry point of the HTTP function: configuration once per cold
//! start, the AWS clients on the first event, then the runtime loop.

use image_http::respond;
use imagegen::clients;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Configuration now; the AWS clients on the first event (see `Clients`).
    let clients = clients::cold_start()?;
    let clients = &clients;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        if let Some(answer) = clients.health_answer(&ev.payload).await {
            return Ok::<Value, Error>(answer);
        }
        let generator = clients.generator().await;
        let queue = clients.queue().await;
        Ok::<Value, Error>(respond(ev.payload, generator, queue, &ev.context.request_id).await)
    }))
    .await
}
