//! The asynchronous path: `POST /images {"prompt"}` puts the prompt on the
//! queue and answers 202 at once with the id the worker names the image by;
//! `GET /images/{id}` says `done` (with the picture), `queued` or `failed`
//! (with a reason a user can read), 404 for an id never submitted, 400 for
//! one that cannot be an id. The status lives beside the images
//! (`couch_contract::status::status_key`): `queued` written at submit (only
//! if nothing is there yet), `failed` by the worker; a stored picture is
//! `done` whatever the status object says.

use imagegen::status::{self, DONE, FAILED, QUEUED};
use imagegen::{Generator, ImageModel, ImageStore, PromptQueue};
use serde_json::{Value, json};

use crate::event::Request;
use crate::handler::{Reply, URL_TTL, error, prompt_of};

/// Where a request's status is read (`Location`, `status_url`): relative to
/// the API, so it holds on any stage, domain or local port.
pub fn status_path(id: &str) -> String {
    format!("/images/{id}")
}

/// `POST /images`.
pub async fn submit<M: ImageModel, S: ImageStore, Q: PromptQueue + ?Sized>(
    req: &Request,
    generator: &Generator<M, S>,
    queue: Option<&Q>,
    request_id: &str,
) -> Reply {
    let prompt = match prompt_of(req, generator.model.prompt_rule(), request_id) {
        Ok(p) => p,
        Err(reply) => {
            tracing::info!(request_id, status = reply.status, "rejected submit");
            return reply;
        }
    };
    let Some(queue) = queue else {
        tracing::error!(
            request_id,
            "POST /images without QUEUE_ARN in the environment"
        );
        return error(
            502,
            "images cannot be queued right now; try again",
            request_id,
        );
    };
    let body = json!({ "prompt": prompt.as_str() }).to_string();
    let id = match queue.send(&body).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(request_id, error = %e, "queueing the prompt failed");
            return error(502, "the prompt could not be queued; try again", request_id);
        }
    };
    let key = status::status_key(&generator.prefix, &id);
    let queued = json!({ "status": QUEUED }).to_string().into_bytes();
    // Only if nothing is there: a worker that already failed it wins.
    if let Err(e) = generator.store.put_json_if_absent(&key, queued).await {
        // The prompt is queued and will be made; only "queued" is not recorded.
        tracing::warn!(request_id, id, error = %e, "the queued status was not written");
    }
    tracing::info!(
        request_id,
        id,
        prompt_chars = prompt.chars(),
        "prompt queued"
    );
    let path = status_path(&id);
    Reply {
        location: Some(path.clone()),
        ..Reply::json(
            202,
            json!({ "id": id, "status": QUEUED, "status_url": path }),
        )
    }
}

/// `GET /images/{id}`.
pub async fn status_of<M: ImageModel, S: ImageStore>(
    id: &str,
    generator: &Generator<M, S>,
    request_id: &str,
) -> Reply {
    if !status::is_request_id(id) {
        return error(
            400,
            "that is not an image id (ids are what POST /images answered)",
            request_id,
        );
    }
    let store = &generator.store;
    let image = generator.key_for(id);
    let upstream = |what: &str, e: &dyn std::fmt::Display| {
        tracing::error!(request_id, id, error = %e, "{what}");
        error(502, "the status could not be read; try again", request_id)
    };
    match store.exists(&image).await {
        Ok(true) => {
            let meta: Value = match store.get_json(&imagegen::store::sidecar_key(&image)).await {
                Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                Ok(None) => Value::Null,
                Err(e) => return upstream("reading the sidecar failed", &e),
            };
            let url = match store.presigned_url(&image, URL_TTL).await {
                Ok(u) => u,
                Err(e) => return upstream("presigning failed", &e),
            };
            return ok(json!({
                "status": DONE,
                "s3_uri": format!("s3://{}/{image}", store.bucket()),
                "url": url,
                "model": meta["model"],
                "seed": meta["seed"],
            }));
        }
        Ok(false) => {}
        Err(e) => return upstream("checking the image failed", &e),
    }
    let recorded = match store
        .get_json(&status::status_key(&generator.prefix, id))
        .await
    {
        Ok(r) => r,
        Err(e) => return upstream("reading the status failed", &e),
    };
    let Some(recorded) = recorded else {
        return error(404, "no image request has this id", request_id);
    };
    let recorded: Value = serde_json::from_slice(&recorded).unwrap_or(Value::Null);
    match recorded["status"].as_str() {
        Some(FAILED) => ok(json!({
            "status": FAILED,
            "reason": recorded["reason"].as_str().unwrap_or(status::REASON_OURS),
        })),
        _ => ok(json!({ "status": QUEUED })),
    }
}

fn ok(body: Value) -> Reply {
    Reply::json(200, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegen::fakes::{FakeModel, FakeQueue, FakeStore};
    use std::time::Duration;

    fn generator() -> Generator<FakeModel, FakeStore> {
        Generator::new(FakeModel::new(Duration::ZERO), FakeStore::default(), "11")
    }

    fn post(body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/images".into(),
            content_type: Some("application/json".into()),
            body: Some(body.as_bytes().to_vec()),
            request_id: Some("r1".into()),
        }
    }

    #[tokio::test]
    async fn a_submit_queues_the_prompt_records_it_and_answers_202_without_the_model() {
        let (g, q) = (generator(), FakeQueue::default());
        let r = submit(&post(r#"{"prompt": "a lighthouse"}"#), &g, Some(&q), "r1").await;
        assert_eq!(r.status, 202, "{r:?}");
        let id = r.body["id"].as_str().unwrap().to_owned();
        assert_eq!(r.body["status"], "queued");
        assert_eq!(r.body["status_url"], format!("/images/{id}"));
        assert_eq!(
            r.location.as_deref(),
            Some(format!("/images/{id}").as_str())
        );
        assert_eq!(
            r.to_lambda()["headers"]["location"],
            format!("/images/{id}")
        );
        let sent = q.sent.lock().unwrap().clone();
        assert_eq!(
            sent,
            [(id.clone(), r#"{"prompt":"a lighthouse"}"#.to_owned())]
        );
        assert_eq!(g.model.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        let s = status_of(&id, &g, "r2").await;
        assert_eq!(
            (s.status, s.body.clone()),
            (200, json!({"status": "queued"}))
        );
    }

    #[tokio::test]
    async fn bad_prompts_are_refused_like_the_synchronous_route_and_nothing_is_queued() {
        let (g, q) = (generator(), FakeQueue::default());
        for body in ["", "{}", r#"{"prompt": 3}"#, r#"{"prompt": "   "}"#] {
            let r = submit(&post(body), &g, Some(&q), "r1").await;
            assert_eq!(r.status, 400, "{body}: {r:?}");
            assert!(r.body["error"].is_string());
        }
        assert!(q.sent.lock().unwrap().is_empty());
        let failing = FakeQueue {
            failing: true,
            ..FakeQueue::default()
        };
        let r = submit(&post(r#"{"prompt": "a dog"}"#), &g, Some(&failing), "r1").await;
        assert_eq!(r.status, 502);
        assert!(
            !r.body.to_string().contains("AccessDenied"),
            "no internals: {r:?}"
        );
    }

    #[tokio::test]
    async fn status_is_done_with_the_picture_failed_with_its_reason_404_or_400() {
        let g = generator();
        let id = "6a96454d-ef25-4788-a79c-98f9157180bb";
        assert_eq!(status_of(id, &g, "r").await.status, 404);
        for bad in ["x", "../../secret", "6A96454D"] {
            assert_eq!(status_of(bad, &g, "r").await.status, 400, "{bad}");
        }
        let failed = json!({"status": "failed", "reason": status::REASON_FILTERED});
        g.store
            .put_json(
                &status::status_key("11", id),
                failed.to_string().into_bytes(),
            )
            .await
            .unwrap();
        let s = status_of(id, &g, "r").await;
        assert_eq!(
            s.body,
            json!({"status": "failed", "reason": status::REASON_FILTERED})
        );
        // The picture is stored: done, whatever the status object says.
        let prompt = imagegen::Prompt::parse("a dog", g.model.prompt_rule()).unwrap();
        g.generate(id, &prompt).await.unwrap();
        let s = status_of(id, &g, "r").await;
        assert_eq!(s.status, 200);
        assert_eq!(s.body["status"], "done");
        assert_eq!(
            s.body["s3_uri"],
            format!("s3://fake-bucket/11/images/{id}.png")
        );
        assert_eq!(s.body["model"], "fake.model-v1");
        assert!(s.body["seed"].is_u64(), "{s:?}");
        assert!(
            s.body["url"]
                .as_str()
                .unwrap()
                .contains("X-Amz-Expires=3600")
        );
    }
}
