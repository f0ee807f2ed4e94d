//! The HTTP function's real binary in its real `lambda_runtime` loop, fed API
//! Gateway events by a Runtime API stand-in, with S3 on moto and Bedrock on the
//! InvokeModel stand-in.

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use testkit::bedrock::FakeBedrock;
use testkit::runtime_api::{Answer, FakeRuntimeApi, lambda_env, spawn_function};

fn api_event(request_id: &str, body: &str, base64: bool) -> Value {
    let body = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body.to_owned()
    };
    json!({
        "version": "2.0", "routeKey": "POST /image_generator", "rawPath": "/image_generator", "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x",
            "http": {"method": "POST", "path": "/image_generator", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
            "requestId": request_id, "routeKey": "POST /image_generator", "stage": "$default", "time": "x", "timeEpoch": 0},
        "body": body, "isBase64Encoded": base64
    })
}

async fn response(api: &mut FakeRuntimeApi) -> Value {
    match api.answer(Duration::from_secs(60)).await {
        Some(Answer::Response { body, .. }) => body,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn post_image_generator_through_the_runtime_loop_for_each_family() {
    for model in [
        "amazon.titan-image-generator-v2:0",
        "stability.stable-image-core-v1:1",
    ] {
        post_through_the_loop(model).await;
    }
}

async fn post_through_the_loop(model: &str) {
    let (s3, bucket) = testkit::bucket("http-images-").await;
    let bedrock = FakeBedrock::start(Duration::ZERO).await;
    let mut api = FakeRuntimeApi::start().await;
    let function = spawn_function(
        env!("CARGO_BIN_EXE_image-http"),
        &api,
        "couch-test-image-http",
        &bedrock.endpoint,
        &[
            ("IMAGE_BUCKET", &bucket),
            ("IMAGE_PREFIX", "11"),
            ("MODEL_ID", model),
            ("MODEL_REGION", "us-west-2"),
        ],
    );

    api.invoke(
        "lambda-1",
        api_event(
            "apigw-1",
            r#"{"prompt": "me on a gondola in Venice"}"#,
            true,
        ),
    );
    let r = response(&mut api).await;
    assert_eq!(r["statusCode"], 201, "{r}");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    // The picture's id is its own (a UUID under images/sync/), not API Gateway's.
    let key = body["key"].as_str().unwrap().to_owned();
    let id = key
        .strip_prefix("11/images/sync/")
        .and_then(|k| k.strip_suffix(".png"))
        .unwrap_or_else(|| panic!("{key}"));
    assert!(imagegen::status::is_request_id(id), "{key}");
    assert_eq!(body["model"], model);
    let obj = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    // No `x-amz-meta-prompt`.
    let meta = obj.metadata().cloned().unwrap_or_default();
    assert!(!meta.contains_key("prompt"), "{meta:?}");
    assert_eq!(
        Some(obj.body.collect().await.unwrap().into_bytes().to_vec()),
        bedrock.last_picture()
    );
    assert_eq!(bedrock.calls.lock().unwrap()[0].0, model);

    // The image's line: the same fields as the worker's, keyed by request id.
    let line = function
        .json_lines()
        .into_iter()
        .find(|l| l["request_id"] == "apigw-1" && l.get("_aws").is_some())
        .expect("the image line");
    assert_eq!(line["outcome"], "stored", "{line}");
    assert_eq!(line["image_key"], key.as_str(), "{line}");
    assert_eq!(line["model"], model, "{line}");
    assert_eq!(line["status"], 201, "{line}");
    assert!(line["duration_ms"].is_u64(), "{line}");
    assert_eq!(line["ImagesMade"], 1, "{line}");
    assert_eq!(line["FunctionName"], "couch-test-image-http", "{line}");

    // Same process, next invocation: bad input is a 400 with a JSON error.
    api.invoke(
        "lambda-2",
        api_event("apigw-2", "{\"prompt\": \"\"}", false),
    );
    let r = response(&mut api).await;
    assert_eq!(r["statusCode"], 400, "{r}");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["request_id"], "apigw-2");

    api.invoke(
        "lambda-3",
        api_event("apigw-3", r#"{"prompt": "FILTER me"}"#, false),
    );
    assert_eq!(response(&mut api).await["statusCode"], 422, "{model}");
    let filtered = function
        .json_lines()
        .into_iter()
        .find(|l| l["request_id"] == "apigw-3" && l.get("_aws").is_some())
        .expect("the filtered request's line");
    assert_eq!(filtered["Reason"], "filtered", "{filtered}");
    assert_eq!(filtered["status"], 422, "{filtered}");

    // Over the declared model's prompt limit: 400, and no model call.
    let limit = imagegen::PromptRule::for_model(model).unwrap().max_chars;
    let calls = bedrock.call_count();
    api.invoke(
        "lambda-4",
        api_event(
            "apigw-4",
            &json!({"prompt": "x".repeat(limit + 1)}).to_string(),
            false,
        ),
    );
    let r = response(&mut api).await;
    assert_eq!(r["statusCode"], 400, "{model}: {r}");
    assert!(
        r["body"].as_str().unwrap().contains(&limit.to_string()),
        "{r}"
    );
    assert_eq!(bedrock.call_count(), calls);

    // The pre-traffic health check: not an HTTP event, answered without a model call.
    api.invoke("lambda-5", json!({"couch_health_check": {"by": "test"}}));
    let r = response(&mut api).await;
    assert_eq!(r["ok"], true, "{model}: {r}");
    assert_eq!(r["function"], "couch-test-image-http", "{r}");
    s3.head_object()
        .bucket(&bucket)
        .key("11/images/_health/couch-test-image-http.json")
        .send()
        .await
        .unwrap();
    assert_eq!(bedrock.call_count(), calls);
}

/// Runs the binary with `env`; it must fail its cold start. Its logs.
fn failed_cold_start(env: &[(&str, &str)], api: &FakeRuntimeApi) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_image-http"))
        .envs(lambda_env(api, "couch-test-image-http"))
        // Only what `env` gives: nothing inherited from the test's environment.
        .env_remove("IMAGE_PREFIX")
        .envs(env.iter().copied())
        .output()
        .expect("run image-http");
    assert!(!out.status.success());
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_model_of_no_known_family_fails_the_cold_start() {
    let api = FakeRuntimeApi::start().await;
    let logs = failed_cold_start(
        &[
            ("IMAGE_BUCKET", "b"),
            ("IMAGE_PREFIX", "p"),
            ("MODEL_ID", "anthropic.claude-3-haiku-20240307-v1:0"),
        ],
        &api,
    );
    assert!(logs.contains("no known model family"), "{logs}");
}

#[tokio::test]
async fn a_missing_variable_fails_the_cold_start_naming_it() {
    let bedrock = FakeBedrock::start(Duration::ZERO).await;
    let api = FakeRuntimeApi::start().await;
    let logs = failed_cold_start(
        &[
            ("IMAGE_BUCKET", "b"),
            ("MODEL_ID", "stability.stable-image-core-v1:1"),
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &bedrock.endpoint),
        ],
        &api,
    );
    assert!(logs.contains("IMAGE_PREFIX"), "{logs}");
}
