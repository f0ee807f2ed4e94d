//! The worker's real binary in its real `lambda_runtime` loop, fed an SQS event
//! by a Runtime API stand-in, with S3 on moto and Bedrock on the InvokeModel
//! stand-in.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::bedrock::{FakeBedrock, prompt_text};
use testkit::runtime_api::{Answer, FakeRuntimeApi, spawn_function};

fn record_of(id: &str, body: &str, queue_arn: &str) -> Value {
    json!({
        "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "x", "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": "eu-west-1"
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

/// The dead-letter queue's messages: (body, request id attribute, reason attribute).
async fn dead_letters(q: &testkit::queues::QueueWithDlq) -> Vec<(String, String, String)> {
    testkit::queues::drain(&q.sqs, &q.dlq_url)
        .await
        .into_iter()
        .map(|m| {
            let attr = |k: &str| m.attributes.get(k).cloned().unwrap_or_default();
            (
                m.body.clone(),
                attr(image_worker::REQUEST_ID_ATTRIBUTE),
                attr(couch_contract::queues::REASON_ATTRIBUTE),
            )
        })
        .collect()
}

/// The worker binary in its runtime loop, with a stand-in model, S3 and
/// SQS on moto, the test queue's DLQ, and `extra` variables.
fn worker(
    api: &FakeRuntimeApi,
    bedrock: &FakeBedrock,
    bucket: &str,
    model: &str,
    q: &testkit::queues::QueueWithDlq,
    extra: &[(&str, &str)],
) -> testkit::runtime_api::RunningFunction {
    let dlq_name = format!("{}-dlq", q.name);
    let mut env = vec![
        ("IMAGE_BUCKET", bucket),
        ("IMAGE_PREFIX", "11"),
        ("MODEL_ID", model),
        // One receive for failures: a throttle must not count as one.
        ("MAX_RECEIVE_COUNT", "1"),
        ("DLQ_NAME", dlq_name.as_str()),
        ("AWS_ENDPOINT_URL_SQS", testkit::moto_endpoint()),
    ];
    env.extend_from_slice(extra);
    spawn_function(
        env!("CARGO_BIN_EXE_image-worker"),
        api,
        "couch-test-image-worker",
        &bedrock.endpoint,
        &env,
    )
}

async fn batch_through_the_loop(model: &str) {
    let (s3, bucket) = testkit::bucket("worker-images-").await;
    let bedrock = FakeBedrock::start(Duration::from_millis(50)).await;
    let q = testkit::queues::queue_with_dlq("t-worker-", 1, 30).await;
    // A short timeout: the always-throttled prompt is retried until its
    // time is up, then returned.
    let mut api = FakeRuntimeApi::start_with_timeout(Duration::from_secs(8)).await;
    let function = worker(&api, &bedrock, &bucket, model, &q, &[]);

    let limit = imagegen::PromptRule::for_model(model).unwrap().max_chars;
    let event = json!({"Records": [
        record_of("m-long", &"x".repeat(limit + 1), &q.arn),
        record_of("m-plain", "me at a Parisian café, polaroid filter", &q.arn),
        record_of("m-json", r#"{"prompt": "me on the moon"}"#, &q.arn),
        record_of("m-filtered", "FILTER this one", &q.arn),
        record_of("m-empty", "   ", &q.arn),
        record_of("m-throttled", "THROTTLE this one", &q.arn),
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
    // Poison is moved to the dead-letter queue by the worker (with its
    // reason); the throttled prompt is returned, never dead-lettered.
    assert_eq!(failed, ["m-throttled"], "{model}: {body}");
    let dead = dead_letters(&q).await;
    let reasons: Vec<(&str, &str)> = dead
        .iter()
        .map(|(_, id, reason)| (id.as_str(), reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 3, "{model}: {dead:?}");
    assert!(
        reasons.contains(&("m-filtered", imagegen::status::REASON_FILTERED)),
        "{dead:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(id, r)| *id == "m-empty" && r.starts_with(imagegen::status::REASON_PROMPT)),
        "{dead:?}"
    );
    assert!(dead.iter().any(|(_, id, _)| id == "m-long"), "{dead:?}");
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
            .find(|l| l["request_id"] == id && l.get("_aws").is_some())
            .unwrap_or_else(|| panic!("{model}: no image line for {id} in {lines:#?}"))
            .clone()
    };
    for (id, outcome, reason) in [
        ("m-plain", "stored", None),
        ("m-json", "stored", None),
        ("m-filtered", "failed", Some("filtered")),
        ("m-throttled", "deferred", Some("throttled")),
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
            Some(_) if outcome == "deferred" => {
                assert_eq!(l.get("ImagesFailed"), None, "not a failure: {l}");
                assert!(l["ModelThrottles"].as_u64().unwrap() >= 1, "{l}");
                assert_eq!(l["deferred"], "throttled", "{l}");
            }
            Some(r) => {
                assert_eq!(l["dead_lettered"], true, "{l}");
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
    assert_eq!(body["batchItemFailures"].as_array().unwrap().len(), 1);
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
async fn under_a_model_that_throttles_half_its_calls_every_record_is_stored_or_returned() {
    let model = "stability.stable-image-core-v1:1";
    let (s3, bucket) = testkit::bucket("worker-throttled-").await;
    let bedrock = FakeBedrock::start_with(testkit::bedrock::Options {
        delay: Duration::from_millis(20),
        throttle_every: Some(2),
        ..Default::default()
    })
    .await;
    let q = testkit::queues::queue_with_dlq("t-worker-thr-", 1, 30).await;
    let mut api = FakeRuntimeApi::start_with_timeout(Duration::from_secs(15)).await;
    let function = worker(
        &api,
        &bedrock,
        &bucket,
        model,
        &q,
        &[("WORKER_CONCURRENCY", "4")],
    );
    let ids: Vec<String> = (0..8).map(|i| format!("m-{i}")).collect();
    let records: Vec<Value> = ids
        .iter()
        .map(|id| record_of(id, &format!("a couch number {id}"), &q.arn))
        .collect();
    api.invoke("inv-1", json!({ "Records": records }));
    let body = match api.answer(Duration::from_secs(60)).await {
        Some(Answer::Response { body, .. }) => body,
        other => panic!("expected a response, got {other:?}"),
    };
    let returned: Vec<&str> = body["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    let mut stored = 0;
    for id in &ids {
        let there = s3
            .head_object()
            .bucket(&bucket)
            .key(format!("11/images/{id}.png"))
            .send()
            .await
            .is_ok();
        assert!(
            there != returned.contains(&id.as_str()),
            "{id}: stored {there}, returned {returned:?}"
        );
        stored += usize::from(there);
    }
    assert!(bedrock.throttled() >= 1, "the stand-in throttled");
    assert!(dead_letters(&q).await.is_empty(), "nothing dead-lettered");
    assert_eq!(
        stored + returned.len(),
        ids.len(),
        "{body}; throttled {}",
        bedrock.throttled()
    );
    // Every throttled call is counted once, on the record's line (no SDK retry hides one).
    let counted: u64 = function
        .json_lines()
        .iter()
        .filter_map(|l| l["ModelThrottles"].as_u64())
        .sum();
    assert_eq!(counted, bedrock.throttled() as u64);
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
