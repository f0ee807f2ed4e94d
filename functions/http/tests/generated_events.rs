//! At least 10,000 generated events through the whole HTTP function as Lambda
//! runs it (`respond`: event parsing, routing (the synchronous route, `POST
//! /images`, `GET /images/{id}`, paths of no route), validation, generation
//! or queueing, reply): broken
//! JSON, wrong types, empty and huge prompts, control characters, base64 flags
//! that lie, both payload versions and neither, failing models and stores.
//! Never a 500 or a panic; every error answer is JSON with `error` and
//! `request_id`; nothing from an internal error message reaches the body.
//! Callers come with and without an authorizer in the request context (JWT
//! `sub`, IAM `userArn`, one naming nobody): a request submitted by a named
//! caller is answered to them only; anyone else gets exactly an unknown id's 404.

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

/// Who API Gateway's authorizer says is calling.
#[derive(Debug, Clone, PartialEq)]
enum Auth {
    /// No authorizer (`http.auth: none`).
    None,
    /// A JWT authorizer's token with `sub` `user-{n}` (n = 3: a `sub` that
    /// reads like `Iam(0)`'s ARN).
    Jwt(u8),
    /// `AWS_IAM`, caller `arn:...:user/user-{n}`.
    Iam(u8),
    /// An authorizer that names nobody (a token without `sub`).
    Unnamed,
}

impl Auth {
    fn arn(n: u8) -> String {
        format!("arn:aws:iam::123456789012:user/user-{n}")
    }
    fn sub(n: u8) -> String {
        if n == 3 {
            Auth::arn(0)
        } else {
            format!("user-{n}")
        }
    }
    /// The owner of what this caller submits, as the status object names it.
    fn owner(&self) -> Option<String> {
        match self {
            Auth::Jwt(n) => Some(format!("jwt:{}", Auth::sub(*n))),
            Auth::Iam(n) => Some(format!("iam:{}", Auth::arn(*n))),
            Auth::None | Auth::Unnamed => None,
        }
    }
    /// Payload 2.0's `requestContext.authorizer`.
    fn v2(&self) -> Option<Value> {
        match self {
            Auth::None => None,
            Auth::Jwt(n) => Some(
                json!({"jwt": {"claims": {"sub": Auth::sub(*n), "iss": "https://idp.example/"}, "scopes": null}}),
            ),
            Auth::Iam(n) => Some(json!({"iam": {
                "accessKey": "AKIA", "accountId": "123456789012", "callerId": "AIDA", "cognitoIdentity": null,
                "principalOrgId": null, "userArn": Auth::arn(*n), "userId": "AIDA"
            }})),
            Auth::Unnamed => Some(
                json!({"jwt": {"claims": {"iss": "https://idp.example/"}, "scopes": ["images"]}}),
            ),
        }
    }
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        3 => Just(Auth::None),
        3 => (0u8..4).prop_map(Auth::Jwt),
        2 => (0u8..3).prop_map(Auth::Iam),
        1 => Just(Auth::Unnamed),
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
    auth: Auth,
    /// A `GET` of a submitted id comes from whoever submitted it (the owner
    /// back for their picture) rather than from `auth`.
    as_submitter: bool,
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
        (auth(), any::<bool>()),
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
                (auth, as_submitter),
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
                auth,
                as_submitter,
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
    match (c.v2, &c.auth) {
        (Some(true), auth) => {
            if let Some(a) = auth.v2() {
                e["requestContext"]["authorizer"] = a;
            }
        }
        // Payload 1.0: `identity.userArn`, `authorizer.claims`.
        (Some(false), Auth::Jwt(n)) => {
            e["requestContext"]["authorizer"] = json!({"claims": {"sub": Auth::sub(*n)}});
        }
        (Some(false), Auth::Iam(n)) => {
            e["requestContext"]["identity"] = json!({"userArn": Auth::arn(*n)});
        }
        (Some(false), Auth::Unnamed) => {
            e["requestContext"]["authorizer"] = json!({"claims": {"iss": "https://idp.example/"}});
        }
        _ => {}
    }
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
    // Every id `POST /images` answered (healthy store, event as generated):
    // who submitted it.
    let submitted: std::cell::RefCell<BTreeMap<String, Auth>> = Default::default();
    // Ids submitted from a mangled event: whose they are is not checked.
    let mangled: std::cell::RefCell<std::collections::BTreeSet<String>> = Default::default();
    // How many GETs of a submitted id each ownership rule answered.
    let reads: std::cell::RefCell<BTreeMap<&'static str, u32>> = Default::default();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |mut c| {
        if let Some(id) = c.path.strip_prefix("/images/")
            && c.as_submitter
            && c.method == "GET"
            && let Some(by) = submitted.borrow().get(id)
        {
            c.auth = by.clone();
        }
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
            matches!(
                status,
                200 | 201 | 202 | 400 | 403 | 404 | 405 | 422 | 429 | 502
            ),
            "status {status} for {c:?}: {answer}"
        );
        let text = answer["body"].as_str().unwrap_or_default();
        // The page (`GET /`) is the one answer that is not JSON.
        if answer["headers"]["content-type"] == "text/html; charset=utf-8" {
            // Only `GET /` (or an event with no path) is the page.
            prop_assert!(
                c.method == "GET" && c.path.trim_end_matches('/').is_empty(),
                "the page for {:?}",
                c
            );
            prop_assert_eq!(status, 200);
            prop_assert!(text.starts_with("<!doctype html>"), "{}", text);
            *statuses.borrow_mut().entry(status).or_default() += 1;
            return Ok(());
        }
        prop_assert_eq!(&answer["headers"]["content-type"], "application/json");
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
            prop_assert!(
                c.auth != Auth::Unnamed,
                "an unnamed caller submitted: {c:?}"
            );
            if c.mangle.is_some() {
                mangled.borrow_mut().insert(id.to_owned());
            } else {
                submitted.borrow_mut().insert(id.to_owned(), c.auth.clone());
            }
        } else if status == 200 {
            prop_assert!(
                matches!(
                    body["status"].as_str(),
                    Some("queued" | "generating" | "done" | "failed")
                ),
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
        // Ownership: a GET of a submitted id, as generated (healthy store;
        // not an event that fails to parse, e.g. a body that lies about
        // being base64: that 400 says nothing about any id).
        let id = c.path.trim_end_matches('/').strip_prefix("/images/");
        if let Some(id) = id.filter(|_| {
            c.method == "GET"
                && c.v2.is_some()
                && c.mangle.is_none()
                && !c.failing_store
                && status != 400
        }) && imagegen::status::is_request_id(id)
            && !mangled.borrow().contains(id)
        {
            let unknown = (404, "no image request has this id");
            let got = (status, body["error"].as_str().unwrap_or_default());
            match submitted.borrow().get(id).map(Auth::owner) {
                None => prop_assert_eq!(got, unknown, "never submitted: {:?}", c),
                Some(None) => {
                    prop_assert_eq!(status, 200, "nobody's: {:?} {}", c, body);
                    *reads.borrow_mut().entry("nobody's, read").or_default() += 1;
                }
                Some(Some(owner)) if c.auth.owner().as_ref() == Some(&owner) => {
                    prop_assert_eq!(status, 200, "the owner's: {:?} {}", c, body);
                    *reads.borrow_mut().entry("owner's, by them").or_default() += 1;
                }
                Some(Some(owner)) => {
                    prop_assert_eq!(got, unknown, "{}'s, asked by {:?}", owner, c);
                    prop_assert!(!text.contains(id), "{text}");
                    *reads
                        .borrow_mut()
                        .entry("owner's, by another: 404")
                        .or_default() += 1;
                }
            }
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
    let reads = reads.into_inner();
    println!(
        "{CASES} generated events, answers by status: {statuses:?}; reads of submitted ids: {reads:?}"
    );
    assert_eq!(statuses.values().sum::<u32>(), CASES);
    // Not vacuous: every ownership rule was exercised.
    for rule in [
        "nobody's, read",
        "owner's, by them",
        "owner's, by another: 404",
    ] {
        assert!(
            reads.get(rule).copied().unwrap_or(0) > 0,
            "{rule}: {reads:?}"
        );
    }
    // Not a vacuous generator: every kind of answer was reached.
    for status in [200, 201, 202, 400, 403, 404, 405, 422, 429, 502] {
        assert!(
            statuses.get(&status).copied().unwrap_or(0) > 0,
            "no {status} in {statuses:?}"
        );
    }
}
