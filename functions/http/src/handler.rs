//! From a request to a reply. Every error is JSON `{"error", "request_id"}`;
//! internal details go to the logs, never to the caller.

use std::time::Instant;

use imagegen::telemetry::{self, ImageEvent, Outcome};
use imagegen::{GenerateError, Generator, ImageModel, ImageStore, PromptQueue, new_image_id};
use serde_json::{Map, Value, json};

use couch_contract::routes;

use crate::event::Request;
use crate::reply::{Reply, URL_TTL, error, prompt_of, reply_for};

/// One invocation, whatever the event: an API Gateway request (either
/// payload version) is routed by method and path, anything else is a 400.
/// Always a Lambda proxy response whose error bodies are `{"error",
/// "request_id"}`. `context_request_id` is Lambda's, used when API
/// Gateway's is missing. `queue` is where `POST /images` sends (`QUEUE_ARN`).
pub async fn respond<M: ImageModel, S: ImageStore, Q: PromptQueue + ?Sized>(
    payload: Value,
    generator: &Generator<M, S>,
    queue: Option<&Q>,
    context_request_id: &str,
) -> Value {
    match crate::event::parse(payload) {
        Ok(req) => {
            let id = req
                .request_id
                .clone()
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| context_request_id.to_owned());
            route(&req, generator, queue, &id).await.to_lambda()
        }
        Err(e) => {
            tracing::warn!(request_id = context_request_id, error = %e, "unexpected event");
            error(400, "not an API Gateway request", context_request_id).to_lambda()
        }
    }
}

/// The routes: `POST /image_generator` (synchronous), `POST /images` and
/// `GET /images/{id}` (asynchronous, `images.rs`), `GET /` (the page,
/// `page.rs`); another method on a route is 405, another path 404.
pub async fn route<M: ImageModel, S: ImageStore, Q: PromptQueue + ?Sized>(
    req: &Request,
    generator: &Generator<M, S>,
    queue: Option<&Q>,
    request_id: &str,
) -> Reply {
    let path = req.path.trim_end_matches('/');
    let only = |method: &str| {
        error(
            405,
            &format!("{} is not allowed here; use {method}", req.method),
            request_id,
        )
    };
    if path == SUBMIT_PATH {
        return if req.method == "POST" {
            crate::images::submit(req, generator, queue, request_id).await
        } else {
            only("POST")
        };
    }
    if let Some(id) = path
        .strip_prefix(SUBMIT_PATH)
        .and_then(|p| p.strip_prefix('/'))
    {
        return if req.method == "GET" {
            crate::images::status_of(id, &req.caller, generator, request_id).await
        } else {
            only("GET")
        };
    }
    if req.path == routes::PAGE.path && req.method == routes::PAGE.method {
        return Reply::page(crate::page::page());
    }
    if path.is_empty() || path == SYNC_PATH {
        // The synchronous route (and an event without a path, as before).
        return handle(req, generator, request_id).await;
    }
    error(
        404,
        &format!("no route {} {}", req.method, req.path),
        request_id,
    )
}

/// The synchronous route's path (`couch_contract::routes`).
pub const SYNC_PATH: &str = routes::SYNC.path;
/// The asynchronous routes' path (`POST`, and `GET` of `/{id}` under it).
pub const SUBMIT_PATH: &str = routes::SUBMIT.path;

/// Handles one request of the synchronous route. `request_id` identifies
/// it in the answer and the logs; the picture gets an id of its own, a fresh
/// UUID under `{prefix}/images/sync/` (`couch_contract::sync_image_key`),
/// which no asynchronous id (an SQS message id, directly under `images/`)
/// and no other invocation's picture can hold: it is written with S3's
/// `If-None-Match: *` and a taken key is retried once with a new id, never
/// overwritten (`Generator::generate_new`).
pub async fn handle<M: ImageModel, S: ImageStore>(
    req: &Request,
    generator: &Generator<M, S>,
    request_id: &str,
) -> Reply {
    if req.method != "POST" {
        return error(
            405,
            &format!("{} is not allowed; use POST", req.method),
            request_id,
        );
    }
    let started = Instant::now();
    // The first key tried; the line of a request that stored nothing names it.
    let key = generator.sync_key_for(&new_image_id());
    let line = |key: &str, outcome: Outcome, status: u16, prompt_chars: Option<usize>| {
        let mut extra = Map::new();
        extra.insert("status".into(), status.into());
        if let Some(c) = prompt_chars {
            extra.insert("prompt_chars".into(), c.into());
        }
        // A synchronous caller is answered 429 at once: one throttled call.
        let throttled_calls = u32::from(matches!(
            outcome,
            Outcome::Failed {
                reason: "throttled",
                ..
            }
        ));
        ImageEvent {
            id_key: "request_id",
            id: request_id,
            image_key: key,
            model: generator.model.model_id(),
            outcome,
            duration: started.elapsed(),
            throttled_calls,
            extra,
        }
        .emit();
    };
    let failed = |e: &GenerateError| Outcome::Failed {
        reason: telemetry::reason(e),
        error: e.to_string(),
    };
    let prompt = match prompt_of(req, generator.model.prompt_rule(), request_id) {
        Ok(p) => p,
        Err(reply) => {
            tracing::info!(request_id, status = reply.status, "rejected request");
            return reply;
        }
    };
    let mut first = Some(key.clone());
    let new_key = || {
        first
            .take()
            .unwrap_or_else(|| generator.sync_key_for(&new_image_id()))
    };
    let stored = match generator.generate_new(&prompt, new_key).await {
        Ok(s) => s,
        Err(e) => {
            let reply = reply_for(&e, request_id);
            line(&key, failed(&e), reply.status, Some(prompt.chars()));
            return reply;
        }
    };
    let url = match generator.store.presigned_url(&stored.key, URL_TTL).await {
        Ok(u) => u,
        Err(e) => {
            let reply = reply_for(&e, request_id);
            line(&stored.key, failed(&e), reply.status, Some(prompt.chars()));
            return reply;
        }
    };
    line(
        &stored.key,
        Outcome::Stored {
            model_latency: stored.model_latency,
        },
        201,
        Some(prompt.chars()),
    );
    Reply::json(
        201,
        json!({
            "s3_uri": stored.s3_uri(),
            "bucket": stored.bucket,
            "key": stored.key,
            "seed": stored.seed,
            "model": stored.model,
            "url": url,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse;
    use base64::Engine as _;
    use imagegen::fakes::{FakeModel, FakeStore};
    use std::time::Duration;

    fn generator() -> Generator<FakeModel, FakeStore> {
        Generator::new(FakeModel::new(Duration::ZERO), FakeStore::default(), "11")
    }

    fn v2(body: Option<&str>, base64: bool) -> Value {
        let body = body.map(|b| {
            if base64 {
                base64::engine::general_purpose::STANDARD.encode(b)
            } else {
                b.to_owned()
            }
        });
        json!({
            "version": "2.0",
            "routeKey": "POST /image_generator",
            "rawPath": "/image_generator",
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x",
                "http": {"method": "POST", "path": "/image_generator", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
                "requestId": "req-v2", "routeKey": "POST /image_generator", "stage": "$default", "time": "x", "timeEpoch": 0
            },
            "body": body,
            "isBase64Encoded": base64
        })
    }

    fn v1(method: &str, body: Option<&str>) -> Value {
        json!({
            "resource": "/image_generator", "path": "/image_generator", "httpMethod": method,
            "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
            "queryStringParameters": null, "multiValueQueryStringParameters": null, "pathParameters": null,
            "stageVariables": null,
            "requestContext": {"accountId": "123456789012", "resourceId": "r", "stage": "prod", "requestId": "req-v1",
                               "identity": {"sourceIp": "1.2.3.4"}, "resourcePath": "/image_generator", "httpMethod": method, "apiId": "api"},
            "body": body, "isBase64Encoded": false
        })
    }

    async fn call(event: Value) -> (Reply, Generator<FakeModel, FakeStore>) {
        let g = generator();
        let req = parse(event).unwrap();
        let id = req.request_id.clone().unwrap();
        let reply = handle(&req, &g, &id).await;
        (reply, g)
    }

    /// The id of a synchronous picture's key (`11/images/sync/{id}.png`).
    fn sync_id(key: &Value) -> String {
        let id = key
            .as_str()
            .and_then(|k| k.strip_prefix("11/images/sync/"))
            .and_then(|k| k.strip_suffix(".png"))
            .unwrap_or_else(|| panic!("not a synchronous picture's key: {key}"));
        assert!(imagegen::status::is_request_id(id), "{id}");
        id.to_owned()
    }

    #[tokio::test]
    async fn created_with_location_and_link() {
        let (r, g) = call(v2(Some(r#"{"prompt": "a café"}"#), false)).await;
        assert_eq!(r.status, 201, "{r:?}");
        let key = r.body["key"].as_str().unwrap().to_owned();
        sync_id(&r.body["key"]);
        assert_eq!(r.body["bucket"], "fake-bucket");
        assert_eq!(r.body["s3_uri"], format!("s3://fake-bucket/{key}"));
        assert_eq!(r.body["model"], "fake.model-v1");
        assert!(r.body["seed"].is_u64());
        assert!(
            r.body["url"]
                .as_str()
                .unwrap()
                .contains("X-Amz-Expires=3600")
        );
        assert_eq!(g.store.keys(), [key.as_str()]);
        let l = r.to_lambda();
        assert_eq!(l["statusCode"], 201);
        assert_eq!(l["headers"]["content-type"], "application/json");
        assert_eq!(
            serde_json::from_str::<Value>(l["body"].as_str().unwrap()).unwrap(),
            r.body
        );
    }

    #[tokio::test]
    async fn base64_body_and_payload_1_0_are_accepted() {
        let (r, _) = call(v2(Some(r#"{"prompt": "a café"}"#), true)).await;
        assert_eq!(r.status, 201, "{r:?}");
        let (r, _) = call(v1("POST", Some(r#"{"prompt": "a dog"}"#))).await;
        assert_eq!(r.status, 201, "{r:?}");
        sync_id(&r.body["key"]);
    }

    #[tokio::test]
    async fn sync_pictures_get_ids_of_their_own_written_only_where_nothing_is() {
        let g = generator();
        // The same API Gateway request id twice (a replayed event): two pictures.
        let req = parse(v2(Some(r#"{"prompt": "a café"}"#), false)).unwrap();
        let a = handle(&req, &g, "req-v2").await;
        let b = handle(&req, &g, "req-v2").await;
        assert_eq!((a.status, b.status), (201, 201), "{a:?} {b:?}");
        let (ia, ib) = (sync_id(&a.body["key"]), sync_id(&b.body["key"]));
        assert_ne!(ia, ib);
        assert_ne!(ia, "req-v2");
        let (ka, kb) = (
            a.body["key"].as_str().unwrap(),
            b.body["key"].as_str().unwrap(),
        );
        // Both written with If-None-Match: *, and both still there.
        assert_eq!(g.store.conditional_keys(), [ka, kb]);
        let mut keys = g.store.keys();
        keys.sort();
        let mut want = vec![ka.to_owned(), kb.to_owned()];
        want.sort();
        assert_eq!(keys, want);
    }

    #[tokio::test]
    async fn a_taken_sync_key_is_retried_once_with_a_new_id_never_overwritten() {
        let g = generator();
        g.store.taken.store(1, std::sync::atomic::Ordering::SeqCst);
        let req = parse(v2(Some(r#"{"prompt": "a café"}"#), false)).unwrap();
        let r = handle(&req, &g, "req-v2").await;
        assert_eq!(r.status, 201, "{r:?}");
        let tried = g.store.conditional_keys();
        assert_eq!(tried.len(), 2, "{tried:?}");
        assert_ne!(tried[0], tried[1]);
        assert_eq!(r.body["key"], tried[1]);
        assert_eq!(g.store.keys(), [tried[1].as_str()]);
        assert_eq!(g.model.calls.load(std::sync::atomic::Ordering::SeqCst), 1);

        // Taken twice: 502, one model call, nothing written.
        let g = generator();
        g.store.taken.store(
            imagegen::NEW_KEY_ATTEMPTS,
            std::sync::atomic::Ordering::SeqCst,
        );
        let r = handle(&req, &g, "req-v2").await;
        assert_eq!(r.status, 502, "{r:?}");
        assert!(!r.body.to_string().contains("taken"), "no internals: {r:?}");
        assert_eq!(g.store.conditional_keys().len(), imagegen::NEW_KEY_ATTEMPTS);
        assert!(g.store.keys().is_empty());
        assert_eq!(g.model.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_sync_picture_carries_no_prompt_metadata() {
        let (r, g) = call(v2(Some(r#"{"prompt": "my secret café"}"#), false)).await;
        assert_eq!(r.status, 201, "{r:?}");
        let meta = g
            .store
            .metadata_of(r.body["key"].as_str().unwrap())
            .unwrap();
        assert!(!meta.contains_key("prompt"), "{meta:?}");
        assert!(!meta.values().any(|v| v.contains("secret")), "{meta:?}");
        assert_eq!(meta["model"], "fake.model-v1");
    }

    #[tokio::test]
    async fn bad_input_is_400_json_and_calls_no_model() {
        let long = format!(r#"{{"prompt": "{}"}}"#, "a".repeat(513));
        for (body, needle) in [
            (None, "empty"),
            (Some("not json"), "not a JSON object"),
            (Some("[1,2]"), "not a JSON object"),
            (Some("{}"), "missing"),
            (Some(r#"{"prompt": 5}"#), "must be a string"),
            (Some(r#"{"prompt": "   "}"#), "empty"),
            (Some(long.as_str()), "512"),
            (Some("{\"prompt\": \"a\\u0007b\"}"), "control character"),
        ] {
            let (r, g) = call(v2(body, false)).await;
            assert_eq!(r.status, 400, "{body:?}: {r:?}");
            assert!(
                r.body["error"].as_str().unwrap().contains(needle),
                "{body:?}: {r:?}"
            );
            assert_eq!(r.body["request_id"], "req-v2");
            assert_eq!(g.model.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        }
        let mut e = v2(Some(r#"{"prompt": "x"}"#), false);
        e["headers"]["content-type"] = json!("image/png");
        let (r, _) = call(e).await;
        assert_eq!(r.status, 400);
    }

    #[tokio::test]
    async fn the_prompt_limit_is_the_declared_models() {
        let g = Generator::new(
            FakeModel::new(Duration::ZERO).with_rule(imagegen::PromptRule::STABILITY),
            FakeStore::default(),
            "11",
        );
        let ask = |n: usize| {
            parse(v2(
                Some(&format!(r#"{{"prompt": "{}"}}"#, "a".repeat(n))),
                false,
            ))
            .unwrap()
        };
        // Over Titan's 512 but within Stability's 10,000: generated.
        assert_eq!(handle(&ask(513), &g, "r1").await.status, 201);
        let r = handle(&ask(10_001), &g, "r2").await;
        assert_eq!(r.status, 400, "{r:?}");
        assert!(r.body["error"].as_str().unwrap().contains("10000"), "{r:?}");
        assert_eq!(g.model.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn wrong_method_is_405() {
        let (r, _) = call(v1("GET", None)).await;
        assert_eq!(r.status, 405);
    }

    #[tokio::test]
    async fn model_and_storage_failures_map_to_statuses_without_internals() {
        let (r, _) = call(v2(Some(r#"{"prompt": "FILTER this"}"#), false)).await;
        assert_eq!(r.status, 422);
        let (r, _) = call(v2(Some(r#"{"prompt": "THROTTLE this"}"#), false)).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.to_lambda()["headers"]["retry-after"], "10");
        let (r, _) = call(v2(Some(r#"{"prompt": "BROKEN this"}"#), false)).await;
        assert_eq!(r.status, 502);
        assert!(!r.body.to_string().contains("secret"), "{r:?}");
        assert_eq!(r.body["request_id"], "req-v2");

        let g = Generator::new(FakeModel::new(Duration::ZERO), FakeStore::failing(), "11");
        let req = parse(v2(Some(r#"{"prompt": "fine"}"#), false)).unwrap();
        let r = handle(&req, &g, "rid").await;
        assert_eq!(r.status, 502);
        assert!(
            !r.body.to_string().contains("secret") && !r.body.to_string().contains("AccessDenied"),
            "{r:?}"
        );
    }

    #[test]
    fn non_api_gateway_events_are_rejected() {
        assert!(parse(json!({"Records": []})).is_err());
    }
}
