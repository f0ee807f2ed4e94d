//! The use case both functions share: generate an image for a prompt and store
//! it under the configured prefix.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::error::GenerateError;
use crate::families::MAX_SEED;
use crate::model::ImageModel;
use crate::prompt::Prompt;
use crate::store::{ImageMetadata, ImageStore, image_key};

/// Where an image was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub bucket: String,
    pub key: String,
    pub seed: Option<u32>,
    pub model: String,
    /// The object was already there (a redelivered message): the model was not called.
    pub reused: bool,
    pub model_latency: Option<Duration>,
}

impl Stored {
    pub fn s3_uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

pub struct Generator<M, S> {
    pub model: M,
    pub store: S,
    pub prefix: String,
}

impl<M: ImageModel, S: ImageStore> Generator<M, S> {
    pub fn new(model: M, store: S, prefix: impl Into<String>) -> Self {
        Generator {
            model,
            store,
            prefix: prefix.into(),
        }
    }

    pub fn key_for(&self, id: &str) -> String {
        image_key(&self.prefix, id)
    }

    /// Generates and stores image `id`.
    pub async fn generate(&self, id: &str, prompt: &Prompt) -> Result<Stored, GenerateError> {
        let key = self.key_for(id);
        let seed = rand::rng().random_range(0..=MAX_SEED);
        let started = Instant::now();
        let png = self.model.generate(prompt, seed).await?;
        let model_latency = started.elapsed();
        let meta = ImageMetadata {
            prompt: prompt.as_str().to_owned(),
            seed,
            model: self.model.model_id().to_owned(),
        };
        self.store.put(&key, png, &meta).await?;
        Ok(Stored {
            bucket: self.store.bucket().to_owned(),
            key,
            seed: Some(seed),
            model: meta.model,
            reused: false,
            model_latency: Some(model_latency),
        })
    }

    /// Like [`Self::generate`], but does nothing when image `id` already exists:
    /// a redelivered message is not billed twice.
    pub async fn generate_once(&self, id: &str, prompt: &Prompt) -> Result<Stored, GenerateError> {
        let key = self.key_for(id);
        if self.store.exists(&key).await? {
            return Ok(Stored {
                bucket: self.store.bucket().to_owned(),
                key,
                seed: None,
                model: self.model.model_id().to_owned(),
                reused: true,
                model_latency: None,
            });
        }
        self.generate(id, prompt).await
    }
}
