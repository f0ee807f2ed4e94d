//! The scalable path over HTTP against moto: the deployed HTTP function (its
//! real binary, run by the emulator's Invoke) answers `POST /images` with
//! 202 and an id, the prompt is on the prompts queue and its status
//! `queued`; the real worker code makes the picture, and `GET /images/{id}`
//! says `done` with the stand-in's bytes in S3. A prompt the model refuses
//! is `failed` (a reason a user can read) after one receive, and in the
//! dead-letter queue with its request id and reason; an unknown id is 404,
//! a malformed one 400.

mod common;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use common::*;
use imagegen::{BedrockModel, Generator, S3Store};
use serde_json::{Value, json};

/// API Gateway's payload-2.0 event for `method path` with `body`.
fn event(method: &str, path: &str, body: Option<&str>) -> Value {
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
            "requestId": format!("req-{}", testkit::unique("")), "routeKey": format!("{method} {path}"),
            "stage": "$default", "time": "x", "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false,
    })
}

/// Invokes the deployed HTTP function's `live` alias as API Gateway does:
/// (status, headers, body).
async fn call(f: &Fixture, method: &str, path: &str, body: Option<&str>) -> (u64, Value, Value) {
    let out = f
        .lambda()
        .invoke()
        .function_name(format!("{}:live", f.stack().http_name()))
        .payload(Blob::new(event(method, path, body).to_string()))
        .send()
        .await
        .expect("invoke");
    assert!(out.function_error().is_none(), "{out:?}");
    let answer: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap();
    (
        answer["statusCode"].as_u64().unwrap_or(0),
        answer["headers"].clone(),
        body,
    )
}

/// The worker's code with the real clients (the model stand-in, moto's S3).
fn worker(f: &Fixture) -> Generator<BedrockModel, S3Store> {
    let s = f.stack();
    let bconf = testkit::sdk_config(&f.bedrock.endpoint, &s.model.region);
    Generator::new(
        BedrockModel::new(aws_sdk_bedrockruntime::Client::new(&bconf), &s.model.id)
            .expect("the default model's family"),
        S3Store::new(f.s3(), s.images.bucket.clone()),
        &s.images.prefix,
    )
}

/// Receives the prompts queue's messages as Lambda's mapping does, runs the
/// worker on them, records the given-up ones, and makes failed ones visible
/// again at once (the test does not wait out the visibility timeout).
async fn receive_and_work(f: &Fixture, queue_url: &str, max: u32) -> Vec<(String, u32, bool)> {
    let sqs = f.sqs();
    let got = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let records: Vec<aws_lambda_events::sqs::SqsMessage> = got
        .messages()
        .iter()
        .map(|m| {
            let mut r = aws_lambda_events::sqs::SqsMessage::default();
            r.message_id = m.message_id().map(str::to_owned);
            r.receipt_handle = m.receipt_handle().map(str::to_owned);
            r.body = m.body().map(str::to_owned);
            for (k, v) in m.attributes().into_iter().flatten() {
                r.attributes.insert(k.as_str().to_owned(), v.clone());
            }
            r
        })
        .collect();
    let g = worker(f);
    let s = f.stack();
    let queues = image_worker::SqsQueues {
        client: sqs.clone(),
        dlq: Some(image_worker::DeadLetterQueue::Url(
            f.queue_url(&s.dlq_name()).await,
        )),
    };
    let outcomes = image_worker::process_records(
        &g,
        &image_worker::Pace::new(10),
        &image_worker::Rules::unhurried(Some(max)),
        &records,
    )
    .await;
    let outcomes = image_worker::settle(&g, &queues, &records, outcomes).await;
    let mut seen = Vec::new();
    for (m, o) in got.messages().iter().zip(&outcomes) {
        // What the trigger deletes: stored, or moved to the DLQ by the worker.
        let ok = !o.stays_on_the_queue();
        let receives = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let handle = m.receipt_handle().unwrap();
        if ok {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .unwrap();
        } else {
            sqs.change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        }
        seen.push((m.message_id().unwrap().to_owned(), receives, ok));
    }
    seen
}

/// A deployed stack whose worker the test plays (moto's own mapping paused):
/// the fixture and the prompts queue's URL.
async fn deployed(prefix: &str) -> (Fixture, String) {
    let f = Fixture::new(prefix).await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();
    let queue_url = f.queue_url(&s.queue_name()).await;
    provisioner::local::trigger::pause_emulator_mappings(
        &f.lambda(),
        &s.worker_name(),
        &f.live_attr(provisioner::declare::QUEUE, "arn").await,
    )
    .await
    .unwrap();
    (f, queue_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_prompt_is_queued_then_done_with_the_pictures_bytes() {
    let (f, queue_url) = deployed("img-done-").await;
    let s = f.stack();

    let started = std::time::Instant::now();
    let (status, headers, body) = call(
        &f,
        "POST",
        "/images",
        Some(r#"{"prompt": "a lighthouse in the fog"}"#),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["status_url"], format!("/images/{id}"));
    assert_eq!(headers["location"], format!("/images/{id}"));
    println!(
        "POST /images answered 202 in {:?} (emulator invoke included)",
        started.elapsed()
    );
    assert_eq!(f.bedrock.call_count(), 0, "no model call to submit");

    let (status, _, body) = call(&f, "GET", &format!("/images/{id}"), None).await;
    assert_eq!((status, body), (200, json!({"status": "queued"})));

    // The worker: the message's id is the request's, the picture stored under it.
    let seen = receive_and_work(&f, &queue_url, s.queue.max_receive_count).await;
    assert_eq!(seen, [(id.clone(), 1, true)]);
    let (status, _, body) = call(&f, "GET", &format!("/images/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "done");
    let key = couch_contract::image_key(&s.images.prefix, &id);
    assert_eq!(body["s3_uri"], format!("s3://{}/{key}", s.images.bucket));
    assert_eq!(body["model"], s.model.id.as_str());
    assert!(body["seed"].is_u64(), "{body}");
    assert!(body["url"].as_str().unwrap().contains(&key), "{body}");
    let stored = f
        .s3()
        .get_object()
        .bucket(&s.images.bucket)
        .key(&key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(
        stored.to_vec(),
        f.bedrock
            .picture_for_prompt("a lighthouse in the fog")
            .unwrap(),
        "the stand-in's picture, byte for byte"
    );

    // Never submitted, and not an id.
    let (status, _, body) = call(
        &f,
        "GET",
        "/images/6a96454d-ef25-4788-a79c-98f9157180bb",
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = call(&f, "GET", "/images/..%2F..%2Fsecret", None).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = call(&f, "POST", "/images", Some(r#"{"prompt": ""}"#)).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_prompt_fails_at_once_and_is_dead_lettered_with_its_request_id_and_reason() {
    let (f, queue_url) = deployed("img-fail-").await;
    let s = f.stack();
    let max = s.queue.max_receive_count;
    assert!(max > 1, "the fixture gives failures more than one receive");
    let dlq_url = f.queue_url(&s.dlq_name()).await;
    let (status, _, body) = call(
        &f,
        "POST",
        "/images",
        Some(r#"{"prompt": "FILTER a forbidden thing"}"#),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let path = format!("/images/{id}");

    // Poison: moved by the worker on its first receive (the trigger deletes it).
    let seen = receive_and_work(&f, &queue_url, max).await;
    assert_eq!(seen, [(id.clone(), 1, true)]);
    let (status, _, body) = call(&f, "GET", &path, None).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"status": "failed", "reason": imagegen::status::REASON_FILTERED})
        )
    );
    assert!(receive_and_work(&f, &queue_url, max).await.is_empty());
    let dead = f
        .sqs()
        .receive_message()
        .queue_url(&dlq_url)
        .message_attribute_names("All")
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    assert_eq!(dead.messages().len(), 1, "{dead:?}");
    let m = &dead.messages()[0];
    assert_eq!(m.body(), Some(r#"{"prompt":"FILTER a forbidden thing"}"#));
    let attr = |k: &str| {
        m.message_attributes()
            .and_then(|a| a.get(k))
            .and_then(|v| v.string_value())
            .map(str::to_owned)
    };
    // The request id travels with it: a redrive makes the picture under it.
    assert_eq!(
        attr(couch_contract::queues::REQUEST_ID_ATTRIBUTE),
        Some(id.clone())
    );
    assert_eq!(
        attr(couch_contract::queues::REASON_ATTRIBUTE).as_deref(),
        Some(imagegen::status::REASON_FILTERED)
    );
    assert_eq!(
        attr(couch_contract::queues::RECEIVES_ATTRIBUTE).as_deref(),
        Some("1")
    );
    assert_eq!(
        f.bedrock.call_count(),
        1,
        "one model call, no retry of a refusal"
    );
}
