//! API Gateway events, both payload versions, reduced to what the handler needs.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use base64::Engine as _;
use serde_json::Value;

/// A request as the handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    /// The body, decoded if API Gateway sent it base64-encoded.
    pub body: Option<Vec<u8>>,
    /// API Gateway's request id, when present.
    pub request_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("not an API Gateway event: {0}")]
pub struct NotApiGateway(String);

fn decode_body(body: Option<String>, base64: bool) -> Result<Option<Vec<u8>>, NotApiGateway> {
    match body {
        None => Ok(None),
        Some(b) if base64 => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map(Some)
            .map_err(|e| NotApiGateway(format!("body marked base64 but is not: {e}"))),
        Some(b) => Ok(Some(b.into_bytes())),
    }
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Parses payload 2.0 (`"version": "2.0"`) or payload 1.0 (`httpMethod`).
pub fn parse(event: Value) -> Result<Request, NotApiGateway> {
    if event.get("version").and_then(Value::as_str) == Some("2.0") {
        let e: ApiGatewayV2httpRequest =
            serde_json::from_value(event).map_err(|e| NotApiGateway(e.to_string()))?;
        Ok(Request {
            method: e.request_context.http.method.to_string(),
            path: e
                .raw_path
                .or(e.request_context.http.path)
                .unwrap_or_default(),
            content_type: header(&e.headers, "content-type"),
            body: decode_body(e.body, e.is_base64_encoded)?,
            request_id: e.request_context.request_id,
        })
    } else if event.get("httpMethod").is_some() {
        let e: ApiGatewayProxyRequest =
            serde_json::from_value(event).map_err(|e| NotApiGateway(e.to_string()))?;
        Ok(Request {
            method: e.http_method.to_string(),
            path: e.path.unwrap_or_default(),
            content_type: header(&e.headers, "content-type"),
            body: decode_body(e.body, e.is_base64_encoded)?,
            request_id: e.request_context.request_id,
        })
    } else {
        Err(NotApiGateway("neither payload 2.0 nor 1.0".into()))
    }
}
