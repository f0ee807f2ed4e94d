//! The worker's real binary in its real `lambda_runtime` loop, fed an SQS event
//! by a Runtime API stand-in, with S3 on moto and Bedrock on the InvokeModel
//! stand-in.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::bedrock::{FakeBedrock, prompt_text};
use testkit::runtime_api::{Answer, FakeRuntimeApi, spawn_function};

fn record(id: &str, body: &str) -> Value {
    json!({
        "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "x", "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:couch-test-prompts", "awsRegion": "eu-west-1"
    })
}

#[tokio::test]
async fn sqs_batch_through_the_runtime_loop_reports_exactly_the_failures_for_each_family() {
    for model in [
        "amazon.titan-image-generator-v1",
        "stability.stable-image-core-v1:1",
    ] {
        batch_through_the_loop(model).await;
    }
}

async fn batch_through_the_loop(model: &str) {
    let (s3, bucket) = testkit::bucket("worker-images-").await;
    let bedrock = FakeBedrock::start(Duration::from_millis(50)).await;
    let mut api = FakeRuntimeApi::start().await;
    let function = spawn_function(
        env!("CARGO_BIN_EXE_image-worker"),
        &api,
        "couch-test-image-worker",
        &bedrock.endpoint,
        &[
            ("IMAGE_BUCKET", &bucket),
            ("IMAGE_PREFIX", "11"),
            ("MODEL_ID", model),
        ],
    );

    let limit = imagegen::PromptRule::for_model(model).unwrap().max_chars;
    let event = json!({"Records": [
        record("m-long", &"x".repeat(limit + 1)),
        record("m-plain", "me at a Parisian café, polaroid filter"),
        record("m-json", r#"{"prompt": "me on the moon"}"#),
        record("m-filtered", "FILTER this one"),
        record("m-empty", "   "),
        record("m-throttled", "THROTTLE this one"),
    ]});
    api.invoke("inv-1", event.clone());
    let body = match api.answer(Duration::from_secs(60)).await {
        Some(Answer::Response { body, .. }) => body,
        other => panic!("expected a response, got {other:?}"),
    };
    let mut failed: Vec<String> = body["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        ["m-empty", "m-filtered", "m-long", "m-throttled"],
        "{model}: {body}"
    );
    for (id, prompt) in [
        ("m-plain", "me at a Parisian café, polaroid filter"),
        ("m-json", "me on the moon"),
    ] {
        let obj = s3
            .get_object()
            .bucket(&bucket)
            .key(format!("11/images/{id}.png"))
            .send()
            .await
            .unwrap();
        assert_eq!(obj.content_type(), Some("image/png"));
        assert_eq!(
            Some(obj.body.collect().await.unwrap().into_bytes().to_vec()),
            bedrock.picture_for_prompt(prompt)
        );
    }
    // The SDK retries throttling by itself, so count the prompts that were not throttled.
    let prompts = || -> Vec<String> {
        let calls = bedrock.calls.lock().unwrap();
        let mut p: Vec<String> = calls
            .iter()
            .map(|(_, body)| prompt_text(body).to_owned())
            .filter(|t| !t.contains("THROTTLE"))
            .collect();
        p.sort();
        p
    };
    assert_eq!(
        prompts(),
        [
            "FILTER this one",
            "me at a Parisian café, polaroid filter",
            "me on the moon"
        ],
        "the empty prompt and the one over the model's limit never reach the model"
    );

    // One JSON line per record with the same fields, and its metrics as EMF.
    let lines = function.json_lines();
    let image_line = |id: &str| {
        lines
            .iter()
            .find(|l| l["message_id"] == id && l.get("_aws").is_some())
            .unwrap_or_else(|| panic!("{model}: no image line for {id} in {lines:#?}"))
            .clone()
    };
    for (id, outcome, reason) in [
        ("m-plain", "stored", None),
        ("m-json", "stored", None),
        ("m-filtered", "failed", Some("filtered")),
        ("m-throttled", "failed", Some("throttled")),
        ("m-empty", "failed", Some("input")),
        ("m-long", "failed", Some("input")),
    ] {
        let l = image_line(id);
        assert_eq!(l["outcome"], outcome, "{l}");
        assert_eq!(l["image_key"], format!("11/images/{id}.png"), "{l}");
        assert_eq!(l["model"], model, "{l}");
        assert!(l["duration_ms"].is_u64(), "{l}");
        assert_eq!(l["FunctionName"], "couch-test-image-worker", "{l}");
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Namespace"], "CouchExplorers",
            "{l}"
        );
        match reason {
            None => {
                assert_eq!(l["ImagesMade"], 1, "{l}");
                assert!(l["ModelLatency"].is_u64(), "{l}");
            }
            Some(r) => {
                assert_eq!(l["ImagesFailed"], 1, "{l}");
                assert_eq!(l["Reason"], r, "{l}");
            }
        }
    }

    // Redelivery of the whole batch: stored images are not generated again.
    api.invoke("inv-2", event);
    let body = match api.answer(Duration::from_secs(60)).await {
        Some(Answer::Response { body, .. }) => body,
        other => panic!("expected a response, got {other:?}"),
    };
    assert_eq!(body["batchItemFailures"].as_array().unwrap().len(), 4);
    assert_eq!(
        prompts(),
        [
            "FILTER this one",
            "FILTER this one",
            "me at a Parisian café, polaroid filter",
            "me on the moon"
        ],
        "stored images are not generated again"
    );

    // The pre-traffic health check: answered after writing its proof, without a model call.
    api.invoke("inv-3", json!({"couch_health_check": {"by": "test"}}));
    let body = match api.answer(Duration::from_secs(60)).await {
        Some(Answer::Response { body, .. }) => body,
        other => panic!("expected a response, got {other:?}"),
    };
    assert_eq!(body["ok"], true, "{model}: {body}");
    assert_eq!(body["function"], "couch-test-image-worker", "{body}");
    assert_eq!(body["checks"].as_array().unwrap().len(), 3, "{body}");
    s3.head_object()
        .bucket(&bucket)
        .key("11/images/_health/couch-test-image-worker.json")
        .send()
        .await
        .unwrap();
    assert_eq!(prompts().len(), 4, "the health check calls no model");
}

#[tokio::test]
async fn a_health_check_that_cannot_write_under_the_prefix_answers_not_ok_with_the_reason() {
    let bedrock = FakeBedrock::start(Duration::ZERO).await;
    let mut api = FakeRuntimeApi::start().await;
    let _function = spawn_function(
        env!("CARGO_BIN_EXE_image-worker"),
        &api,
        "couch-test-image-worker",
        &bedrock.endpoint,
        &[
            ("IMAGE_BUCKET", "no-such-bucket-for-health"),
            ("IMAGE_PREFIX", "11"),
            ("MODEL_ID", "stability.stable-image-core-v1:1"),
        ],
    );
    api.invoke("inv-1", json!({"couch_health_check": {}}));
    let body = match api.answer(Duration::from_secs(60)).await {
        Some(Answer::Response { body, .. }) => body,
        other => panic!("expected a response, got {other:?}"),
    };
    assert_eq!(body["ok"], false, "{body}");
    let store = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "store")
        .unwrap();
    assert_eq!(store["ok"], false, "{body}");
    assert!(
        store["detail"].as_str().unwrap().contains("NoSuchBucket"),
        "{body}"
    );
    assert!(bedrock.calls.lock().unwrap().is_empty());
}
