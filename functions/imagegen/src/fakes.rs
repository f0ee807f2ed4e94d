//! In-memory test doubles of [`ImageModel`] and [`ImageStore`] (feature `fakes`).
//! The model answers by prompt: `FILTER` → content filter, `THROTTLE` →
//! throttling, `BROKEN` → model failure; otherwise a PNG after `delay`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::GenerateError;
use crate::families::PNG_SIGNATURE;
use crate::model::ImageModel;
use crate::prompt::Prompt;
use crate::prompt::PromptRule;
use crate::store::{ImageMetadata, ImageStore};

pub struct FakeModel {
    pub delay: Duration,
    pub calls: AtomicUsize,
    /// Calls in progress right now, and the most seen at once.
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// The prompt rule it reports (Titan's unless set).
    pub rule: PromptRule,
    /// The model id it reports (of no real family unless set).
    pub id: &'static str,
}

impl FakeModel {
    pub fn new(delay: Duration) -> Self {
        FakeModel {
            delay,
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            rule: PromptRule::TITAN,
            id: "fake.model-v1",
        }
    }
    /// The same fake, reporting another model id.
    pub fn with_id(mut self, id: &'static str) -> Self {
        self.id = id;
        self
    }
    /// The same fake, reporting another model's prompt rule.
    pub fn with_rule(mut self, rule: PromptRule) -> Self {
        self.rule = rule;
        self
    }
    pub fn png() -> Vec<u8> {
        [PNG_SIGNATURE.as_slice(), b"fake image"].concat()
    }
}

#[async_trait]
impl ImageModel for FakeModel {
    fn model_id(&self) -> &str {
        self.id
    }
    fn prompt_rule(&self) -> PromptRule {
        self.rule
    }
    async fn generate(&self, prompt: &Prompt, _seed: u32) -> Result<Vec<u8>, GenerateError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let p = prompt.as_str();
        if p.contains("FILTER") {
            Err(GenerateError::ContentFiltered(
                "blocked by our content filters".into(),
            ))
        } else if p.contains("THROTTLE") {
            Err(GenerateError::Throttled(
                "ThrottlingException: slow down".into(),
                None,
            ))
        } else if p.contains("BROKEN") {
            Err(GenerateError::Model(
                "InternalServerException: secret internal detail".into(),
            ))
        } else {
            Ok(FakeModel::png())
        }
    }
}

#[derive(Default)]
pub struct FakeStore {
    pub objects: Mutex<BTreeMap<String, (Vec<u8>, ImageMetadata)>>,
    /// JSON objects written with `put_json`, by key.
    pub json: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Makes every put fail (S3 outage).
    pub fail_puts: bool,
    /// Each picture's S3 user metadata, as [`crate::store::S3Store`] sets it
    /// ([`crate::store::object_metadata`]), by key.
    pub object_metadata: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// Every key a picture was asked to be written to with `If-None-Match:
    /// *` ([`ImageStore::put_new`]), in order, taken or not.
    pub conditional_puts: Mutex<Vec<String>>,
    /// The next this many `put_new` calls find their key taken (S3's 412),
    /// as if another invocation had written there first.
    pub taken: AtomicUsize,
}

impl FakeStore {
    /// A store whose every write fails (an S3 outage or a missing grant).
    pub fn failing() -> Self {
        FakeStore {
            fail_puts: true,
            ..FakeStore::default()
        }
    }
    fn refuse_if_failing(&self) -> Result<(), GenerateError> {
        if self.fail_puts {
            return Err(GenerateError::Storage(
                "s3:PutObject: AccessDenied: secret bucket policy detail".into(),
            ));
        }
        Ok(())
    }
    /// The JSON object written at `key` (a health proof, a request status).
    pub fn stored_json(&self, key: &str) -> Option<Vec<u8>> {
        self.json
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }
    /// The S3 user metadata picture `key` was stored with.
    pub fn metadata_of(&self, key: &str) -> Option<BTreeMap<String, String>> {
        self.object_metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }
    /// The keys asked for with `If-None-Match: *`, in order.
    pub fn conditional_keys(&self) -> Vec<String> {
        self.conditional_puts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    fn store_picture(&self, key: &str, png: Vec<u8>, meta: &ImageMetadata) {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), (png, meta.clone()));
        self.object_metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                key.to_owned(),
                crate::store::object_metadata(meta)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            );
    }
    pub fn keys(&self) -> Vec<String> {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

#[async_trait]
impl ImageStore for FakeStore {
    fn bucket(&self) -> &str {
        "fake-bucket"
    }
    async fn exists(&self, key: &str) -> Result<bool, GenerateError> {
        Ok(self
            .objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key))
    }
    async fn put(
        &self,
        key: &str,
        png: Vec<u8>,
        meta: &ImageMetadata,
    ) -> Result<(), GenerateError> {
        self.refuse_if_failing()?;
        self.store_picture(key, png, meta);
        Ok(())
    }
    async fn put_new(
        &self,
        key: &str,
        png: Vec<u8>,
        meta: &ImageMetadata,
    ) -> Result<bool, GenerateError> {
        self.refuse_if_failing()?;
        self.conditional_puts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(key.to_owned());
        let collide = self
            .taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        // As S3 with `If-None-Match: *`: a key (or its sidecar) that holds
        // anything is refused, never overwritten.
        let sidecar = crate::store::sidecar_key(key);
        let held = self.exists(key).await?
            || self
                .json
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&sidecar);
        if collide || held {
            return Ok(false);
        }
        self.store_picture(key, png, meta);
        Ok(true)
    }
    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), GenerateError> {
        self.refuse_if_failing()?;
        self.json
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), body);
        Ok(())
    }
    async fn presigned_url(&self, key: &str, ttl: Duration) -> Result<String, GenerateError> {
        Ok(format!(
            "https://fake-bucket.s3.amazonaws.com/{key}?X-Amz-Expires={}",
            ttl.as_secs()
        ))
    }
    async fn get_json(&self, key: &str) -> Result<Option<Vec<u8>>, GenerateError> {
        self.refuse_if_failing()?;
        let json = self
            .json
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        if json.is_some() {
            return Ok(json);
        }
        // An image's sidecar, as S3Store writes it.
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        Ok(objects
            .iter()
            .find(|(k, _)| crate::store::sidecar_key(k) == key)
            .and_then(|(_, (_, meta))| serde_json::to_vec(meta).ok()))
    }
    async fn put_json_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, GenerateError> {
        self.refuse_if_failing()?;
        let mut json = self.json.lock().unwrap_or_else(|p| p.into_inner());
        if json.contains_key(key) {
            return Ok(false);
        }
        json.insert(key.to_owned(), body);
        Ok(true)
    }
}

/// Prompts "sent" in memory: the ids handed out and the bodies, in order.
#[derive(Default)]
pub struct FakeQueue {
    pub sent: Mutex<Vec<(String, String)>>,
    /// Every send fails (a queue that refuses).
    pub failing: bool,
}

#[async_trait]
impl crate::queue::PromptQueue for FakeQueue {
    async fn send(&self, body: &str) -> Result<String, GenerateError> {
        if self.failing {
            return Err(GenerateError::Queue("sqs:SendMessage: AccessDenied".into()));
        }
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let id = format!("6a96454d-ef25-4788-a79c-{:012x}", sent.len());
        sent.push((id.clone(), body.to_owned()));
        Ok(id)
    }
}
