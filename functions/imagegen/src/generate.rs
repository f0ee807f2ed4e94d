//! The use case both functions share: generate an image for a prompt and store
//! it under the configured prefix.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::error::GenerateError;
use crate::families::MAX_SEED;
use crate::model::ImageModel;
use crate::prompt::Prompt;
use crate::store::{ImageMetadata, ImageStore, image_key, sync_image_key};

/// How many keys [`Generator::generate_new`] tries: the first, and one more
/// if the first was taken.
pub const NEW_KEY_ATTEMPTS: usize = 2;

/// A fresh picture id: a random (version 4) UUID, lowercase `8-4-4-4-12`.
pub fn new_image_id() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

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

    /// Where the synchronous route stores picture `id`
    /// (`{prefix}/images/sync/{id}.png`).
    pub fn sync_key_for(&self, id: &str) -> String {
        sync_image_key(&self.prefix, id)
    }

    /// One model call: the PNG, what is recorded beside it, the call's
    /// duration (for callers that pace the model calls themselves and store
    /// with [`Self::store_rendered`]).
    pub async fn render(
        &self,
        prompt: &Prompt,
    ) -> Result<(Vec<u8>, ImageMetadata, Duration), GenerateError> {
        let seed = rand::rng().random_range(0..=MAX_SEED);
        let started = Instant::now();
        let png = self.model.generate(prompt, seed).await?;
        let model_latency = started.elapsed();
        let meta = ImageMetadata {
            prompt: prompt.as_str().to_owned(),
            seed,
            model: self.model.model_id().to_owned(),
        };
        Ok((png, meta, model_latency))
    }

    /// Stores a [`Self::render`]ed picture as image `id`.
    pub async fn store_rendered(
        &self,
        id: &str,
        png: Vec<u8>,
        meta: ImageMetadata,
        model_latency: Duration,
    ) -> Result<Stored, GenerateError> {
        let key = self.key_for(id);
        self.store.put(&key, png, &meta).await?;
        Ok(self.stored(key, meta, model_latency))
    }

    /// Image `id` as already stored (a redelivered message), or `None`.
    pub async fn already_stored(&self, id: &str) -> Result<Option<Stored>, GenerateError> {
        let key = self.key_for(id);
        if !self.store.exists(&key).await? {
            return Ok(None);
        }
        Ok(Some(Stored {
            bucket: self.store.bucket().to_owned(),
            key,
            seed: None,
            model: self.model.model_id().to_owned(),
            reused: true,
            model_latency: None,
        }))
    }

    fn stored(&self, key: String, meta: ImageMetadata, model_latency: Duration) -> Stored {
        Stored {
            bucket: self.store.bucket().to_owned(),
            key,
            seed: Some(meta.seed),
            model: meta.model,
            reused: false,
            model_latency: Some(model_latency),
        }
    }

    /// Generates and stores image `id`.
    pub async fn generate(&self, id: &str, prompt: &Prompt) -> Result<Stored, GenerateError> {
        let key = self.key_for(id);
        let (png, meta, model_latency) = self.render(prompt).await?;
        self.store.put(&key, png, &meta).await?;
        Ok(self.stored(key, meta, model_latency))
    }

    /// Generates one picture and stores it under a key nothing holds yet:
    /// each key `new_key` gives is written with `If-None-Match: *`
    /// ([`ImageStore::put_new`]); a taken key is tried again once with the
    /// next key ([`NEW_KEY_ATTEMPTS`] in all), never overwritten, and the
    /// model is called once whatever happens. Two taken keys are a storage
    /// error.
    pub async fn generate_new(
        &self,
        prompt: &Prompt,
        mut new_key: impl FnMut() -> String + Send,
    ) -> Result<Stored, GenerateError> {
        let (png, meta, model_latency) = self.render(prompt).await?;
        let mut tried = Vec::with_capacity(NEW_KEY_ATTEMPTS);
        for _ in 0..NEW_KEY_ATTEMPTS {
            let key = new_key();
            if self.store.put_new(&key, png.clone(), &meta).await? {
                return Ok(self.stored(key, meta, model_latency));
            }
            tracing::warn!(key, "the new picture's key was taken: not overwritten");
            tried.push(key);
        }
        Err(GenerateError::Storage(format!(
            "every key tried was taken (If-None-Match: * refused): {}",
            tried.join(", ")
        )))
    }

    /// Like [`Self::generate`], but does nothing when image `id` already exists:
    /// a redelivered message is not billed twice.
    pub async fn generate_once(&self, id: &str, prompt: &Prompt) -> Result<Stored, GenerateError> {
        if let Some(stored) = self.already_stored(id).await? {
            return Ok(stored);
        }
        self.generate(id, prompt).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeModel, FakeStore};
    use crate::prompt::PromptRule;
    use std::collections::BTreeSet;
    use std::sync::atomic::Ordering;

    fn generator() -> Generator<FakeModel, FakeStore> {
        Generator::new(FakeModel::new(Duration::ZERO), FakeStore::default(), "11")
    }

    fn prompt(p: &str) -> Prompt {
        Prompt::parse(p, PromptRule::TITAN).unwrap()
    }

    #[test]
    fn new_ids_are_version_4_uuids_and_do_not_repeat() {
        let ids: BTreeSet<String> = (0..1000).map(|_| new_image_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert!(couch_contract::status::is_request_id(id), "{id}");
            assert_eq!(&id[14..15], "4", "{id}");
            assert!("89ab".contains(&id[19..20]), "{id}");
        }
    }

    #[tokio::test]
    async fn a_new_picture_is_written_only_where_nothing_is() {
        let g = generator();
        let first = g.sync_key_for("a");
        let stored = g
            .generate_new(&prompt("a cat"), || first.clone())
            .await
            .unwrap();
        assert_eq!(stored.key, "11/images/sync/a.png");
        let before = g.store.objects.lock().unwrap()[&first].clone();
        // The same key again: refused, whatever the tries; nothing overwritten.
        let again = g
            .generate_new(&prompt("another cat"), || first.clone())
            .await
            .unwrap_err();
        assert!(again.to_string().contains("taken"), "{again}");
        assert_eq!(g.store.objects.lock().unwrap()[&first], before);
        assert_eq!(g.store.keys(), [first.as_str()]);
        assert_eq!(g.store.conditional_keys(), [first.as_str(); 3]);
        assert_eq!(g.model.calls.load(Ordering::SeqCst), 2, "one call each");
    }

    #[tokio::test]
    async fn a_taken_key_is_tried_again_once_with_the_next() {
        let g = generator();
        g.store.taken.store(1, Ordering::SeqCst);
        let mut n = 0;
        let stored = g
            .generate_new(&prompt("a cat"), || {
                n += 1;
                format!("11/images/sync/k{n}.png")
            })
            .await
            .unwrap();
        assert_eq!(stored.key, "11/images/sync/k2.png");
        assert_eq!(
            g.store.conditional_keys(),
            ["11/images/sync/k1.png", "11/images/sync/k2.png"]
        );
        assert_eq!(g.store.keys(), ["11/images/sync/k2.png"]);
        assert_eq!(g.model.calls.load(Ordering::SeqCst), 1);

        g.store.taken.store(NEW_KEY_ATTEMPTS, Ordering::SeqCst);
        assert!(matches!(
            g.generate_new(&prompt("a dog"), new_image_id).await,
            Err(GenerateError::Storage(_))
        ));
        assert_eq!(g.store.keys(), ["11/images/sync/k2.png"]);
    }

    #[tokio::test]
    async fn pictures_carry_no_prompt_in_their_metadata() {
        let g = generator();
        let a = g.generate("m-1", &prompt("my secret trip")).await.unwrap();
        let b = g
            .generate_new(&prompt("my other secret trip"), || g.sync_key_for("s"))
            .await
            .unwrap();
        for key in [&a.key, &b.key] {
            let meta = g.store.metadata_of(key).unwrap();
            assert_eq!(
                meta.keys().map(String::as_str).collect::<Vec<_>>(),
                ["model", "seed"],
                "{key}"
            );
            assert!(!meta.values().any(|v| v.contains("secret")), "{meta:?}");
        }
        // The sidecar keeps it.
        let side = g
            .store
            .get_json(&crate::store::sidecar_key(&a.key))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8(side).unwrap().contains("my secret trip"));
    }
}
