//! The asynchronous path: `POST /images {"prompt"}` puts the prompt on the
//! queue and answers 202 at once with the id the worker names the image by;
//! `GET /images/{id}` says `done` (with the picture), `queued` or `failed`
//! (with a reason a user can read), 404 for an id never submitted, 400 for
//! one that cannot be an id. The status lives beside the images
//! (`couch_contract::status::status_key`): `queued` written at submit (only
//! if nothing is there yet), `failed` by the worker; a stored picture is
//! `done` whatever the status object says.
//!
//! Ownership: when API Gateway's authorizer named the caller (the stack's
//! `http.auth: iam|jwt`; [`Caller`]), `POST /images` records them as the
//! request's owner in the status object (and in the message, so the worker's
//! `failed` status keeps them); `GET /images/{id}` answers anyone else
//! exactly what an unknown id gets ([`not_found`]), so an id's existence
//! does not leak. Without an authorizer (`http.auth: none`) there is no
//! owner and whoever has the id reads the status, as before.

use imagegen::status::{self, DONE, FAILED, GENERATING, OWNER, Owner, QUEUED};
use imagegen::{Generator, ImageModel, ImageStore, PromptQueue};
use serde_json::{Value, json};

use crate::event::{Caller, Request};
use crate::reply::{Reply, URL_TTL, error, prompt_of};

/// What an id never submitted gets, and what anyone gets for a request that
/// is not theirs: the same status and the same body.
pub fn not_found(request_id: &str) -> Reply {
    error(404, "no image request has this id", request_id)
}

/// Whether `caller` may read a request whose status object is `recorded`
/// (`None`: there is none).
/// - An owner recorded: only that caller (an owner field this function
///   cannot read: nobody).
/// - A status without an owner (submitted with no authorizer): anyone.
/// - No status object at all: only an anonymous caller (no authorizer, as
///   before owners existed). A caller an authorizer ran for reads only what
///   is recorded as theirs or as nobody's: a picture whose status was never
///   written (a prompt sent straight to the queue, a failed status write) is
///   nobody's to show them.
pub fn may_read(recorded: Option<&Value>, caller: &Caller) -> bool {
    match recorded.map(|r| &r[OWNER]) {
        None => *caller == Caller::Anonymous,
        Some(Value::Null) => true,
        Some(owner) => {
            let owner = owner.as_str().and_then(Owner::decode);
            owner.is_some() && owner.as_ref() == caller.owner()
        }
    }
}

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
    if req.caller == Caller::Unnamed {
        tracing::warn!(
            request_id,
            "an authorizer ran but named no caller: nothing to own the request by"
        );
        return error(
            403,
            "the authorization names no caller to own this request",
            request_id,
        );
    }
    let owner = req.caller.owner().map(Owner::encode);
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
    // The owner travels with the prompt: the worker's `failed` status keeps
    // them even where this status was never written (see image_worker).
    let mut body = json!({ "prompt": prompt.as_str() });
    let mut queued = json!({ "status": QUEUED });
    if let Some(owner) = &owner {
        body[OWNER] = json!(owner);
        queued[OWNER] = json!(owner);
    }
    let body = body.to_string();
    let id = match queue.send(&body).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(request_id, error = %e, "queueing the prompt failed");
            return error(502, "the prompt could not be queued; try again", request_id);
        }
    };
    let key = status::status_key(&generator.prefix, &id);
    let queued = queued.to_string().into_bytes();
    // Only if nothing is there: a worker that already failed it wins.
    if let Err(e) = generator.store.put_json_if_absent(&key, queued).await {
        // The prompt is queued and will be made; only "queued" is not recorded
        // (so, with an owner, `GET` answers even them 404 unless the worker
        // records a failure: see `may_read`).
        tracing::warn!(request_id, id, error = %e, "the queued status was not written");
    }
    tracing::info!(
        request_id,
        id,
        prompt_chars = prompt.chars(),
        owned = owner.is_some(),
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

/// `GET /images/{id}` by `caller`: the status object is read first, and
/// nothing (not even whether the picture exists) is looked at for a caller
/// who may not read it ([`may_read`]).
pub async fn status_of<M: ImageModel, S: ImageStore>(
    id: &str,
    caller: &Caller,
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
    let recorded = match store
        .get_json(&status::status_key(&generator.prefix, id))
        .await
    {
        // A status object that is no JSON object (only the functions write
        // them) is read as one whose owner cannot be read: nobody's to show.
        Ok(r) => r.map(|bytes| match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if v.is_object() => v,
            _ => json!({ OWNER: false }),
        }),
        Err(e) => return upstream("reading the status failed", &e),
    };
    if !may_read(recorded.as_ref(), caller) {
        tracing::info!(
            request_id,
            id,
            "not the request's owner: answered as unknown"
        );
        return not_found(request_id);
    }
    // The picture and, for a request still queued, the worker's `generating`
    // mark at once: a poll of a queued request costs one round trip, not two.
    let queued = recorded
        .as_ref()
        .is_some_and(|r| r["status"].as_str() != Some(FAILED));
    let mark = status::generating_key(&generator.prefix, id);
    let (exists, marked) = tokio::join!(store.exists(&image), async {
        if queued {
            store.get_json(&mark).await.map(|m| m.is_some())
        } else {
            Ok(false)
        }
    });
    match exists {
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
    let Some(recorded) = recorded else {
        return not_found(request_id);
    };
    if recorded["status"].as_str() == Some(FAILED) {
        return ok(json!({
            "status": FAILED,
            "reason": recorded["reason"].as_str().unwrap_or(status::REASON_OURS),
        }));
    }
    // Queued; `generating` once the worker marked its model call started. A
    // mark that cannot be read only leaves it `queued`.
    match marked {
        Ok(true) => ok(json!({ "status": GENERATING })),
        Ok(false) => ok(json!({ "status": QUEUED })),
        Err(e) => {
            tracing::warn!(request_id, id, error = %e, "reading the generating mark failed");
            ok(json!({ "status": QUEUED }))
        }
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
        post_by(body, Caller::Anonymous)
    }

    fn post_by(body: &str, caller: Caller) -> Request {
        Request {
            method: "POST".into(),
            path: "/images".into(),
            content_type: Some("application/json".into()),
            body: Some(body.as_bytes().to_vec()),
            request_id: Some("r1".into()),
            caller,
        }
    }

    const ANA_ARN: &str = "arn:aws:sts::123456789012:assumed-role/couch-users/ana";

    fn ana() -> Caller {
        Caller::Known(Owner::Jwt("auth0|ana".into()))
    }
    fn bob() -> Caller {
        Caller::Known(Owner::Jwt("auth0|bob".into()))
    }

    /// Submits "a lighthouse" as `caller`: the id.
    async fn submitted(
        g: &Generator<FakeModel, FakeStore>,
        q: &FakeQueue,
        caller: Caller,
    ) -> String {
        let r = submit(
            &post_by(r#"{"prompt": "a lighthouse"}"#, caller),
            g,
            Some(q),
            "r1",
        )
        .await;
        assert_eq!(r.status, 202, "{r:?}");
        r.body["id"].as_str().unwrap().to_owned()
    }

    fn recorded(g: &Generator<FakeModel, FakeStore>, id: &str) -> Value {
        serde_json::from_slice(&g.store.stored_json(&status::status_key("11", id)).unwrap())
            .unwrap()
    }

    /// What an id never submitted gets, asked by `caller` under request id `rid`.
    async fn unknown(g: &Generator<FakeModel, FakeStore>, caller: &Caller, rid: &str) -> Reply {
        let never = "6a96454d-ef25-4788-a79c-0000deadbeef";
        let r = status_of(never, caller, g, rid).await;
        assert_eq!(r.status, 404);
        r
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
        let s = status_of(&id, &Caller::Anonymous, &g, "r2").await;
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
        let anyone = Caller::Anonymous;
        assert_eq!(status_of(id, &anyone, &g, "r").await.status, 404);
        for bad in ["x", "../../secret", "6A96454D"] {
            assert_eq!(status_of(bad, &anyone, &g, "r").await.status, 400, "{bad}");
        }
        let failed = json!({"status": "failed", "reason": status::REASON_FILTERED});
        g.store
            .put_json(
                &status::status_key("11", id),
                failed.to_string().into_bytes(),
            )
            .await
            .unwrap();
        let s = status_of(id, &anyone, &g, "r").await;
        assert_eq!(
            s.body,
            json!({"status": "failed", "reason": status::REASON_FILTERED})
        );
        // The picture is stored: done, whatever the status object says.
        let prompt = imagegen::Prompt::parse("a dog", g.model.prompt_rule()).unwrap();
        g.generate(id, &prompt).await.unwrap();
        let s = status_of(id, &anyone, &g, "r").await;
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

    #[tokio::test]
    async fn a_queued_request_is_generating_once_the_worker_marks_it_and_failed_wins() {
        let (g, q) = (generator(), FakeQueue::default());
        let id = submitted(&g, &q, Caller::Anonymous).await;
        let anyone = Caller::Anonymous;
        assert_eq!(
            status_of(&id, &anyone, &g, "r").await.body["status"],
            QUEUED
        );
        let mark = status::generating_key("11", &id);
        g.store.put_json(&mark, b"{}".to_vec()).await.unwrap();
        let s = status_of(&id, &anyone, &g, "r").await;
        assert_eq!((s.status, &s.body), (200, &json!({"status": GENERATING})));
        // The worker gave it up: failed, with its reason, mark or not.
        let failed = json!({"status": FAILED, "reason": status::REASON_FILTERED});
        let key = status::status_key("11", &id);
        g.store
            .put_json(&key, failed.to_string().into_bytes())
            .await
            .unwrap();
        assert_eq!(
            status_of(&id, &anyone, &g, "r").await.body["status"],
            FAILED
        );
        // The mark tells nothing to whoever may not read the request.
        let ana_id = submitted(&g, &q, ana()).await;
        let mark = status::generating_key("11", &ana_id);
        g.store.put_json(&mark, b"{}".to_vec()).await.unwrap();
        assert_eq!(status_of(&ana_id, &bob(), &g, "r").await.status, 404);
        assert_eq!(
            status_of(&ana_id, &ana(), &g, "r").await.body["status"],
            GENERATING
        );
    }

    #[tokio::test]
    async fn the_owner_is_recorded_from_a_jwt_sub_or_an_iam_arn() {
        let (g, q) = (generator(), FakeQueue::default());
        let by_token = submitted(&g, &q, ana()).await;
        let by_iam = submitted(&g, &q, Caller::Known(Owner::Iam(ANA_ARN.into()))).await;
        assert_eq!(
            recorded(&g, &by_token),
            json!({"status": "queued", "owner": "jwt:auth0|ana"})
        );
        assert_eq!(
            recorded(&g, &by_iam),
            json!({"status": "queued", "owner": format!("iam:{ANA_ARN}")})
        );
        // The owner travels with the prompt, for the worker's `failed` status.
        let sent = q.sent.lock().unwrap().clone();
        let body: Value = serde_json::from_str(&sent[0].1).unwrap();
        assert_eq!(
            body,
            json!({"prompt": "a lighthouse", "owner": "jwt:auth0|ana"})
        );
        let body: Value = serde_json::from_str(&sent[1].1).unwrap();
        assert_eq!(body["owner"], format!("iam:{ANA_ARN}"));
    }

    #[tokio::test]
    async fn the_owner_reads_their_request_and_anyone_else_gets_what_an_unknown_id_gets() {
        let (g, q) = (generator(), FakeQueue::default());
        let id = submitted(&g, &q, ana()).await;
        let s = status_of(&id, &ana(), &g, "r2").await;
        assert_eq!((s.status, s.body), (200, json!({"status": "queued"})));
        let iam_ana = Caller::Known(Owner::Iam("auth0|ana".into()));
        for other in [bob(), iam_ana, Caller::Anonymous, Caller::Unnamed] {
            assert_eq!(
                status_of(&id, &other, &g, "r3").await,
                unknown(&g, &other, "r3").await,
                "{other:?}"
            );
        }
        // Done: the picture is shown to its owner only, the owner checked first.
        let prompt = imagegen::Prompt::parse("a lighthouse", g.model.prompt_rule()).unwrap();
        g.generate(&id, &prompt).await.unwrap();
        let s = status_of(&id, &ana(), &g, "r4").await;
        assert_eq!((s.status, &s.body["status"]), (200, &json!("done")));
        for other in [bob(), Caller::Anonymous] {
            let r = status_of(&id, &other, &g, "r5").await;
            assert_eq!(r, unknown(&g, &other, "r5").await, "{other:?}");
            assert!(!r.body.to_string().contains(&id), "{r:?}");
        }
        // Failed (as the worker writes it, owner kept): the owner only.
        let failed = json!({"status": "failed", "reason": status::REASON_FILTERED, "owner": "jwt:auth0|ana"});
        let other_id = "6a96454d-ef25-4788-a79c-00000000aaaa";
        g.store
            .put_json(
                &status::status_key("11", other_id),
                failed.to_string().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(
            status_of(other_id, &ana(), &g, "r").await.body["status"],
            "failed"
        );
        assert_eq!(
            status_of(other_id, &bob(), &g, "r").await,
            unknown(&g, &bob(), "r").await
        );
    }

    #[tokio::test]
    async fn without_an_authorizer_there_is_no_owner_and_whoever_has_the_id_reads_it() {
        let (g, q) = (generator(), FakeQueue::default());
        let id = submitted(&g, &q, Caller::Anonymous).await;
        assert_eq!(recorded(&g, &id), json!({"status": "queued"}));
        assert_eq!(q.sent.lock().unwrap()[0].1, r#"{"prompt":"a lighthouse"}"#);
        for anyone in [Caller::Anonymous, bob(), Caller::Unnamed] {
            let s = status_of(&id, &anyone, &g, "r").await;
            assert_eq!(
                (s.status, s.body),
                (200, json!({"status": "queued"})),
                "{anyone:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_picture_without_a_status_is_shown_only_where_no_authorizer_runs() {
        // A prompt sent straight to the queue: a picture, no status object.
        let g = generator();
        let id = "6a96454d-ef25-4788-a79c-00000000bbbb";
        let prompt = imagegen::Prompt::parse("a dog", g.model.prompt_rule()).unwrap();
        g.generate(id, &prompt).await.unwrap();
        assert_eq!(
            status_of(id, &Caller::Anonymous, &g, "r").await.body["status"],
            "done"
        );
        for named in [ana(), Caller::Unnamed] {
            assert_eq!(
                status_of(id, &named, &g, "r").await,
                unknown(&g, &named, "r").await
            );
        }
        // A status object whose owner cannot be read: nobody's to show.
        g.store
            .put_json(
                &status::status_key("11", id),
                b"{\"status\": \"queued\", \"owner\": 7}".to_vec(),
            )
            .await
            .unwrap();
        for anyone in [Caller::Anonymous, ana()] {
            assert_eq!(status_of(id, &anyone, &g, "r").await.status, 404);
        }
    }

    #[tokio::test]
    async fn an_authorizer_that_names_nobody_submits_nothing() {
        let (g, q) = (generator(), FakeQueue::default());
        let r = submit(
            &post_by(r#"{"prompt": "a dog"}"#, Caller::Unnamed),
            &g,
            Some(&q),
            "r1",
        )
        .await;
        assert_eq!(r.status, 403, "{r:?}");
        assert!(r.body["error"].is_string());
        assert!(q.sent.lock().unwrap().is_empty());
    }

    /// From API Gateway's event to the answer: the request context names the caller.
    #[tokio::test]
    async fn events_name_their_caller_through_respond() {
        let (g, q) = (generator(), FakeQueue::default());
        let event = |method: &str, path: &str, sub: Option<&str>| {
            let mut e = json!({
                "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
                "headers": {"content-type": "application/json"},
                "requestContext": {
                    "accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x",
                    "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
                    "requestId": "req", "routeKey": format!("{method} {path}"), "stage": "$default", "time": "x", "timeEpoch": 0
                },
                "body": if method == "POST" { json!(r#"{"prompt": "a lighthouse"}"#) } else { Value::Null },
                "isBase64Encoded": false
            });
            if let Some(sub) = sub {
                e["requestContext"]["authorizer"] =
                    json!({"jwt": {"claims": {"sub": sub}, "scopes": null}});
            }
            e
        };
        let answer = crate::respond(event("POST", "/images", Some("ana")), &g, Some(&q), "l").await;
        assert_eq!(answer["statusCode"], 202, "{answer}");
        let id = serde_json::from_str::<Value>(answer["body"].as_str().unwrap()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(recorded(&g, &id)["owner"], "jwt:ana");
        let path = format!("/images/{id}");
        let get = |sub| crate::respond(event("GET", &path, sub), &g, Some(&q), "l");
        assert_eq!(get(Some("ana")).await["statusCode"], 200);
        let unknown = crate::respond(
            event(
                "GET",
                "/images/6a96454d-ef25-4788-a79c-0000deadbeef",
                Some("bob"),
            ),
            &g,
            Some(&q),
            "l",
        )
        .await;
        assert_eq!(get(Some("bob")).await, unknown);
        assert_eq!(get(None).await["statusCode"], 404);
    }
}
