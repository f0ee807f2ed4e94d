//! The HTTP API, played locally: what API Gateway does in front of the HTTP
//! function. Its routes as declared (`POST /image_generator`, `POST
//! /images`, `GET /images/{id}`: a `{param}` segment matches one segment), the request
//! turned into a payload-2.0 event, the function invoked, and its answer
//! turned back into HTTP by API Gateway's rules: `statusCode`/`headers`/
//! `cookies`/`body`/`isBase64Encoded`, or any other JSON as a 200
//! `application/json` body. Unmatched routes answer 404 `{"message":"Not
//! Found"}`, a failed invocation 500 `{"message":"Internal Server Error"}`,
//! one that outlives the integration timeout 503, bodies over 10 MB 413, as
//! API Gateway does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::{HeaderMap, Method, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use super::trigger::Invoke;

/// API Gateway's payload limit.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// HTTP APIs cut integrations off at 30 s.
pub const MAX_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn message(status: u16, message: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({ "message": message }).to_string().into_bytes(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP API whose routes all go to one function.
pub struct ApiGateway {
    /// (method, path pattern) of each route.
    routes: Vec<(Method, String)>,
    function: Arc<dyn Invoke>,
    timeout: Duration,
    requests: AtomicU64,
}

/// The headers as payload 2.0 has them: one value each (repeats joined by
/// commas), cookies apart, and API Gateway's `x-forwarded-*`.
fn flat_headers(headers: &HeaderMap, peer: SocketAddr) -> Map<String, Value> {
    let mut flat: Map<String, Value> = Map::new();
    for name in headers.keys() {
        if name == http::header::COOKIE {
            continue;
        }
        let joined: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        flat.insert(name.as_str().to_owned(), Value::from(joined.join(",")));
    }
    flat.insert("x-forwarded-for".into(), Value::from(peer.ip().to_string()));
    flat.insert(
        "x-forwarded-port".into(),
        Value::from(peer.port().to_string()),
    );
    flat.insert("x-forwarded-proto".into(), Value::from("http"));
    flat
}

/// The request's cookies, each on its own (payload 2.0's `cookies`).
fn cookies(headers: &HeaderMap) -> Vec<Value> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(|c| Value::from(c.trim()))
        .filter(|c| c.as_str().is_some_and(|s| !s.is_empty()))
        .collect()
}

/// The query string decoded, repeated keys joined by commas (payload 2.0's
/// `queryStringParameters`).
fn query_parameters(query: &str) -> Map<String, Value> {
    let mut params: Map<String, Value> = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let (k, v) = (decode(k), decode(v));
        match params.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                params.insert(k, Value::from(v));
            }
        }
    }
    params
}

impl ApiGateway {
    /// Routes as API Gateway writes their keys' parts: (`POST`, `/images/{id}`).
    pub fn new(routes: &[(Method, &str)], function: Arc<dyn Invoke>, timeout: Duration) -> Self {
        ApiGateway {
            routes: routes
                .iter()
                .map(|(m, p)| (m.clone(), (*p).to_owned()))
                .collect(),
            function,
            timeout: timeout.min(MAX_INTEGRATION_TIMEOUT),
            requests: AtomicU64::new(0),
        }
    }

    /// The key of the route that `method` `path` matches (`GET /images/{id}`).
    pub fn route_key(&self, method: &Method, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .find(|(m, pattern)| {
                let want: Vec<&str> = pattern.split('/').collect();
                m == method
                    && want.len() == segments.len()
                    && want.iter().zip(&segments).all(|(w, s)| {
                        (w.starts_with('{') && w.ends_with('}') && !s.is_empty()) || w == s
                    })
            })
            .map(|(m, p)| format!("{m} {p}"))
    }

    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("local-{nanos:x}-{n}")
    }

    /// The payload-2.0 event API Gateway sends for this request.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &self,
        route_key: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        request_id: &str,
        peer: SocketAddr,
    ) -> Value {
        let flat = flat_headers(headers, peer);
        let cookies = cookies(headers);
        let query = uri.query().unwrap_or_default();
        let params = query_parameters(query);
        let text = is_text(headers);
        let (body, base64) = match std::str::from_utf8(body) {
            _ if body.is_empty() => (Value::Null, false),
            Ok(s) if text => (Value::from(s), false),
            _ => (Value::from(B64.encode(body)), true),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_owned();
        let user_agent = headers
            .get(http::header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": uri.path(),
            "rawQueryString": query,
            "headers": flat,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": host,
                "domainPrefix": "local",
                "http": {
                    "method": method.as_str(),
                    "path": uri.path(),
                    "protocol": "HTTP/1.1",
                    "sourceIp": peer.ip().to_string(),
                    "userAgent": user_agent,
                },
                "requestId": request_id,
                "routeKey": route_key,
                "stage": "$default",
                "time": now.as_secs().to_string(),
                "timeEpoch": u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
            },
            "isBase64Encoded": base64,
        });
        if !cookies.is_empty() {
            event["cookies"] = Value::from(cookies);
        }
        if !params.is_empty() {
            event["queryStringParameters"] = Value::from(params);
        }
        if !body.is_null() {
            event["body"] = body;
        }
        event
    }

    /// Routes, invokes and translates one request.
    pub async fn handle(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        peer: SocketAddr,
    ) -> Reply {
        let request_id = self.request_id();
        let route = self.route_key(method, uri.path());
        let mut reply = if let Some(route) = route.filter(|_| body.len() <= MAX_BODY) {
            let event = self.event(&route, method, uri, headers, body, &request_id, peer);
            match tokio::time::timeout(self.timeout, self.function.invoke(event)).await {
                Err(_) => Reply::message(503, "Service Unavailable"),
                Ok(Err(e)) => {
                    tracing::warn!(request_id, error = %e, "the function failed");
                    Reply::message(500, "Internal Server Error")
                }
                Ok(Ok(answer)) => reply_of(answer),
            }
        } else if self.route_key(method, uri.path()).is_some() {
            Reply::message(413, "Request Entity Too Large")
        } else {
            Reply::message(404, "Not Found")
        };
        reply.headers.push(("apigw-requestid".into(), request_id));
        reply
    }

    /// Serves HTTP/1.1 on `listener` until the task is dropped; logs one line per request.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let api = Arc::clone(&self);
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let api = Arc::clone(&api);
                    async move { Ok::<_, Infallible>(api.respond(req, peer).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "connection ended");
                }
            });
        }
    }

    async fn respond(
        &self,
        req: hyper::Request<Incoming>,
        peer: SocketAddr,
    ) -> hyper::Response<Full<Bytes>> {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let reply = match Limited::new(body, MAX_BODY + 1).collect().await {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                self.handle(&parts.method, &parts.uri, &parts.headers, &bytes, peer)
                    .await
            }
            Err(_) => Reply::message(413, "Request Entity Too Large"),
        };
        println!(
            "http: {} {} -> {} in {:.1} s",
            parts.method,
            parts.uri.path(),
            reply.status,
            started.elapsed().as_secs_f64()
        );
        let mut response = hyper::Response::builder().status(reply.status);
        for (k, v) in &reply.headers {
            response = response.header(k, v);
        }
        response
            .body(Full::new(Bytes::from(reply.body)))
            .unwrap_or_else(|_| {
                // A header the function set is not valid HTTP: API Gateway answers 500.
                let r = Reply::message(500, "Internal Server Error");
                let mut out = hyper::Response::new(Full::new(Bytes::from(r.body)));
                *out.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                out
            })
    }
}

/// Whether API Gateway passes the body as text (else base64).
fn is_text(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("text/")
        || ["json", "xml", "javascript", "x-www-form-urlencoded"]
            .iter()
            .any(|t| ct.contains(t))
}

/// API Gateway's reading of a payload-2.0 function answer.
pub fn reply_of(answer: Value) -> Reply {
    let Some(status) = answer.get("statusCode") else {
        return Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: answer.to_string().into_bytes(),
        };
    };
    let Some(status) = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..=599).contains(s))
    else {
        return Reply::message(500, "Internal Server Error");
    };
    let mut headers: Vec<(String, String)> = answer["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            (k.to_ascii_lowercase(), v)
        })
        .collect();
    for cookie in answer["cookies"].as_array().into_iter().flatten() {
        if let Some(c) = cookie.as_str() {
            headers.push(("set-cookie".into(), c.to_owned()));
        }
    }
    let text = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        match B64.decode(text) {
            Ok(b) => b,
            Err(_) => return Reply::message(500, "Internal Server Error"),
        }
    } else {
        text.as_bytes().to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::Mutex;

    /// Records the event and answers what it was told to.
    struct Function {
        answer: Result<Value, String>,
        delay: Duration,
        seen: Mutex<Vec<Value>>,
    }

    #[async_trait]
    impl Invoke for Function {
        async fn invoke(&self, event: Value) -> Result<Value, String> {
            self.seen.lock().unwrap().push(event);
            tokio::time::sleep(self.delay).await;
            self.answer.clone()
        }
    }

    fn api(answer: Result<Value, String>, delay: Duration) -> (ApiGateway, Arc<Function>) {
        let f = Arc::new(Function {
            answer,
            delay,
            seen: Mutex::new(Vec::new()),
        });
        let api = ApiGateway::new(
            &[
                (Method::POST, "/image_generator"),
                (Method::GET, "/images/{id}"),
            ],
            f.clone(),
            Duration::from_secs(1),
        );
        (api, f)
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:50000".parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn a_request_becomes_a_payload_2_event_that_the_functions_parser_reads() {
        let (api, f) = api(
            Ok(
                json!({"statusCode": 201, "headers": {"Content-Type": "application/json"}, "body": "{\"ok\":1}", "isBase64Encoded": false}),
            ),
            Duration::ZERO,
        );
        let uri: Uri = "/image_generator?a=1&b=x%20y&a=2".parse().unwrap();
        let h = headers(&[
            ("content-type", "application/json"),
            ("cookie", "k=v; z=w"),
            ("x-multi", "1"),
            ("x-multi", "2"),
        ]);
        let reply = api
            .handle(&Method::POST, &uri, &h, br#"{"prompt":"a cat"}"#, peer())
            .await;
        assert_eq!(reply.status, 201);
        assert_eq!(reply.body, br#"{"ok":1}"#);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(reply.header("apigw-requestid").is_some());
        let event = f.seen.lock().unwrap()[0].clone();
        assert_eq!(event["routeKey"], "POST /image_generator");
        assert_eq!(event["body"], r#"{"prompt":"a cat"}"#);
        assert_eq!(event["isBase64Encoded"], false);
        assert_eq!(event["headers"]["x-multi"], "1,2");
        assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["k=v", "z=w"]));
        assert_eq!(
            event["queryStringParameters"],
            json!({"a": "1,2", "b": "x y"})
        );
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
        assert_eq!(
            event["requestContext"]["requestId"].as_str(),
            reply.header("apigw-requestid")
        );
        // The HTTP function's own event type reads it.
        let parsed: aws_lambda_events::event::apigw::ApiGatewayV2httpRequest =
            serde_json::from_value(event).unwrap();
        assert_eq!(parsed.raw_path.as_deref(), Some("/image_generator"));
    }

    #[tokio::test]
    async fn binary_bodies_are_base64_and_base64_answers_are_decoded() {
        let (api, f) = api(
            Ok(
                json!({"statusCode": 200, "body": B64.encode([0u8, 159, 146, 150]), "isBase64Encoded": true, "cookies": ["s=1"]}),
            ),
            Duration::ZERO,
        );
        let h = headers(&[("content-type", "application/octet-stream")]);
        let reply = api
            .handle(
                &Method::POST,
                &"/image_generator".parse().unwrap(),
                &h,
                &[0xff, 0x00],
                peer(),
            )
            .await;
        assert_eq!(reply.body, vec![0u8, 159, 146, 150]);
        assert_eq!(reply.header("set-cookie"), Some("s=1"));
        let event = f.seen.lock().unwrap()[0].clone();
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], B64.encode([0xffu8, 0x00]));
    }

    #[tokio::test]
    async fn api_gateways_own_answers() {
        let ok = Ok(json!({"statusCode": 201, "body": ""}));
        let (a, f) = api(ok.clone(), Duration::ZERO);
        let post = Method::POST;
        let h = HeaderMap::new();
        // Unmatched path or method: 404, the function is not called.
        for (m, p) in [
            (&Method::GET, "/image_generator"),
            (&post, "/image_generator/"),
            (&post, "/other"),
        ] {
            let r = a.handle(m, &p.parse().unwrap(), &h, b"", peer()).await;
            assert_eq!(r.status, 404, "{m} {p}");
            assert_eq!(r.body, br#"{"message":"Not Found"}"#);
        }
        assert!(f.seen.lock().unwrap().is_empty());
        let uri: Uri = "/image_generator".parse().unwrap();
        let r = a
            .handle(&post, &uri, &h, &vec![b'a'; MAX_BODY + 1], peer())
            .await;
        assert_eq!(r.status, 413);
        // A failed invocation: 500 with API Gateway's message, nothing of the error.
        let (a, _) = api(Err("secret internals".into()), Duration::ZERO);
        let r = a.handle(&post, &uri, &h, b"{}", peer()).await;
        assert_eq!(r.status, 500);
        assert_eq!(r.body, br#"{"message":"Internal Server Error"}"#);
        // Slower than the integration timeout: 503.
        let (a, _) = api(ok, Duration::from_secs(5));
        let r = a.handle(&post, &uri, &h, b"{}", peer()).await;
        assert_eq!(r.status, 503);
    }

    #[test]
    fn answers_without_status_code_are_200_json_and_bad_ones_500() {
        let r = reply_of(json!({"hello": "world"}));
        assert_eq!((r.status, r.body), (200, br#"{"hello":"world"}"#.to_vec()));
        assert_eq!(reply_of(json!({"statusCode": 1000})).status, 500);
        assert_eq!(
            reply_of(json!({"statusCode": 200, "body": "%%%", "isBase64Encoded": true})).status,
            500
        );
        let r = reply_of(json!({"statusCode": 429, "headers": {"Retry-After": 5}, "body": "{}"}));
        assert_eq!(r.header("retry-after"), Some("5"));
    }
}
