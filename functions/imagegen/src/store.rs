//! Where images go: `s3://{IMAGE_BUCKET}/{IMAGE_PREFIX}/images/{id}.png`
//! (the synchronous route's under `images/sync/`), with a sidecar `{id}.json`
//! recording the prompt, seed and model. The picture's own S3 metadata holds
//! the seed and the model only ([`object_metadata`]): whoever may read a
//! picture (a presigned link, a role allowed `*.png`) reads its metadata too,
//! and a prompt is the asker's; the sidecar keeps it.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde::Serialize;

use crate::error::GenerateError;

pub use couch_contract::{image_key, sync_image_key};

/// The content type of the JSON objects (sidecars, statuses, health proofs).
const JSON: &str = "application/json; charset=utf-8";

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

/// The S3 user metadata (`x-amz-meta-*`) a picture is stored with: the seed
/// and the model. Never the prompt (see the module's documentation).
pub fn object_metadata(meta: &ImageMetadata) -> [(&'static str, String); 2] {
    [
        ("seed", meta.seed.to_string()),
        ("model", meta.model.clone()),
    ]
}

#[async_trait]
pub trait ImageStore: Send + Sync {
    fn bucket(&self) -> &str;
    async fn exists(&self, key: &str) -> Result<bool, GenerateError>;
    /// Stores the PNG and its metadata; the PNG last, so its existence means "done".
    async fn put(&self, key: &str, png: Vec<u8>, meta: &ImageMetadata)
    -> Result<(), GenerateError>;
    /// Like [`Self::put`], but only where nothing is yet: the sidecar, then
    /// the PNG, each written with S3's `If-None-Match: *`. `false` when
    /// either was already there (S3's 412, or its 409 for a conditional
    /// write to the same key in flight): nothing of anyone else's is
    /// overwritten, and the caller picks another key.
    async fn put_new(
        &self,
        key: &str,
        png: Vec<u8>,
        meta: &ImageMetadata,
    ) -> Result<bool, GenerateError>;
    /// Writes a small JSON object (the health check's proof that the prefix is writable).
    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), GenerateError>;
    /// A link to GET the object, valid for `ttl`.
    async fn presigned_url(&self, key: &str, ttl: Duration) -> Result<String, GenerateError>;
    /// A small JSON object (a sidecar, a request's status); `None` when absent.
    async fn get_json(&self, key: &str) -> Result<Option<Vec<u8>>, GenerateError>;
    /// Writes `body` only if nothing is at `key` (S3's `If-None-Match: *`):
    /// `false` when something already was, or was being written (412, 409;
    /// e.g. the worker's status).
    async fn put_json_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, GenerateError>;
}

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// The credentials the client signs with, when known: a presigned link
    /// lasts no longer than they do ([`link_lifetime`]). (The S3 client's
    /// own `credentials_provider()` always answers `None`.)
    signer: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
            signer: None,
        }
    }

    /// The same, knowing the credentials `client` signs with.
    pub fn signed_by(
        mut self,
        provider: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
    ) -> Self {
        self.signer = provider;
        self
    }
}

fn storage<E: std::error::Error + 'static>(what: &str, e: E) -> GenerateError {
    GenerateError::Storage(format!("{what}: {}", DisplayErrorContext(&e)))
}

/// An S3 call's error: `503 Slow Down` is S3 asking for fewer requests
/// (S3 user guide, "Best practices design patterns: optimizing Amazon S3
/// performance": https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html),
/// so it is throttling, retried with back-off like the model's; anything
/// else is a storage failure.
fn s3_error<E>(what: &str, e: SdkError<E, HttpResponse>) -> GenerateError
where
    E: std::error::Error + Send + Sync + 'static,
{
    if let Some(raw) = e.raw_response()
        && raw.status().as_u16() == 503
    {
        let after = crate::model::retry_after(raw.headers().get("retry-after"));
        return GenerateError::Throttled(
            format!("{what}: SlowDown: {}", DisplayErrorContext(&e)),
            after,
        );
    }
    storage(what, e)
}

/// Whether a conditional `PutObject` (`If-None-Match: *`) was refused because
/// the key is taken: 412 Precondition Failed (an object is there), or 409
/// ConditionalRequestConflict (another conditional write to the key is in
/// flight). AWS S3 User Guide, "How to prevent object overwrites with
/// conditional writes":
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
fn taken<E>(e: &SdkError<E, HttpResponse>) -> bool {
    e.raw_response()
        .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409))
}

impl S3Store {
    /// `PutObject` of `body` at `key` with `If-None-Match: *`: `false` when
    /// the key is [`taken`].
    async fn put_if_absent(
        &self,
        key: &str,
        content_type: &str,
        metadata: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<bool, GenerateError> {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .content_type(content_type);
        for (name, value) in metadata {
            put = put.metadata(*name, value);
        }
        match put.body(ByteStream::from(body)).send().await {
            Ok(_) => Ok(true),
            Err(e) if taken(&e) => Ok(false),
            Err(e) => Err(s3_error(&format!("s3:PutObject {key} (If-None-Match)"), e)),
        }
    }
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
            Err(e) => Err(s3_error(&format!("s3:HeadObject {key}"), e)),
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
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("image/png");
        for (name, value) in object_metadata(meta) {
            put = put.metadata(name, value);
        }
        put.body(ByteStream::from(png))
            .send()
            .await
            .map_err(|e| s3_error(&format!("s3:PutObject {key}"), e))?;
        Ok(())
    }

    async fn put_new(
        &self,
        key: &str,
        png: Vec<u8>,
        meta: &ImageMetadata,
    ) -> Result<bool, GenerateError> {
        let sidecar = serde_json::to_vec_pretty(meta)
            .map_err(|e| GenerateError::Storage(format!("encoding metadata: {e}")))?;
        // The sidecar claims the id; the PNG, last, is conditional too.
        Ok(self
            .put_if_absent(&sidecar_key(key), JSON, &[], sidecar)
            .await?
            && self
                .put_if_absent(key, "image/png", &object_metadata(meta), png)
                .await?)
    }

    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), GenerateError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(JSON)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_error(&format!("s3:PutObject {key}"), e))?;
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
            Err(e) => return Err(s3_error(&format!("s3:GetObject {key}"), e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| storage(&format!("reading s3://{}/{key}", self.bucket), e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn put_json_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, GenerateError> {
        self.put_if_absent(key, JSON, &[], body).await
    }

    async fn presigned_url(&self, key: &str, ttl: Duration) -> Result<String, GenerateError> {
        use aws_sdk_s3::config::ProvideCredentials;
        // A link signed with temporary credentials ends when they do,
        // "even if the URL was created with a later expiration time" (S3
        // user guide, "Download and upload objects with presigned URLs",
        // expiration): never promise more than they last.
        let expiry = match &self.signer {
            Some(provider) => provider
                .provide_credentials()
                .await
                .map_err(|e| storage("credentials for presigning", e))?
                .expiry(),
            None => None,
        };
        let ttl = link_lifetime(ttl, expiry, std::time::SystemTime::now());
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

/// How long a link signed now may say it works: `wanted`, but no longer
/// than the signing credentials (`expiry`, when they have one) less a
/// minute of clock skew, and at least a second (S3 refuses 0).
pub fn link_lifetime(
    wanted: Duration,
    expiry: Option<std::time::SystemTime>,
    now: std::time::SystemTime,
) -> Duration {
    const SKEW: Duration = Duration::from_secs(60);
    let left = expiry.map(|e| {
        e.duration_since(now)
            .unwrap_or_default()
            .saturating_sub(SKEW)
    });
    left.map_or(wanted, |l| wanted.min(l))
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_lasts_no_longer_than_the_credentials_that_signed_it() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3600);
        // Long-term credentials (no expiry): the declared hour.
        assert_eq!(link_lifetime(hour, None, now), hour);
        // A session with 20 minutes left: 19 (a minute of skew).
        let twenty = now + Duration::from_secs(1200);
        assert_eq!(
            link_lifetime(hour, Some(twenty), now),
            Duration::from_secs(1140)
        );
        // A session with a day left: the declared hour.
        let day = now + Duration::from_secs(86_400);
        assert_eq!(link_lifetime(hour, Some(day), now), hour);
        // An expired session still gives a valid (if useless) lifetime.
        let past = now - Duration::from_secs(5);
        assert_eq!(link_lifetime(hour, Some(past), now), Duration::from_secs(1));
    }

    #[test]
    fn keys_stay_under_the_prefix() {
        assert_eq!(image_key("11", "c0ffee-1"), "11/images/c0ffee-1.png");
        assert_eq!(image_key("/11/", "a/../b"), "11/images/a____b.png");
        assert_eq!(sidecar_key("11/images/x.png"), "11/images/x.json");
    }

    #[test]
    fn a_pictures_metadata_is_its_seed_and_model_never_its_prompt() {
        let meta = ImageMetadata {
            prompt: "me at a Parisian café".into(),
            seed: 7,
            model: "amazon.nova-canvas-v1:0".into(),
        };
        let got = object_metadata(&meta);
        assert_eq!(
            got,
            [
                ("seed", "7".to_owned()),
                ("model", "amazon.nova-canvas-v1:0".to_owned())
            ]
        );
        assert!(
            got.iter()
                .all(|(k, v)| *k != "prompt" && !v.contains("Paris"))
        );
    }
}
