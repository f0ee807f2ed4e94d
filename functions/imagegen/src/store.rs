//! Where images go: `s3://{IMAGE_BUCKET}/{IMAGE_PREFIX}/images/{id}.png`, with
//! a sidecar `{id}.json` recording the prompt, seed and model (S3 metadata is
//! ASCII-only and limited to 2 KB, too small for any 512-character prompt).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde::Serialize;

use crate::error::GenerateError;

pub use couch_contract::image_key;

/// The sidecar key for an image key.
pub fn sidecar_key(image_key: &str) -> String {
    format!(
        "{}.json",
        image_key.strip_suffix(".png").unwrap_or(image_key)
    )
}

/// What is recorded alongside an image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageMetadata {
    pub prompt: String,
    pub seed: u32,
    pub model: String,
}

#[async_trait]
pub trait ImageStore: Send + Sync {
    fn bucket(&self) -> &str;
    async fn exists(&self, key: &str) -> Result<bool, GenerateError>;
    /// Stores the PNG and its metadata; the PNG last, so its existence means "done".
    async fn put(&self, key: &str, png: Vec<u8>, meta: &ImageMetadata)
    -> Result<(), GenerateError>;
    /// Writes a small JSON object (the health check's proof that the prefix is writable).
    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), GenerateError>;
    /// A link to GET the object, valid for `ttl`.
    async fn presigned_url(&self, key: &str, ttl: Duration) -> Result<String, GenerateError>;
    /// A small JSON object (a sidecar, a request's status); `None` when absent.
    async fn get_json(&self, key: &str) -> Result<Option<Vec<u8>>, GenerateError>;
    /// Writes `body` only if nothing is at `key` (S3's `If-None-Match: *`):
    /// `false` when something already was (e.g. the worker's status).
    async fn put_json_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, GenerateError>;
}

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }
}

fn storage<E: std::error::Error + 'static>(what: &str, e: E) -> GenerateError {
    GenerateError::Storage(format!("{what}: {}", DisplayErrorContext(&e)))
}

#[async_trait]
impl ImageStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn exists(&self, key: &str) -> Result<bool, GenerateError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(storage(&format!("s3:HeadObject {key}"), e)),
        }
    }

    async fn put(
        &self,
        key: &str,
        png: Vec<u8>,
        meta: &ImageMetadata,
    ) -> Result<(), GenerateError> {
        let sidecar = serde_json::to_vec_pretty(meta)
            .map_err(|e| GenerateError::Storage(format!("encoding metadata: {e}")))?;
        self.put_json(&sidecar_key(key), sidecar).await?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("image/png")
            .metadata("seed", meta.seed.to_string())
            .metadata("model", &meta.model)
            // S3 metadata is ASCII and at most 2 KB: a percent-encoded prefix of
            // the prompt; the full prompt is in the sidecar.
            .metadata(
                "prompt",
                encoded_prefix(&meta.prompt, PROMPT_METADATA_BYTES),
            )
            .body(ByteStream::from(png))
            .send()
            .await
            .map_err(|e| storage(&format!("s3:PutObject {key}"), e))?;
        Ok(())
    }

    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), GenerateError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json; charset=utf-8")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| storage(&format!("s3:PutObject {key}"), e))?;
        Ok(())
    }

    async fn get_json(&self, key: &str) -> Result<Option<Vec<u8>>, GenerateError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(storage(&format!("s3:GetObject {key}"), e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| storage(&format!("reading s3://{}/{key}", self.bucket), e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn put_json_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, GenerateError> {
        match self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .content_type("application/json; charset=utf-8")
            .body(ByteStream::from(body))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            // 412 Precondition Failed: something is there already.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(false),
            Err(e) => Err(storage(&format!("s3:PutObject {key} (If-None-Match)"), e)),
        }
    }

    async fn presigned_url(&self, key: &str, ttl: Duration) -> Result<String, GenerateError> {
        let config =
            PresigningConfig::expires_in(ttl).map_err(|e| storage("presigning config", e))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| storage(&format!("presigning {key}"), e))?;
        Ok(req.uri().to_owned())
    }
}

/// Bytes of percent-encoded prompt kept in the object's metadata.
pub const PROMPT_METADATA_BYTES: usize = 1024;

/// The percent-encoding of the longest prefix of `s` (whole characters) that fits in `max` bytes.
pub fn encoded_prefix(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 4];
    for c in s.chars() {
        let piece = percent_encoding::utf8_percent_encode(
            c.encode_utf8(&mut buf),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        if out.len() + piece.len() > max {
            break;
        }
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_under_the_prefix() {
        assert_eq!(image_key("11", "c0ffee-1"), "11/images/c0ffee-1.png");
        assert_eq!(image_key("/11/", "a/../b"), "11/images/a____b.png");
        assert_eq!(sidecar_key("11/images/x.png"), "11/images/x.json");
    }

    #[test]
    fn metadata_prompt_is_ascii_and_bounded() {
        assert_eq!(encoded_prefix("a café", 100), "a%20caf%C3%A9");
        let long = "é".repeat(512);
        let enc = encoded_prefix(&long, PROMPT_METADATA_BYTES);
        assert!(enc.len() <= PROMPT_METADATA_BYTES && enc.is_ascii());
        assert_eq!(enc.len() % 6, 0, "never cuts a character in half");
    }
}
