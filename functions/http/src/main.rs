//! Lambda entry point of the HTTP function: configuration and clients once per
//! cold start, then the runtime loop.

use image_http::respond;
use imagegen::clients;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let generator = clients::cold_start().await?;
    let generator = &generator;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(respond(ev.payload, generator, &ev.context.request_id).await)
    }))
    .await
}
