//! Faults injected between a client and the emulator, reproducibly from a
//! seed: added latency, HTTP 500 and 503, throttling errors in each service's
//! own wire format, and dropped connections. 500s, 503s and drops happen
//! either before the request reaches the emulator or after it was carried
//! out (the answer is lost: the case that makes a retried create a
//! duplicate). Throttled requests never reach it, as on AWS.
//!
//! Whether a request is faulted depends on the seed, the request itself
//! (service, method, path, body) and how many times the same request was seen
//! before, so a run's faults do not depend on how concurrent requests
//! interleave.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::{self, DROP_CONNECTION, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Latency(Duration),
    ServerError(u16),
    Throttle,
    Drop,
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub service: String,
    pub action: String,
    pub fault: Fault,
    /// The emulator carried the request out, and the answer was lost.
    pub after_upstream: bool,
}

/// How many times in a row a request in an outage fails: more than the SDK's
/// attempts (the provisioner's clients make at most 5).
pub const OUTAGE_ATTEMPTS: u64 = 8;

pub struct Faults {
    seed: u64,
    /// Text replaced before hashing (a test's unique stack name), so the same
    /// seed faults the same requests in every run.
    ignore: Vec<String>,
    /// Share of requests faulted, in 1/10,000.
    per_10k: u64,
    /// Share of requests (by identity, not occurrence) that fail with a 500
    /// on each of their first [`OUTAGE_ATTEMPTS`] occurrences: more than any
    /// client's retries hide, so a run fails; the next run's repeat passes.
    outage_per_10k: u64,
    seen: Mutex<HashMap<u64, u64>>,
    injected: Mutex<Vec<Injected>>,
    requests: std::sync::atomic::AtomicU64,
}

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// splitmix64: spreads one hash into independent-looking draws.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The service of a SigV4-signed request (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`).
pub fn service_of(req: &Request) -> String {
    req.header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_owned()
}

/// The operation: `X-Amz-Target` (JSON protocols), `Action=` (query
/// protocols), else method and path (REST protocols).
pub fn action_of(req: &Request) -> String {
    if let Some(t) = req.header("x-amz-target") {
        return t.rsplit('.').next().unwrap_or(t).to_owned();
    }
    let body = String::from_utf8_lossy(&req.body);
    if let Some(a) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return a.to_owned();
    }
    let path = req.path.split('?').next().unwrap_or_default();
    format!("{} {path}", req.method)
}

impl Faults {
    /// `rate`: share of requests faulted (0.2 = 20%).
    pub fn new(seed: u64, rate: f64) -> Arc<Faults> {
        Faults::ignoring(seed, rate, &[])
    }

    /// Like [`Faults::new`], with `ignore` (e.g. a unique stack name) left
    /// out of the request identity.
    pub fn ignoring(seed: u64, rate: f64, ignore: &[&str]) -> Arc<Faults> {
        Faults::with_outages(seed, rate, 0.0, ignore)
    }

    /// Like [`Faults::ignoring`], and a share `outages` of requests fails on
    /// each of its first [`OUTAGE_ATTEMPTS`] occurrences (a 500 before the
    /// emulator): the failures no retry hides.
    pub fn with_outages(seed: u64, rate: f64, outages: f64, ignore: &[&str]) -> Arc<Faults> {
        Arc::new(Faults {
            seed,
            ignore: ignore.iter().map(|s| (*s).to_owned()).collect(),
            per_10k: (rate.clamp(0.0, 1.0) * 10_000.0) as u64,
            outage_per_10k: (outages.clamp(0.0, 1.0) * 10_000.0) as u64,
            seen: Mutex::default(),
            injected: Mutex::default(),
            requests: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The fault for this request, if any (and whether after the upstream).
    pub fn decide(&self, req: &Request) -> Option<(Fault, bool)> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let service = service_of(req);
        let mut h = fnv(0xcbf2_9ce4_8422_2325, &self.seed.to_le_bytes());
        h = fnv(h, service.as_bytes());
        h = fnv(h, req.method.as_bytes());
        let mut path = req.path.clone();
        let mut body = String::from_utf8_lossy(&req.body).into_owned();
        for text in &self.ignore {
            path = path.replace(text.as_str(), "");
            body = body.replace(text.as_str(), "");
        }
        h = fnv(h, path.as_bytes());
        // The body carries no signature: the same on a retry.
        h = fnv(h, body.as_bytes());
        let occurrence = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let n = seen.entry(h).or_insert(0);
            *n += 1;
            *n
        };
        if mix(h ^ 0x07a6e) % 10_000 < self.outage_per_10k && occurrence <= OUTAGE_ATTEMPTS {
            return Some((Fault::ServerError(500), false));
        }
        let draw = mix(h ^ mix(occurrence));
        if draw % 10_000 >= self.per_10k {
            return None;
        }
        let kind = mix(draw) % 5;
        let after = mix(draw ^ 1) % 2 == 1;
        let fault = match kind {
            0 => Fault::Latency(Duration::from_millis(50 + mix(draw ^ 2) % 250)),
            1 => Fault::ServerError(500),
            2 => Fault::ServerError(503),
            3 => Fault::Throttle,
            _ => Fault::Drop,
        };
        let after = after && matches!(fault, Fault::ServerError(_) | Fault::Drop);
        Some((fault, after))
    }

    /// Every fault injected so far.
    pub fn injected(&self) -> Vec<Injected> {
        self.injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn record(&self, req: &Request, fault: Fault, after_upstream: bool) {
        self.injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Injected {
                service: service_of(req),
                action: action_of(req),
                fault,
                after_upstream,
            });
    }
}

/// The error answer `service` gives when it throttles, in its own protocol.
pub fn throttling(service: &str) -> Response {
    match service {
        // AWS JSON 1.0 / 1.1
        "sqs" | "logs" => Response::json(
            400,
            &serde_json::json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
        )
        .with_header("x-amzn-query-error", "ThrottlingException;Sender"),
        // REST-JSON
        "lambda" | "apigateway" => Response::json(
            429,
            &serde_json::json!({"message": "Rate exceeded", "Type": "User"}),
        )
        .with_header("x-amzn-ErrorType", "TooManyRequestsException"),
        // REST-XML
        "s3" => xml(
            503,
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        ),
        // query (SNS, IAM, CloudWatch, STS)
        _ => xml(
            400,
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault-injected</RequestId></ErrorResponse>",
        ),
    }
}

/// A 500 or 503 in `service`'s protocol.
pub fn server_error(service: &str, status: u16) -> Response {
    let code = if status == 503 {
        "ServiceUnavailable"
    } else {
        "InternalFailure"
    };
    match service {
        "sqs" | "logs" => Response::json(
            status,
            &serde_json::json!({"__type": code, "message": "injected"}),
        ),
        "lambda" | "apigateway" => {
            Response::json(status, &serde_json::json!({"message": "injected"}))
                .with_header("x-amzn-ErrorType", code)
        }
        "s3" => xml(
            status,
            &format!("<Error><Code>{code}</Code><Message>injected</Message></Error>"),
        ),
        _ => xml(
            status,
            &format!(
                "<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>injected</Message></Error><RequestId>fault-injected</RequestId></ErrorResponse>"
            ),
        ),
    }
}

fn xml(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// Starts a proxy to `upstream` that injects `faults`; returns its endpoint.
pub async fn start(upstream: &str, faults: Arc<Faults>) -> String {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let addr = http::serve(Arc::new(move |req: Request| {
        let upstream = upstream.clone();
        let faults = Arc::clone(&faults);
        Box::pin(async move {
            let decided = faults.decide(&req);
            if let Some((fault, after)) = decided {
                faults.record(&req, fault, after);
            }
            let service = service_of(&req);
            let failed = |fault: Fault| match fault {
                Fault::Throttle => throttling(&service),
                Fault::ServerError(s) => server_error(&service, s),
                Fault::Drop => Response {
                    status: DROP_CONNECTION,
                    headers: vec![],
                    body: vec![],
                },
                Fault::Latency(_) => unreachable!("latency is not an answer"),
            };
            match decided {
                Some((Fault::Latency(d), _)) => tokio::time::sleep(d).await,
                Some((fault, false)) => return failed(fault),
                _ => {}
            }
            let answer = match crate::proxy::forward(&upstream, req).await {
                Ok(r) => r,
                Err(e) => Response {
                    status: 502,
                    headers: vec![],
                    body: format!("proxy: {e}").into_bytes(),
                },
            };
            match decided {
                Some((fault, true)) => failed(fault),
                _ => answer,
            }
        })
    }))
    .await;
    format!("http://{addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/".into(),
            headers: vec![(
                "authorization".into(),
                "AWS4-HMAC-SHA256 Credential=testing/20261127/eu-west-1/sqs/aws4_request, SignedHeaders=host".into(),
            )],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn decisions_depend_on_the_seed_and_the_request_not_on_order() {
        let bodies: Vec<String> = (0..2000).map(|i| format!("Action=X&n={i}")).collect();
        let a = Faults::new(7, 0.2);
        let b = Faults::new(7, 0.2);
        let forward: Vec<_> = bodies.iter().map(|x| a.decide(&req(x))).collect();
        let mut backward: Vec<_> = bodies.iter().rev().map(|x| b.decide(&req(x))).collect();
        backward.reverse();
        assert_eq!(forward, backward);
        let faulted = forward.iter().filter(|d| d.is_some()).count();
        assert!((300..500).contains(&faulted), "{faulted} of 2000 at 20%");
        let c = Faults::new(8, 0.2);
        let other: Vec<_> = bodies.iter().map(|x| c.decide(&req(x))).collect();
        assert_ne!(forward, other);
        // Every kind of fault, before and after the upstream.
        for kind in [
            Fault::ServerError(500),
            Fault::ServerError(503),
            Fault::Throttle,
            Fault::Drop,
        ] {
            assert!(
                forward.iter().flatten().any(|(f, _)| *f == kind),
                "{kind:?}"
            );
        }
        assert!(forward.iter().flatten().any(|(_, after)| *after));
        assert_eq!(service_of(&req("")), "sqs");
        assert_eq!(
            action_of(&req("Action=CreateQueue&QueueName=q")),
            "CreateQueue"
        );
    }
}
