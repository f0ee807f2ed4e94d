//! The client binary against moto (SQS, S3) and a local stand-in for the
//! HTTP API, run the way users run it.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use testkit::http::{Request, Response};

const REGION: &str = "eu-west-1";

fn client(endpoint: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_couch-client"));
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env_remove("AWS_PROFILE")
        .env_remove("SQS_QUEUE_URL")
        .env_remove("COUCH_QUEUE_URL")
        .env_remove("COUCH_QUEUE_NAME")
        .env_remove("IMAGE_BUCKET")
        .env_remove("IMAGE_PREFIX")
        .env_remove("COUCH_API_AUTH")
        .env_remove("COUCH_API_TOKEN");
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn queue(name: &str) -> (aws_sdk_sqs::Client, String) {
    let conf = testkit::sdk_config(testkit::moto_endpoint(), REGION);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let url = sqs
        .create_queue()
        .queue_name(testkit::unique(name))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (sqs, url)
}

async fn bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let msgs = got.messages();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            out.push((
                m.message_id().unwrap().to_owned(),
                m.body().unwrap().to_owned(),
            ));
        }
    }
}

#[tokio::test]
async fn runs_like_the_old_java_client_with_sqs_queue_url() {
    let (sqs, url) = queue("c-old-").await;
    let out = client(testkit::moto_endpoint())
        .env("SQS_QUEUE_URL", &url)
        .args(["me", "on", "top", "of", "a", "pyramid"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    let got = bodies(&sqs, &url).await;
    assert_eq!(got, [(id, "me on top of a pyramid".to_owned())]);
}

/// No region in the environment or a profile (the demo's case): AWS's chain
/// runs to its end (instance metadata, through the project's HTTP client:
/// the SDK here has none of its own) and the stacks' Region is used.
#[tokio::test]
async fn without_a_configured_region_the_chain_ends_in_the_stacks_region() {
    let (sqs, url) = queue("c-noregion-").await;
    let home = std::env::temp_dir().join(testkit::unique("c-home-"));
    std::fs::create_dir_all(&home).unwrap();
    let out = client(testkit::moto_endpoint())
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        // No ~/.aws/config to read a region from; no instance metadata here.
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
        .args(["--queue-url", &url, "a prompt with no region set"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    let got = bodies(&sqs, &url).await;
    assert_eq!(got, [(id, "a prompt with no region set".to_owned())]);
}

#[tokio::test]
async fn prompts_from_standard_input_go_ten_at_a_time_and_bad_lines_are_reported() {
    let (sqs, url) = queue("c-batch-").await;
    let mut input = String::new();
    for i in 1..=23 {
        input.push_str(&format!("prompt number {i}\n"));
        if i == 5 {
            input.push('\n');
        }
        if i == 17 {
            input.push_str(&"x".repeat(600));
            input.push('\n');
        }
    }
    // The stack's outputs (`provisioner outputs --json`) give the queue and
    // the model, whose prompt limit the client applies (Titan: 512).
    let outputs = std::env::temp_dir().join(format!("{}-outputs.json", testkit::unique("c-")));
    std::fs::write(
        &outputs,
        serde_json::json!({"queue_url": url, "model_id": "amazon.titan-image-generator-v1", "api_url": null})
            .to_string(),
    )
    .unwrap();
    let mut child = client(testkit::moto_endpoint())
        .arg("--stack")
        .arg(&outputs)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 23);
    let err = text(&out.stderr);
    assert!(
        err.contains("line 6: skipped: the prompt is empty"),
        "{err}"
    );
    assert!(
        err.contains(
            "line 19: skipped: the prompt is 600 characters long; the model's limit is 512"
        ),
        "{err}"
    );
    assert!(err.contains("sent 23, skipped 2, failed 0"), "{err}");
    // Every id printed is a message with the prompt of that position.
    let got: std::collections::HashMap<String, String> =
        bodies(&sqs, &url).await.into_iter().collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(got[id], format!("prompt number {}", i + 1));
    }
}

#[tokio::test]
async fn wait_prints_the_id_then_the_image_and_downloads_it() {
    let (_, url) = queue("c-wait-").await;
    let (s3, bucket) = testkit::bucket("c-wait-").await;
    let dir = std::env::temp_dir().join(testkit::unique("c-wait-out-"));
    let file = dir.join("image.png");
    let mut child = client(testkit::moto_endpoint())
        .args([
            "--queue-url",
            &url,
            "--wait",
            "--timeout",
            "30",
            "--bucket",
            &bucket,
        ])
        .arg("--download")
        .arg(&file)
        .env("IMAGE_PREFIX", "11")
        .arg("a café in Paris")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The message id comes first, on its own line, before the image exists.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    let mut byte = [0u8; 1];
    while std::io::Read::read(&mut stdout, &mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0] as char);
    }
    let key = format!("11/images/{first}.png");
    let picture = testkit::png::paint("a café in Paris", 1, 16, 16);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(picture.clone().into())
        .send()
        .await
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(rest.trim(), format!("s3://{bucket}/{key}"));
    assert!(
        text(&out.stderr).contains("waiting for s3://"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), picture);
}

#[tokio::test]
async fn wait_gives_up_after_the_timeout_with_a_clear_message() {
    let (_, url) = queue("c-timeout-").await;
    let (_, bucket) = testkit::bucket("c-timeout-").await;
    let out = client(testkit::moto_endpoint())
        .args([
            "--queue-url",
            &url,
            "--wait",
            "--timeout",
            "2",
            "--bucket",
            &bucket,
            "--prefix",
            "11",
            "never",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 1, "the id was printed");
    assert!(
        text(&out.stderr).contains("no image at s3://") && text(&out.stderr).contains("after 2 s"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_prints_the_location_or_the_apis_error() {
    let addr = testkit::http::serve(Arc::new(|req: Request| {
        Box::pin(async move {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            if req.method == "POST" && body["prompt"] == "a pyramid" {
                Response::json(
                    201,
                    &json!({"s3_uri": "s3://b/11/images/r1.png", "bucket": "b", "key": "11/images/r1.png",
                            "seed": 7, "model": "m", "url": "https://b.s3.amazonaws.com/11/images/r1.png?X-Amz-Signature=s"}),
                )
            } else {
                Response::json(422, &json!({"error": "the model refused the prompt", "request_id": "r2"}))
            }
        })
    }))
    .await;
    let api = format!("http://{addr}/image_generator");
    let out = client("http://127.0.0.1:9")
        .args(["--http", &api, "a", "pyramid"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "s3://b/11/images/r1.png\nhttps://b.s3.amazonaws.com/11/images/r1.png?X-Amz-Signature=s\n"
    );
    let out = client("http://127.0.0.1:9")
        .args(["--http", &api, "something", "else"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("HTTP 422: the model refused the prompt"),
        "{}",
        text(&out.stderr)
    );
}

/// An API that answers 201 only to a caller proving itself as the route
/// requires: a valid SigV4 signature for execute-api made with the
/// `testing` secret (with the session token), or the bearer token.
async fn guarded_api() -> String {
    let addr = testkit::http::serve(Arc::new(|req: Request| {
        Box::pin(async move {
            let created = Response::json(
                201,
                &json!({"s3_uri": "s3://b/11/images/r1.png", "url": "https://u/r1.png"}),
            );
            let refused = |why: String| Response::json(403, &json!({ "message": why }));
            match req.header("authorization") {
                Some("Bearer t0k3n") => created,
                Some(a) if a.starts_with("AWS4-HMAC-SHA256") => {
                    match testkit::sigv4::verify(&req, "testing") {
                        Ok(s)
                            if s.service == "execute-api"
                                && s.region == REGION
                                && s.access_key == "ASIAROLE"
                                && s.session_token.as_deref() == Some("session-1")
                                && s.signed_headers.contains(&"content-type".to_owned()) =>
                        {
                            created
                        }
                        Ok(s) => refused(format!("signed, but not as expected: {s:?}")),
                        Err(e) => refused(e),
                    }
                }
                _ => refused("no credentials".into()),
            }
        })
    }))
    .await;
    format!("http://{addr}/image_generator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_signs_for_an_iam_route_and_sends_the_token_for_a_jwt_route() {
    let api = guarded_api().await;
    let ok = |out: &Output| {
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "s3://b/11/images/r1.png\nhttps://u/r1.png\n"
        );
    };
    // SigV4 with the role's temporary keys, the auth named by the stack's outputs.
    let outputs = std::env::temp_dir().join(format!("{}-outputs.json", testkit::unique("auth")));
    std::fs::write(
        &outputs,
        json!({"api_auth": "iam", "model_id": "stability.stable-image-core-v1:1"}).to_string(),
    )
    .unwrap();
    let signed = client("http://127.0.0.1:9")
        .args([
            "--http",
            &api,
            "--stack",
            outputs.to_str().unwrap(),
            "a",
            "pyramid",
        ])
        .env("AWS_ACCESS_KEY_ID", "ASIAROLE")
        .env("AWS_SESSION_TOKEN", "session-1")
        .output()
        .unwrap();
    ok(&signed);
    // Another secret: the server's check refuses it, and the client says so.
    let forged = client("http://127.0.0.1:9")
        .args(["--http", &api, "--auth", "iam", "a", "pyramid"])
        .env("AWS_ACCESS_KEY_ID", "ASIAROLE")
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .env("AWS_SESSION_TOKEN", "session-1")
        .output()
        .unwrap();
    assert_eq!(forged.status.code(), Some(1));
    assert!(
        text(&forged.stderr).contains("HTTP 403"),
        "{}",
        text(&forged.stderr)
    );
    // JWT: the bearer token from COUCH_API_TOKEN; without one, a clear error and no call.
    let bearer = client("http://127.0.0.1:9")
        .args(["--http", &api, "--auth", "jwt", "a", "pyramid"])
        .env("COUCH_API_TOKEN", "t0k3n")
        .output()
        .unwrap();
    ok(&bearer);
    let tokenless = client("http://127.0.0.1:9")
        .args(["--http", &api, "--auth", "jwt", "a", "pyramid"])
        .output()
        .unwrap();
    assert_eq!(tokenless.status.code(), Some(1));
    assert!(
        text(&tokenless.stderr).contains("set COUCH_API_TOKEN"),
        "{}",
        text(&tokenless.stderr)
    );
    // An open route's caller sends nothing, and this API refuses it.
    let open = client("http://127.0.0.1:9")
        .args(["--http", &api, "a", "pyramid"])
        .output()
        .unwrap();
    assert!(
        text(&open.stderr).contains("HTTP 403: no credentials"),
        "{}",
        text(&open.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_wait_submits_polls_and_downloads_or_says_why_it_failed() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let polls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&polls);
    let png = testkit::png::paint("a lighthouse", 3, 4, 4);
    let served = png.clone();
    let addr = testkit::http::serve(Arc::new(move |req: Request| {
        let (polls, png) = (Arc::clone(&seen), served.clone());
        Box::pin(async move {
            let ok = "6a96454d-ef25-4788-a79c-000000000001";
            let bad = "6a96454d-ef25-4788-a79c-000000000002";
            let host = req.header("host").unwrap_or_default().to_owned();
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            match (req.method.as_str(), req.path.as_str()) {
                ("POST", "/images") => {
                    let id = if body["prompt"] == "FILTER it" { bad } else { ok };
                    Response::json(202, &json!({"id": id, "status": "queued", "status_url": format!("/images/{id}")}))
                        .with_header("location", &format!("/images/{id}"))
                }
                ("GET", p) if p == format!("/images/{ok}") => {
                    if polls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Response::json(200, &json!({"status": "queued"}))
                    } else {
                        Response::json(200, &json!({"status": "done", "s3_uri": format!("s3://b/11/images/{ok}.png"),
                            "url": format!("http://{host}/signed/{ok}.png"), "model": "m", "seed": 1}))
                    }
                }
                ("GET", p) if p == format!("/images/{bad}") => Response::json(
                    200,
                    &json!({"status": "failed", "reason": "the image model's content filter refused this prompt"}),
                ),
                ("GET", p) if p.starts_with("/signed/") => Response {
                    status: 200,
                    headers: vec![("content-type".into(), "image/png".into())],
                    body: png,
                },
                _ => Response::json(404, &json!({"message": "Not Found"})),
            }
        })
    }))
    .await;
    let api = format!("http://{addr}/image_generator");
    let dir = std::env::temp_dir().join(testkit::unique("http-wait-"));
    let out = client("http://127.0.0.1:9")
        .args(["--http", &api, "--wait", "--timeout", "30", "--download"])
        .arg(format!("{}/", dir.display()))
        .args(["a", "lighthouse"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = "6a96454d-ef25-4788-a79c-000000000001";
    assert_eq!(
        text(&out.stdout),
        format!("{id}\ns3://b/11/images/{id}.png\n")
    );
    assert_eq!(polls.load(Ordering::SeqCst), 3, "polled until done");
    assert!(
        text(&out.stderr).contains(&format!("waiting for {id}")),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(dir.join(format!("{id}.png"))).unwrap(), png);

    let failed = client("http://127.0.0.1:9")
        .args(["--http", &api, "--wait", "FILTER", "it"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        text(&failed.stderr)
            .contains("failed: the image model's content filter refused this prompt"),
        "{}",
        text(&failed.stderr)
    );
}

#[test]
fn bad_prompts_are_refused_before_any_call() {
    let out: Output = client("http://127.0.0.1:9")
        .args(["--queue-url", "http://127.0.0.1:9/1/q", "   "])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the prompt is empty"),
        "{}",
        text(&out.stderr)
    );
}
