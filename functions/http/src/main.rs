//! Lambda entry point of the HTTP function: configuration and clients once per
//! cold start, then the runtime loop.

use image_http::{event, handle};
use imagegen::clients;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let generator = clients::cold_start().await?;
    let generator = &generator;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        let request_id = ev.context.request_id.clone();
        let reply = match event::parse(ev.payload) {
            Ok(req) => {
                let id = req.request_id.clone().unwrap_or(request_id);
                handle(&req, generator, &id).await.to_lambda()
            }
            Err(e) => {
                tracing::warn!(request_id, error = %e, "unexpected event");
                json!({
                    "statusCode": 400,
                    "headers": {"content-type": "application/json"},
                    "body": json!({"error": "not an API Gateway request", "request_id": request_id}).to_string(),
                    "isBase64Encoded": false,
                })
            }
        };
        Ok::<Value, Error>(reply)
    }))
    .await
}
