//! A bare `lambda_runtime` function that answers its event: the floor the
//! real functions' cold start is compared with (`scripts/bench-cold-start`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|ev: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(ev.payload)
    }))
    .await
}
