//! At least 10,000 generated events through the whole HTTP function as Lambda
//! runs it (`respond`: event parsing, routing (the synchronous route, `POST
//! /images`, `GET /images/{id}`, paths of no route), validation, generation
//! or queueing, reply): broken
//! JSON, wrong types, empty and huge prompts, control characters, base64 flags
//! that lie, both payload versions and neither, failing models and stores.
//! Never a 500 or a panic; every error answer is JSON with `error` and
//! `request_id`; nothing from an internal error message reaches the body.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use imagegen::Generator;
use imagegen::fakes::{FakeModel, FakeQueue, FakeStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

const CASES: u32 = 10_000;

/// Text that internal errors carry (the fakes' details, serde's and the
/// parser's wording); none of it may reach a caller.
const INTERNAL: &[&str] = &[
    "secret internal detail",
    "secret bucket policy detail",
    "InternalServerException",
    "AccessDenied",
    "not an API Gateway event:",
    "invalid type",
    "missing field",
    "expected value",
    "panicked",
];

/// Characters that make prompts interesting: control characters, newlines,
/// quotes, non-ASCII, and the fake model's markers.
fn prompt_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-z ]{1,12}".prop_map(|s| s),
        1 => Just("FILTER".to_owned()),
        1 => Just("THROTTLE".to_owned()),
        1 => Just("BROKEN".to_owned()),
        1 => prop::char::range('\u{0}', '\u{1f}').prop_map(|c| c.to_string()),
        1 => Just("\n".to_owned()),
        1 => Just("\"\\".to_owned()),
        1 => Just("café 東京 🛋️".to_owned()),
        1 => Just("\u{7f}\u{200b}".to_owned()),
    ];
    prop_oneof![
        8 => prop::collection::vec(piece, 0..8).prop_map(|v| v.concat()),
        1 => Just(String::new()),
        1 => (500usize..20_000).prop_map(|n| "x".repeat(n)),
    ]
}

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The request body, as bytes.
fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        6 => prompt_text().prop_map(|p| Some(json!({"prompt": p}).to_string().into_bytes())),
        1 => (prompt_text(), any_json()).prop_map(|(p, extra)| Some(json!({"prompt": p, "extra": extra}).to_string().into_bytes())),
        1 => any_json().prop_map(|p| Some(json!({"prompt": p}).to_string().into_bytes())),
        1 => any_json().prop_map(|v| Some(v.to_string().into_bytes())),
        1 => ".{0,40}".prop_map(|s| Some(s.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        1 => Just(None),
        1 => Just(Some(Vec::new())),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    v2: Option<bool>,
    method: String,
    path: String,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
    /// Whether the body is sent base64-encoded, and whether the flag says so.
    encoded: bool,
    flag: bool,
    request_id: Option<String>,
    /// Replace one field by a value of a wrong type.
    mangle: Option<(usize, Value)>,
    failing_store: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
        prop_oneof![4 => Just(Some(true)), 3 => Just(Some(false)), 1 => Just(None)],
        prop_oneof![8 => Just("POST".to_owned()), 1 => Just("GET".to_owned()), 1 => "[A-Z]{1,7}"],
        prop_oneof![
            6 => Just("/image_generator".to_owned()),
            3 => Just("/images".to_owned()),
            // Ids the fake queue hands out (some submitted by earlier cases), and not ids.
            2 => (0u32..40).prop_map(|n| format!("/images/6a96454d-ef25-4788-a79c-{n:012x}")),
            1 => ".{0,40}".prop_map(|s| format!("/images/{s}")),
            1 => "/[a-z/]{0,12}",
        ],
        ),
        prop_oneof![
            6 => Just(Some("application/json".to_owned())),
            1 => Just(Some("text/plain; charset=utf-8".to_owned())),
            1 => Just(Some("APPLICATION/JSON".to_owned())),
            1 => Just(None),
            1 => "[a-z/+.-]{0,24}".prop_map(Some),
        ],
        body(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![6 => "[a-zA-Z0-9-]{1,36}".prop_map(Some), 1 => Just(None), 1 => Just(Some(String::new()))],
        prop_oneof![8 => Just(None), 1 => (0usize..8, any_json()).prop_map(Some)],
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(
                (v2, method, path),
                content_type,
                body,
                encoded,
                lie,
                request_id,
                mangle,
                failing_store,
            )| Case {
                v2,
                method,
                path,
                content_type,
                body,
                encoded,
                flag: if lie { !encoded } else { encoded },
                request_id,
                mangle,
                failing_store,
            },
        )
}

fn event(c: &Case) -> Value {
    let body = c.body.as_ref().map(|b| {
        if c.encoded {
            B64.encode(b)
        } else {
            String::from_utf8_lossy(b).into_owned()
        }
    });
    let mut headers = serde_json::Map::new();
    if let Some(ct) = &c.content_type {
        headers.insert("content-type".into(), Value::from(ct.as_str()));
    }
    let mut e = match c.v2 {
        Some(true) => json!({
            "version": "2.0",
            "routeKey": format!("{} {}", c.method, c.path),
            "rawPath": c.path,
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x",
                "http": {"method": c.method, "path": c.path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
                "requestId": c.request_id, "routeKey": format!("{} {}", c.method, c.path), "stage": "$default", "time": "x", "timeEpoch": 0
            },
            "body": body,
            "isBase64Encoded": c.flag,
        }),
        Some(false) => json!({
            "resource": c.path,
            "path": c.path,
            "httpMethod": c.method,
            "headers": headers,
            "multiValueHeaders": {},
            "requestContext": {"requestId": c.request_id, "stage": "prod", "httpMethod": c.method, "resourcePath": c.path},
            "body": body,
            "isBase64Encoded": c.flag,
        }),
        None => json!({"Records": [{"body": body}]}),
    };
    if let Some((i, v)) = &c.mangle {
        let fields = [
            "headers",
            "body",
            "isBase64Encoded",
            "requestContext",
            "version",
            "httpMethod",
            "rawPath",
            "path",
        ];
        e[fields[*i % fields.len()]] = v.clone();
    }
    e
}

#[test]
fn ten_thousand_generated_events_never_500_never_leak() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let healthy = Generator::new(FakeModel::new(Duration::ZERO), FakeStore::default(), "11");
    let broken_store = Generator::new(FakeModel::new(Duration::ZERO), FakeStore::failing(), "11");
    let queue = FakeQueue::default();
    let broken_queue = FakeQueue {
        failing: true,
        ..FakeQueue::default()
    };
    let statuses: std::cell::RefCell<BTreeMap<u64, u32>> = Default::default();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |c| {
        let generator = if c.failing_store {
            &broken_store
        } else {
            &healthy
        };
        let queue = if c.failing_store {
            &broken_queue
        } else {
            &queue
        };
        let answer = rt.block_on(image_http::respond(
            event(&c),
            generator,
            Some(queue),
            "lambda-request-id",
        ));
        let status = answer["statusCode"].as_u64().unwrap_or(0);
        prop_assert!(
            matches!(status, 200 | 201 | 202 | 400 | 404 | 405 | 422 | 429 | 502),
            "status {status} for {c:?}: {answer}"
        );
        prop_assert_eq!(&answer["headers"]["content-type"], "application/json");
        let text = answer["body"].as_str().unwrap_or_default();
        let body: Value = serde_json::from_str(text)
            .map_err(|e| TestCaseError::fail(format!("body is not JSON ({e}): {text}")))?;
        if status == 201 {
            prop_assert!(body["s3_uri"].is_string(), "{body}");
        } else if status == 202 {
            let id = body["id"].as_str().unwrap_or_default();
            prop_assert!(body["status"] == "queued", "{body}");
            prop_assert_eq!(
                &answer["headers"]["location"],
                &json!(format!("/images/{id}"))
            );
        } else if status == 200 {
            prop_assert!(
                matches!(body["status"].as_str(), Some("queued" | "done" | "failed")),
                "{body}"
            );
        } else {
            prop_assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
            prop_assert!(
                body["request_id"].as_str().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
        }
        for secret in INTERNAL {
            prop_assert!(
                !text.contains(secret),
                "{secret:?} leaked for {c:?}: {text}"
            );
        }
        *statuses.borrow_mut().entry(status).or_default() += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let statuses = statuses.into_inner();
    println!("{CASES} generated events, answers by status: {statuses:?}");
    assert_eq!(statuses.values().sum::<u32>(), CASES);
    // Not a vacuous generator: every kind of answer was reached.
    for status in [200, 201, 202, 400, 404, 405, 422, 429, 502] {
        assert!(
            statuses.get(&status).copied().unwrap_or(0) > 0,
            "no {status} in {statuses:?}"
        );
    }
}
