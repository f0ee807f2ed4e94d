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

/// Starts the proxy to `upstream` (`http://127.0.0.1:PORT`); returns its endpoint.
pub async fn start(upstream: &str, delay: Duration) -> String {
    start_rewriting(upstream, delay, Arc::new(|_, r| r)).await
}

/// Like [`start`], passing every answer through `rewrite`.
pub async fn start_rewriting(upstream: &str, delay: Duration, rewrite: Rewrite) -> String {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let addr = http::serve(Arc::new(move |req: Request| {
        let upstream = upstream.clone();
        let rewrite = Arc::clone(&rewrite);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
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

async fn forward(upstream: &str, req: Request) -> std::io::Result<Response> {
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
