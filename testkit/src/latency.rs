//! A proxy in front of the emulator that adds a fixed delay to every request,
//! standing in for the network distance to a real AWS region (moto on
//! loopback answers in about a millisecond, which hides whether calls overlap).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{self, Request, Response};

/// Starts the proxy to `upstream` (`http://127.0.0.1:PORT`); returns its endpoint.
pub async fn start(upstream: &str, delay: Duration) -> String {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let addr = http::serve(Arc::new(move |req: Request| {
        let upstream = upstream.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            forward(&upstream, req).await.unwrap_or_else(|e| Response {
                status: 502,
                headers: vec![],
                body: format!("proxy: {e}").into_bytes(),
            })
        })
    }))
    .await;
    format!("http://{addr}")
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
