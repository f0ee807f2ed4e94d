//! `provisioner local`'s parts. The SQS trigger against moto: deletes exactly
//! what the worker did not report as failed; a poison message reaches the
//! dead-letter queue after `maxReceiveCount` receives. The API Gateway over a
//! real socket, in front of the real HTTP function's handler.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use provisioner::local::trigger::{Invoke, Trigger};
use serde_json::{Value, json};
use testkit::queues::{depth as count, send_all};

/// A worker that fails every record whose body contains "bad", and records
/// the batches it saw.
#[derive(Default)]
struct Worker {
    seen: Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl Invoke for Worker {
    async fn invoke(&self, event: Value) -> Result<Value, String> {
        let records = event["Records"].as_array().cloned().unwrap_or_default();
        self.seen.lock().unwrap().push(
            records
                .iter()
                .map(|r| r["body"].as_str().unwrap_or_default().to_owned())
                .collect(),
        );
        let failures: Vec<Value> = records
            .iter()
            .filter(|r| r["body"].as_str().unwrap_or_default().contains("bad"))
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        Ok(json!({ "batchItemFailures": failures }))
    }
}

struct Queues {
    sqs: aws_sdk_sqs::Client,
    trigger: Trigger,
    dlq_url: String,
}

async fn queues(max_receive_count: u32) -> Queues {
    let q = testkit::queues::queue_with_dlq("t-local-", max_receive_count, 1).await;
    Queues {
        sqs: q.sqs,
        trigger: Trigger {
            queue_url: q.url,
            queue_arn: q.arn,
            region: "eu-west-1".into(),
            batch_size: 10,
            wait_seconds: 1,
            timeout: Duration::from_secs(10),
        },
        dlq_url: q.dlq_url,
    }
}

#[tokio::test]
async fn a_failed_record_stays_and_the_others_are_deleted() {
    let q = queues(5).await;
    send_all(
        &q.sqs,
        &q.trigger.queue_url,
        &["one", "two", "bad three", "four"],
    )
    .await;
    let worker = Worker::default();
    let batch = q.trigger.poll_once(&q.sqs, &worker).await.unwrap();
    assert_eq!(batch.received, 4);
    assert_eq!(batch.deleted.len(), 3);
    assert_eq!(batch.failed.len(), 1);
    assert!(
        batch.line().contains("3 done and deleted, 1 failed"),
        "{}",
        batch.line()
    );
    assert_eq!(
        count(&q.sqs, &q.trigger.queue_url).await,
        1,
        "only the failed record is left"
    );
    // After the visibility timeout it is delivered again, alone.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let again = q.trigger.poll_once(&q.sqs, &worker).await.unwrap();
    assert_eq!(again.received, 1);
    assert_eq!(worker.seen.lock().unwrap().last().unwrap(), &["bad three"]);
}

#[tokio::test]
async fn a_poison_message_reaches_the_dead_letter_queue_after_max_receive_count() {
    let q = queues(2).await;
    send_all(&q.sqs, &q.trigger.queue_url, &["bad to the bone"]).await;
    let worker = Worker::default();
    let mut receives = 0;
    for _ in 0..6 {
        let b = q.trigger.poll_once(&q.sqs, &worker).await.unwrap();
        receives += b.received;
        if count(&q.sqs, &q.dlq_url).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_eq!(receives, 2, "received exactly maxReceiveCount times");
    assert_eq!(
        count(&q.sqs, &q.dlq_url).await,
        1,
        "moved to the dead-letter queue"
    );
    assert_eq!(count(&q.sqs, &q.trigger.queue_url).await, 0);
}

#[tokio::test]
async fn a_failed_invocation_leaves_the_whole_batch() {
    struct Down;
    #[async_trait]
    impl Invoke for Down {
        async fn invoke(&self, _: Value) -> Result<Value, String> {
            Err("connection refused".into())
        }
    }
    let q = queues(5).await;
    send_all(&q.sqs, &q.trigger.queue_url, &["one", "two"]).await;
    let batch = q.trigger.poll_once(&q.sqs, &Down).await.unwrap();
    assert_eq!(batch.failed.len(), 2);
    assert!(batch.deleted.is_empty());
    assert!(
        batch.line().contains("the invocation failed"),
        "{}",
        batch.line()
    );
    assert_eq!(count(&q.sqs, &q.trigger.queue_url).await, 2);
}

/// The HTTP function's real handler (event parser included) behind the
/// `Invoke` seam, with in-memory model and store.
struct HttpFunction {
    generator: imagegen::Generator<imagegen::fakes::FakeModel, imagegen::fakes::FakeStore>,
}

#[async_trait]
impl Invoke for HttpFunction {
    async fn invoke(&self, event: Value) -> Result<Value, String> {
        let no_queue: Option<&imagegen::fakes::FakeQueue> = None;
        Ok(image_http::respond(event, &self.generator, no_queue, "lambda-request-id").await)
    }
}

/// One HTTP/1.1 request over a fresh connection; (status, headers, body).
async fn http(addr: std::net::SocketAddr, request: String) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn post(path: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn the_local_api_serves_the_http_function_like_api_gateway() {
    use imagegen::fakes::{FakeModel, FakeStore};
    use provisioner::local::api_gateway::ApiGateway;
    let function = std::sync::Arc::new(HttpFunction {
        generator: imagegen::Generator::new(
            FakeModel::new(Duration::ZERO),
            FakeStore::default(),
            "11",
        ),
    });
    let api = std::sync::Arc::new(ApiGateway::new(
        &[(http::Method::POST, couch_contract::routes::SYNC.path)],
        function.clone(),
        Duration::from_secs(10),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(api.serve(listener));

    let (status, head, body) = http(
        addr,
        post(
            "/image_generator",
            "application/json",
            r#"{"prompt": "a cat on a couch"}"#,
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(
        head.lines().any(|l| l.starts_with("apigw-requestid: ")),
        "{head}"
    );
    // Stored under an id of its own, in the synchronous route's folder
    // (no queued request's id can name it, no call overwrites another's).
    let key = answer["key"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("11/images/sync/") && key.ends_with(".png"),
        "{key}"
    );
    assert_eq!(function.generator.store.keys(), vec![key]);

    let (status, _, body) = http(
        addr,
        post(
            "/image_generator",
            "application/json",
            r#"{"prompt": "FILTER this"}"#,
        ),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _, body) = http(
        addr,
        post("/image_generator", "application/json", r#"{"prompt": 5}"#),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    let (status, _, body) = http(addr, post("/elsewhere", "application/json", "{}")).await;
    assert_eq!((status, body.as_str()), (404, r#"{"message":"Not Found"}"#));
    server.abort();
}

/// What `provisioner local` does with cargo-lambda's output: every line on,
/// and each function's JSON lines into its log group in the emulator.
#[tokio::test]
async fn the_functions_lines_land_in_their_log_groups() {
    let conf = testkit::sdk_config(testkit::moto_endpoint(), "eu-west-1");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let name = testkit::unique("t-local-logs-");
    let (worker, http) = (
        format!("/aws/lambda/{name}-worker"),
        format!("/aws/lambda/{name}-http"),
    );
    for group in [&worker, &http] {
        logs.create_log_group()
            .log_group_name(group)
            .send()
            .await
            .unwrap();
    }
    let sink = provisioner::local::logs::LogSink {
        logs: logs.clone(),
        groups: [
            ("image-worker".to_owned(), worker.clone()),
            ("image-http".to_owned(), http.clone()),
        ]
        .into(),
        stream: "local/1".into(),
    };
    let output = concat!(
        "[cargo-lambda] building image-worker\n",
        "{\"FunctionName\":\"image-worker\",\"message_id\":\"m-1\",\"outcome\":\"stored\"}\n",
        "{\"FunctionName\":\"image-http\",\"request_id\":\"r-1\",\"outcome\":\"failed\"}\n",
        "{\"level\":\"INFO\",\"message\":\"cold start\"}\n",
    );
    sink.forward(output.as_bytes()).await;
    let messages = |group: String| {
        let logs = logs.clone();
        async move {
            logs.filter_log_events()
                .log_group_name(group)
                .send()
                .await
                .unwrap()
                .events()
                .iter()
                .map(|e| e.message().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let w = messages(worker).await;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("\"message_id\":\"m-1\""), "{w:?}");
    let h = messages(http).await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(h[0].contains("\"request_id\":\"r-1\""), "{h:?}");
}
