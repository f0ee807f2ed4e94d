//! Logging: JSON lines on Lambda (CloudWatch Logs Insights can query them),
//! human-readable elsewhere. `RUST_LOG` sets the level (default `info`).

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if on_lambda {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.try_init()
    };
}
