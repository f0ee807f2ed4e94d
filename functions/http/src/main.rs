//! Lambda entry point of the HTTP function: configuration once per cold
//! start, the AWS clients on the first event, then the runtime loop.

use image_http::respond;
use imagegen::clients;
use imagegen::health::{Invoked, is_health_event};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Configuration now; the AWS clients on the first event (see `Clients`).
    let clients = clients::cold_start()?;
    let clients = &clients;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        if is_health_event(&ev.payload) {
            let env = &ev.context.env_config;
            let report = clients
                .health(Invoked {
                    function: &env.function_name,
                    version: &env.version,
                })
                .await;
            return Ok::<Value, Error>(serde_json::to_value(report)?);
        }
        let generator = clients.generator().await;
        Ok::<Value, Error>(respond(ev.payload, generator, &ev.context.request_id).await)
    }))
    .await
}
