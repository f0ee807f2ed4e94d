//! The pre-traffic health check both functions answer (the event and answer
//! are [`couch_contract::health`]): the provisioner invokes a new version with
//! it before moving any traffic there, and `provisioner verify` invokes `live`.
//! It proves what a version needs to serve, without a model call: its
//! configuration was read (a missing variable fails the cold start, which the
//! invoker sees as a function error), it can write under the stack's prefix
//! (one small object at [`couch_contract::health_key`]), and its code speaks
//! the configured model's family.

use serde::Serialize;
use serde_json::Value;

use couch_contract::health::EVENT_KEY;
use couch_contract::model::{KNOWN_PREFIXES, family_of};

use crate::generate::Generator;
use crate::model::ImageModel;
use crate::store::ImageStore;

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// The answer to a health-check event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub ok: bool,
    pub function: String,
    pub version: String,
    pub checks: Vec<Check>,
}

/// Whether an invocation's payload is the health-check event.
pub fn is_health_event(payload: &Value) -> bool {
    payload.get(EVENT_KEY).is_some()
}

/// Which function and version answer (Lambda's `AWS_LAMBDA_FUNCTION_*`).
#[derive(Debug, Clone, Copy)]
pub struct Invoked<'a> {
    pub function: &'a str,
    pub version: &'a str,
}

/// Runs every check; never calls the model.
pub async fn check<M: ImageModel, S: ImageStore>(
    generator: &Generator<M, S>,
    invoked: Invoked<'_>,
) -> Report {
    let model_id = generator.model.model_id();
    let mut checks = vec![Check {
        name: "config",
        ok: true,
        detail: format!(
            "bucket {}, prefix {}, model {model_id}",
            generator.store.bucket(),
            generator.prefix
        ),
    }];
    checks.push(match family_of(model_id) {
        Some(family) => Check {
            name: "model",
            ok: true,
            detail: format!(
                "{model_id} is of the {family} family this code speaks (prompts up to {} characters; not called)",
                generator.model.prompt_rule().max_chars
            ),
        },
        None => Check {
            name: "model",
            ok: false,
            detail: format!("{model_id:?} is of no family this code speaks ({KNOWN_PREFIXES})"),
        },
    });
    let key = couch_contract::health_key(&generator.prefix, invoked.function);
    let proof = serde_json::json!({
        "function": invoked.function,
        "version": invoked.version,
        "checked_at_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
    });
    checks.push(
        match generator
            .store
            .put_json(&key, proof.to_string().into_bytes())
            .await
        {
            Ok(()) => Check {
                name: "store",
                ok: true,
                detail: format!("wrote s3://{}/{key}", generator.store.bucket()),
            },
            Err(e) => Check {
                name: "store",
                ok: false,
                detail: format!("cannot write under the prefix: {e}"),
            },
        },
    );
    let ok = checks.iter().all(|c| c.ok);
    if ok {
        tracing::info!(version = invoked.version, "health check passed");
    } else {
        tracing::error!(version = invoked.version, checks = ?checks, "health check failed");
    }
    Report {
        ok,
        function: invoked.function.to_owned(),
        version: invoked.version.to_owned(),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeModel, FakeStore};
    use std::time::Duration;

    const INVOKED: Invoked<'static> = Invoked {
        function: "s-worker",
        version: "8",
    };

    #[test]
    fn the_event_is_recognised_by_its_key() {
        assert!(is_health_event(
            &serde_json::json!({"couch_health_check": {"by": "provisioner"}})
        ));
        assert!(!is_health_event(&serde_json::json!({"Records": []})));
        assert!(!is_health_event(&serde_json::json!("couch_health_check")));
    }

    #[tokio::test]
    async fn a_healthy_function_writes_its_proof_and_calls_no_model() {
        let g = Generator::new(
            FakeModel::new(Duration::ZERO).with_id("stability.stable-image-core-v1:1"),
            FakeStore::default(),
            "11",
        );
        let r = check(&g, INVOKED).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.version, "8");
        let names: Vec<_> = r.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, ["config", "model", "store"]);
        assert_eq!(
            g.model.calls.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the model is never called"
        );
        let written = g.store.json.lock().unwrap();
        let proof: Value =
            serde_json::from_slice(&written["11/images/_health/s-worker.json"]).unwrap();
        assert_eq!(proof["version"], "8");
        assert!(g.store.keys().is_empty(), "no image is stored");
    }

    #[tokio::test]
    async fn an_unwritable_prefix_and_an_unknown_family_fail_with_their_reason() {
        // FakeModel's id ("fake.model-v1") is of no real family.
        let g = Generator::new(FakeModel::new(Duration::ZERO), FakeStore::failing(), "11");
        let r = check(&g, INVOKED).await;
        assert!(!r.ok);
        let failed: Vec<_> = r.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
        assert_eq!(failed, ["model", "store"]);
        assert!(r.checks[2].detail.contains("AccessDenied"), "{r:?}");
        assert!(r.checks[1].detail.contains("fake.model-v1"), "{r:?}");
    }
}
