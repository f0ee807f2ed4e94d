//! A proxy in front of the emulator that adds a fixed delay to every request,
//! standing in for the network distance to a real AWS region (moto on
//! loopback answers in about a millisecond, which hides whether calls overlap),
//! and can rewrite answers where moto differs from AWS (see [`start_rewriting`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{self, Request, Response};

/// Changes an upstream answer: `(request, response) -> response`.
pub type Rewrite = Arc<dyn Fn(&Request, Response) -> Response + Send + Sync>;

/// Answers a request instead of the upstream (`Some`), or lets it through.
pub type Intercept = Arc<dyn Fn(&Request) -> Option<Response> + Send + Sync>;

/// Starts the proxy to `upstream` (`http://127.0.0.1:PORT`); returns its endpoint.
pub async fn start(upstream: &str, delay: Duration) -> String {
    start_rewriting(upstream, delay, Arc::new(|_, r| r)).await
}

/// Like [`start`], passing every answer through `rewrite`.
pub async fn start_rewriting(upstream: &str, delay: Duration, rewrite: Rewrite) -> String {
    start_with(upstream, delay, Arc::new(|_| None), rewrite).await
}

/// Like [`start_rewriting`], and `intercept` may answer a request itself
/// (then the upstream never sees it).
pub async fn start_with(
    upstream: &str,
    delay: Duration,
    intercept: Intercept,
    rewrite: Rewrite,
) -> String {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let addr = http::serve(Arc::new(move |req: Request| {
        let upstream = upstream.clone();
        let rewrite = Arc::clone(&rewrite);
        let intercept = Arc::clone(&intercept);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            if let Some(answer) = intercept(&req) {
                return answer;
            }
            match forward(&upstream, req.clone()).await {
                Ok(resp) => rewrite(&req, resp),
                Err(e) => Response {
                    status: 502,
                    headers: vec![],
                    body: format!("proxy: {e}").into_bytes(),
                },
            }
        })
    }))
    .await;
    format!("http://{addr}")
}

/// A rewrite that makes SNS e-mail subscriptions behave as on AWS before the
/// recipient clicks the link: listed with the ARN `PendingConfirmation`
/// (moto confirms them at once).
pub fn pending_email_subscriptions() -> Rewrite {
    Arc::new(|req: &Request, mut resp: Response| {
        let body = String::from_utf8_lossy(&req.body);
        if !body.contains("Action=ListSubscriptionsByTopic") {
            return resp;
        }
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        let mut out = String::new();
        let mut rest = text.as_str();
        // Each <member> holds one subscription; rewrite the ARN of e-mail ones.
        while let Some(start) = rest.find("<member>") {
            let Some(len) = rest[start..].find("</member>") else {
                break;
            };
            let end = start + len + "</member>".len();
            let member = &rest[start..end];
            out.push_str(&rest[..start]);
            if member.contains("<Protocol>email</Protocol>") {
                let a = member
                    .find("<SubscriptionArn>")
                    .map(|i| i + "<SubscriptionArn>".len());
                let b = member.find("</SubscriptionArn>");
                if let (Some(a), Some(b)) = (a, b) {
                    out.push_str(&member[..a]);
                    out.push_str("PendingConfirmation");
                    out.push_str(&member[b..]);
                } else {
                    out.push_str(member);
                }
            } else {
                out.push_str(member);
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        resp.body = out.into_bytes();
        resp
    })
}

/// How many times [`LambdaLikeAws`] made each AWS behaviour happen.
#[derive(Debug, Default)]
pub struct LambdaWaits {
    /// `CreateFunction` calls answered "the role cannot be assumed".
    pub role_not_assumable: std::sync::atomic::AtomicUsize,
    /// `GetFunctionConfiguration` answers rewritten to `State: Pending`.
    pub pending: std::sync::atomic::AtomicUsize,
    /// `GetFunctionConfiguration` answers rewritten to `LastUpdateStatus: InProgress`.
    pub in_progress: std::sync::atomic::AtomicUsize,
    /// Updates answered `ResourceConflictException`.
    pub conflicts: std::sync::atomic::AtomicUsize,
}

/// Lambda as it behaves on AWS, where moto answers at once: the first
/// `role_failures` `CreateFunction` calls fail with IAM propagation's error;
/// each function is `Pending` for its first `polls` configuration reads after
/// a create, `InProgress` for its first `polls` reads after an update; the
/// first update of each kind answers `ResourceConflictException`.
pub struct LambdaLikeAws {
    pub role_failures: usize,
    pub polls: usize,
    pub counts: Arc<LambdaWaits>,
    /// Function name -> (reads left Pending, reads left InProgress).
    state: std::sync::Mutex<std::collections::HashMap<String, (usize, usize)>>,
    conflicted: std::sync::Mutex<std::collections::HashSet<String>>,
}

fn lambda_error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-amzn-errortype".into(), code.into()),
        ],
        body: serde_json::json!({"Type": "User", "message": message})
            .to_string()
            .into_bytes(),
    }
}

impl LambdaLikeAws {
    pub fn new(role_failures: usize, polls: usize) -> Arc<LambdaLikeAws> {
        Arc::new(LambdaLikeAws {
            role_failures,
            polls,
            counts: Arc::default(),
            state: Default::default(),
            conflicted: Default::default(),
        })
    }

    /// The proxy's `(intercept, rewrite)` pair.
    pub fn hooks(self: &Arc<Self>) -> (Intercept, Rewrite) {
        use std::sync::atomic::Ordering::SeqCst;
        let me = Arc::clone(self);
        let intercept: Intercept = Arc::new(move |req: &Request| {
            let path = req.path.split('?').next().unwrap_or_default();
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            let is_fn = parts.first() == Some(&"2015-03-31") && parts.get(1) == Some(&"functions");
            if !is_fn {
                return None;
            }
            if req.method == "POST"
                && parts.len() == 2
                && me.counts.role_not_assumable.load(SeqCst) < me.role_failures
            {
                me.counts.role_not_assumable.fetch_add(1, SeqCst);
                return Some(lambda_error(
                    400,
                    "InvalidParameterValueException",
                    "The role defined for the function cannot be assumed by Lambda.",
                ));
            }
            if req.method == "PUT" && parts.len() == 4 {
                let key = format!("{}/{}", parts[2], parts[3]);
                if me.conflicted.lock().unwrap().insert(key) {
                    me.counts.conflicts.fetch_add(1, SeqCst);
                    return Some(lambda_error(
                        409,
                        "ResourceConflictException",
                        "The operation cannot be performed at this time. An update is in progress for resource",
                    ));
                }
            }
            None
        });
        let me = Arc::clone(self);
        let rewrite: Rewrite = Arc::new(move |req: &Request, mut resp: Response| {
            let path = req.path.split('?').next().unwrap_or_default();
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            if parts.first() != Some(&"2015-03-31") || parts.get(1) != Some(&"functions") {
                return resp;
            }
            if resp.status >= 300 {
                return resp;
            }
            let mut state = me.state.lock().unwrap();
            match (req.method.as_str(), parts.len()) {
                // CreateFunction: the new function starts Pending.
                ("POST", 2) => {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body)
                        && let Some(name) = v["FunctionName"].as_str()
                    {
                        state.insert(name.to_owned(), (me.polls, 0));
                    }
                }
                // UpdateFunctionConfiguration / UpdateFunctionCode.
                ("PUT", 4) => {
                    state.entry(parts[2].to_owned()).or_default().1 = me.polls;
                }
                // GetFunctionConfiguration.
                ("GET", 4) if parts[3] == "configuration" => {
                    if let Some((pending, in_progress)) = state.get_mut(parts[2])
                        && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&resp.body)
                    {
                        if *pending > 0 {
                            *pending -= 1;
                            me.counts.pending.fetch_add(1, SeqCst);
                            v["State"] = "Pending".into();
                        } else if *in_progress > 0 {
                            *in_progress -= 1;
                            me.counts.in_progress.fetch_add(1, SeqCst);
                            v["LastUpdateStatus"] = "InProgress".into();
                        }
                        resp.body = v.to_string().into_bytes();
                    }
                }
                _ => {}
            }
            resp
        });
        (intercept, rewrite)
    }
}

pub(crate) async fn forward(upstream: &str, req: Request) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (k, v) in &req.headers {
        let lower = k.to_ascii_lowercase();
        if lower != "connection" && lower != "content-length" && lower != "transfer-encoding" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        req.body.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(&req.body);
    stream.write_all(&out).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k != "content-length" && k != "connection" && k != "transfer-encoding"
        })
        .collect();
    Ok(Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}
