//! A stand-in for Amazon Bedrock: the runtime's `InvokeModel`
//! (`POST /model/{modelId}/invoke`) in each model family's wire format, and
//! the control-plane reads the provisioner makes (`GetFoundationModel`,
//! `GetInferenceProfile`, `GetFoundationModelAvailability`,
//! `ListFoundationModels`), answered from a [`Catalog`] whose entries a test
//! (or `model-standin --model-state`) can switch to Legacy, end-of-life,
//! unknown or not subscribed.
//!
//! `InvokeModel` answers by the family of the model id in the path
//! (`couch_contract::model::family_of`) and by the prompt:
//! - `FILTER`: refused by the content filter: Amazon's family answers 400
//!   `ValidationException`; Stability answers 200 with
//!   `finish_reasons: ["Filter reason: prompt"]` (as AWS documents);
//! - `FILTER_OUTPUT`: the generated image is blocked: Amazon's family answers
//!   200 with an `error` string and no image; Stability 200 with
//!   `"Filter reason: output image"`;
//! - `THROTTLE`: 429 `ThrottlingException` (both);
//! - `BROKEN`: Amazon's family 500 `InternalServerException`; Stability 200
//!   with `finish_reasons: ["Inference error"]`;
//! - otherwise: 200 with a real PNG of the requested size, painted from the
//!   prompt and the seed ([`crate::png::paint`]), after the configured delay.
//!
//! With [`Options::throttle_every`] = n, every n-th request is throttled
//! (429), whatever its prompt: the 429 path, shown locally on request. With
//! [`Options::max_in_flight`] = n the stand-in has a capacity: a call beyond
//! n at once is throttled. `GET /_standin/stats` answers the counts
//! (`accepted`, `throttled`, `most_in_flight`), for benchmarks in other
//! processes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use couch_contract::model::{Family, base_model_id, family_of, is_inference_profile};
use serde_json::{Value, json};

use crate::http::{self, Request, Response};

/// The account the stand-in's inference-profile ARNs carry (moto's default).
pub const ACCOUNT: &str = "123456789012";

/// The prompt text of a request body, in either family's shape.
pub fn prompt_text(body: &Value) -> &str {
    body["textToImageParams"]["text"]
        .as_str()
        .or_else(|| body["prompt"].as_str())
        .unwrap_or_default()
}

/// What the stand-in paints for a request body (either family's shape).
pub fn picture_for(body: &Value) -> Vec<u8> {
    let text = prompt_text(body);
    if body.get("textToImageParams").is_some() {
        let conf = &body["imageGenerationConfig"];
        let dim = |k: &str| {
            conf[k]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| (1..=4096).contains(v))
                .unwrap_or(512)
        };
        crate::png::paint(
            text,
            conf["seed"].as_u64().unwrap_or(0),
            dim("width"),
            dim("height"),
        )
    } else {
        // Stability: 1:1 is 1024 x 1024.
        crate::png::paint(text, body["seed"].as_u64().unwrap_or(0), 1024, 1024)
    }
}

/// How the stand-in behaves besides the prompt markers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Answer time of a successful call.
    pub delay: Duration,
    /// Throttle every n-th request (429 ThrottlingException).
    pub throttle_every: Option<u64>,
    /// A capacity: a call that would make more than this many
    /// `InvokeModel` calls in flight at once is throttled (429
    /// ThrottlingException, as Bedrock answers what exceeds an account's
    /// quota), like the real service's concurrency limit.
    pub max_in_flight: Option<usize>,
}

/// A model's lifecycle and access, as the control plane reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelState {
    Active,
    /// `LEGACY` with this end-of-life date (RFC 3339), still in the future.
    Legacy {
        end_of_life: String,
    },
    /// `LEGACY` with an end-of-life date in the past.
    EndOfLife {
        end_of_life: String,
    },
    /// Not offered: `ResourceNotFoundException`.
    Unknown,
    /// Active, but the account has no Marketplace agreement for it yet.
    NotSubscribed,
}

impl std::str::FromStr for ModelState {
    type Err = String;
    /// `active`, `legacy`, `eol`, `unknown`, `unsubscribed`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "active" => ModelState::Active,
            "legacy" => ModelState::Legacy {
                end_of_life: "2099-06-30T00:00:00Z".into(),
            },
            "eol" => ModelState::EndOfLife {
                end_of_life: "2026-06-30T00:00:00Z".into(),
            },
            "unknown" => ModelState::Unknown,
            "unsubscribed" => ModelState::NotSubscribed,
            other => return Err(format!("unknown model state {other:?}")),
        })
    }
}

/// One foundation model the stand-in knows.
#[derive(Debug, Clone)]
pub struct CatalogModel {
    pub name: &'static str,
    pub provider: &'static str,
    pub output: &'static str,
    pub state: ModelState,
}

/// The foundation models and their states. The defaults follow what AWS
/// publishes on bedrock/latest/userguide/model-lifecycle.html (and the
/// Legacy page) as read 2026-12: Titan Image Generator v1 and G1 v2
/// (end-of-life 2026-06-30) and Nova Canvas v1 (end-of-life 2026-09-30) are
/// past end-of-life; the Stability AI image models are Active and are
/// Marketplace models (subscribed here unless switched).
#[derive(Debug, Clone)]
pub struct Catalog {
    pub models: BTreeMap<String, CatalogModel>,
    /// Inference profile id → the Regions it routes to (default: by geography).
    pub routes: BTreeMap<String, Vec<String>>,
}

impl Default for Catalog {
    fn default() -> Self {
        let eol = |date: &str| ModelState::EndOfLife {
            end_of_life: format!("{date}T00:00:00Z"),
        };
        let entries = [
            (
                "amazon.titan-image-generator-v1",
                "Titan Image Generator G1",
                "Amazon",
                "IMAGE",
                eol("2026-06-30"),
            ),
            (
                "amazon.titan-image-generator-v2:0",
                "Titan Image Generator G1 v2",
                "Amazon",
                "IMAGE",
                eol("2026-06-30"),
            ),
            (
                "amazon.nova-canvas-v1:0",
                "Nova Canvas",
                "Amazon",
                "IMAGE",
                eol("2026-09-30"),
            ),
            (
                "stability.stable-image-core-v1:1",
                "Stable Image Core 1.1",
                "Stability AI",
                "IMAGE",
                ModelState::Active,
            ),
            (
                "stability.stable-image-ultra-v1:1",
                "Stable Image Ultra 1.1",
                "Stability AI",
                "IMAGE",
                ModelState::Active,
            ),
            (
                "stability.sd3-5-large-v1:0",
                "Stable Diffusion 3.5 Large",
                "Stability AI",
                "IMAGE",
                ModelState::Active,
            ),
            (
                "amazon.titan-text-express-v1",
                "Titan Text G1 - Express",
                "Amazon",
                "TEXT",
                ModelState::Active,
            ),
        ];
        Catalog {
            models: entries
                .into_iter()
                .map(|(id, name, provider, output, state)| {
                    (
                        id.to_owned(),
                        CatalogModel {
                            name,
                            provider,
                            output,
                            state,
                        },
                    )
                })
                .collect(),
            routes: BTreeMap::new(),
        }
    }
}

/// The stand-in's own routing of a geography prefix (not AWS's list for any model).
fn default_routes(profile: &str) -> Vec<String> {
    let regions: &[&str] = match profile.split('.').next().unwrap_or_default() {
        "us" => &["us-east-1", "us-east-2", "us-west-2"],
        "eu" => &["eu-central-1", "eu-west-1", "eu-west-3"],
        "apac" => &["ap-northeast-1", "ap-south-1", "ap-southeast-2"],
        _ => &["us-east-1", "eu-west-1", "ap-northeast-1"],
    };
    regions.iter().map(|r| (*r).to_owned()).collect()
}

#[derive(Clone, Default)]
pub struct FakeBedrock {
    /// Every InvokeModel request body received, with the model id of its path.
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
    /// Calls answered with a throttling error.
    pub throttled: Arc<std::sync::atomic::AtomicUsize>,
    /// Calls answered with a picture.
    pub accepted: Arc<std::sync::atomic::AtomicUsize>,
    /// Picture calls in flight now, and the most at once.
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    pub most_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// What the control plane answers.
    pub catalog: Arc<Mutex<Catalog>>,
    pub endpoint: String,
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(status, &json!({"message": message})).with_header("x-amzn-ErrorType", kind)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The Region a SigV4-signed request was signed for (`Credential=.../REGION/bedrock/...`).
fn signed_region(req: &Request) -> String {
    req.header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("us-east-1")
        .to_owned()
}

fn decode_path(s: &str) -> String {
    s.replace("%3A", ":")
        .replace("%3a", ":")
        .replace("%2F", "/")
}

fn lifecycle(state: &ModelState) -> Value {
    match state {
        ModelState::Legacy { end_of_life } | ModelState::EndOfLife { end_of_life } => {
            json!({"status": "LEGACY", "endOfLifeTime": end_of_life})
        }
        _ => json!({"status": "ACTIVE"}),
    }
}

fn model_json(id: &str, m: &CatalogModel, region: &str) -> Value {
    json!({
        "modelArn": format!("arn:aws:bedrock:{region}::foundation-model/{id}"),
        "modelId": id,
        "modelName": m.name,
        "providerName": m.provider,
        "inputModalities": ["TEXT"],
        "outputModalities": [m.output],
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": lifecycle(&m.state),
    })
}

impl FakeBedrock {
    pub async fn start(delay: Duration) -> FakeBedrock {
        FakeBedrock::start_with(Options {
            delay,
            ..Options::default()
        })
        .await
    }

    pub async fn start_with(options: Options) -> FakeBedrock {
        FakeBedrock::start_on(0, options).await
    }

    /// On a given 127.0.0.1 port (0: any free one).
    pub async fn start_on(port: u16, options: Options) -> FakeBedrock {
        FakeBedrock::start_with_catalog(port, options, Catalog::default()).await
    }

    pub async fn start_with_catalog(port: u16, options: Options, catalog: Catalog) -> FakeBedrock {
        let mut fake = FakeBedrock {
            catalog: Arc::new(Mutex::new(catalog)),
            ..FakeBedrock::default()
        };
        let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let state = fake.clone();
        let addr = http::serve_on(
            port,
            Arc::new(move |req: Request| {
                let state = state.clone();
                let served = Arc::clone(&served);
                Box::pin(async move {
                    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
                    let path = path.to_owned();
                    let query = query.to_owned();
                    if let Some(model) = path
                        .strip_prefix("/model/")
                        .and_then(|p| p.strip_suffix("/invoke"))
                    {
                        let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        return state.invoke(&decode_path(model), &req, n, options).await;
                    }
                    if path == "/_standin/stats" {
                        return Response::json(200, &state.stats());
                    }
                    state.control_plane(&req, &path, &query)
                })
            }),
        )
        .await;
        fake.endpoint = format!("http://{addr}");
        fake
    }

    /// A stand-in on its own thread and runtime, serving until the process
    /// ends: for tests that block their own runtime (running the provisioner
    /// binary and waiting for it) while the binary calls the stand-in.
    pub fn start_detached(options: Options) -> FakeBedrock {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let fake = FakeBedrock::start_with(options).await;
                if tx.send(fake).is_ok() {
                    std::future::pending::<()>().await;
                }
            });
        });
        rx.recv().expect("the model stand-in starts")
    }

    /// Sets a model's state (adding it, as an image model, if unknown).
    pub fn set_model(&self, id: &str, state: ModelState) {
        let mut c = lock(&self.catalog);
        c.models
            .entry(id.to_owned())
            .and_modify(|m| m.state = state.clone())
            .or_insert(CatalogModel {
                name: "stand-in model",
                provider: "Stand-in",
                output: "IMAGE",
                state,
            });
    }

    /// Sets the Regions an inference profile routes to.
    pub fn set_routes(&self, profile: &str, regions: &[&str]) {
        lock(&self.catalog).routes.insert(
            profile.to_owned(),
            regions.iter().map(|r| (*r).to_owned()).collect(),
        );
    }

    async fn invoke(&self, model: &str, req: &Request, n: u64, options: Options) -> Response {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        lock(&self.calls).push((model.to_owned(), body.clone()));
        let Some(family) = family_of(model) else {
            return error(
                400,
                "ValidationException",
                "The provided model identifier is invalid.",
            );
        };
        let text = prompt_text(&body).to_owned();
        let stability = family == Family::Stability;
        let refusal = |reason: &str| Response::json(200, &json!({"finish_reasons": [reason]}));
        if text.contains("FILTER_OUTPUT") {
            return if stability {
                refusal("Filter reason: output image")
            } else {
                Response::json(
                    200,
                    &json!({"images": [], "error": "The generated image has been blocked by our content filters."}),
                )
            };
        }
        if text.contains("FILTER") {
            return if stability {
                refusal("Filter reason: prompt")
            } else {
                error(
                    400,
                    "ValidationException",
                    "This request has been blocked by our content filters.",
                )
            };
        }
        if text.contains("THROTTLE")
            || options
                .throttle_every
                .is_some_and(|every| every > 0 && n.is_multiple_of(every))
        {
            self.throttled
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return error(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
        }
        if text.contains("BROKEN") {
            return if stability {
                Response::json(
                    200,
                    &json!({"seeds": [body["seed"]], "finish_reasons": ["Inference error"], "images": []}),
                )
            } else {
                error(
                    500,
                    "InternalServerException",
                    "secret internal detail 12345",
                )
            };
        }
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        if options.max_in_flight.is_some_and(|max| now > max) {
            self.in_flight.fetch_sub(1, SeqCst);
            self.throttled.fetch_add(1, SeqCst);
            return error(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
        }
        self.most_in_flight.fetch_max(now, SeqCst);
        /// Frees the call's place however the answer ends.
        struct Leave<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _leave = Leave(&self.in_flight);
        // The delay is the answer's time: painting is part of it.
        let answer_by = tokio::time::Instant::now() + options.delay;
        use base64::Engine as _;
        // Painting and deflating a 1024 x 1024 PNG takes milliseconds of CPU:
        // off the runtime's workers, so a busy stand-in never stalls the
        // answers it is sending (the SDK's stalled-stream protection would
        // retry them, and the model would be called twice for one image).
        let paint = body.clone();
        let picture = tokio::task::spawn_blocking(move || picture_for(&paint))
            .await
            .unwrap_or_default();
        tokio::time::sleep_until(answer_by).await;
        self.accepted.fetch_add(1, SeqCst);
        let image = base64::engine::general_purpose::STANDARD.encode(picture);
        if stability {
            Response::json(
                200,
                &json!({"seeds": [body["seed"]], "finish_reasons": [null], "images": [image]}),
            )
        } else {
            Response::json(200, &json!({"images": [image], "error": null}))
        }
    }

    fn control_plane(&self, req: &Request, path: &str, query: &str) -> Response {
        let region = signed_region(req);
        let catalog = lock(&self.catalog).clone();
        let not_found = |what: &str| {
            error(
                404,
                "ResourceNotFoundException",
                &format!("The model {what} could not be found."),
            )
        };
        let known = |id: &str| {
            catalog
                .models
                .get(id)
                .filter(|m| m.state != ModelState::Unknown)
        };
        if req.method != "GET" {
            return error(404, "UnknownOperationException", "not served");
        }
        if path == "/foundation-models" {
            let modality = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("byOutputModality="))
                .map(str::to_owned);
            let summaries: Vec<Value> = catalog
                .models
                .iter()
                .filter(|(_, m)| m.state != ModelState::Unknown)
                .filter(|(_, m)| modality.as_deref().is_none_or(|o| o == m.output))
                .map(|(id, m)| model_json(id, m, &region))
                .collect();
            return Response::json(200, &json!({"modelSummaries": summaries}));
        }
        if let Some(id) = path.strip_prefix("/foundation-models/") {
            let id = decode_path(id);
            return match known(&id) {
                Some(m) => {
                    Response::json(200, &json!({"modelDetails": model_json(&id, m, &region)}))
                }
                None => not_found(&id),
            };
        }
        if let Some(id) = path.strip_prefix("/foundation-model-availability/") {
            let id = decode_path(id);
            let Some(m) = known(&id) else {
                return not_found(&id);
            };
            let agreement = if m.state == ModelState::NotSubscribed {
                "NOT_AVAILABLE"
            } else {
                "AVAILABLE"
            };
            return Response::json(
                200,
                &json!({
                    "modelId": id,
                    "agreementAvailability": {"status": agreement},
                    "authorizationStatus": "AUTHORIZED",
                    "entitlementAvailability": "AVAILABLE",
                    "regionAvailability": "AVAILABLE",
                }),
            );
        }
        if let Some(id) = path.strip_prefix("/inference-profiles/") {
            let id = decode_path(id);
            if !is_inference_profile(&id) || known(base_model_id(&id)).is_none() {
                return error(
                    404,
                    "ResourceNotFoundException",
                    &format!("The inference profile {id} could not be found."),
                );
            }
            let routes = catalog
                .routes
                .get(&id)
                .cloned()
                .unwrap_or_else(|| default_routes(&id));
            let base = base_model_id(&id);
            return Response::json(
                200,
                &json!({
                    "inferenceProfileArn": format!("arn:aws:bedrock:{region}:{ACCOUNT}:inference-profile/{id}"),
                    "inferenceProfileId": id,
                    "inferenceProfileName": format!("{} (cross-Region)", base),
                    "status": "ACTIVE",
                    "type": "SYSTEM_DEFINED",
                    "models": routes.iter().map(|r| json!({"modelArn": format!("arn:aws:bedrock:{r}::foundation-model/{base}")})).collect::<Vec<_>>(),
                }),
            );
        }
        error(404, "UnknownOperationException", "not served")
    }

    /// The counts `GET /_standin/stats` answers.
    pub fn stats(&self) -> Value {
        use std::sync::atomic::Ordering::SeqCst;
        json!({
            "accepted": self.accepted.load(SeqCst),
            "throttled": self.throttled.load(SeqCst),
            "most_in_flight": self.most_in_flight.load(SeqCst),
            "calls": self.call_count(),
        })
    }

    /// How many calls were throttled.
    pub fn throttled(&self) -> usize {
        self.throttled.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn call_count(&self) -> usize {
        lock(&self.calls).len()
    }

    /// The picture the call for prompt `text` was answered with.
    pub fn picture_for_prompt(&self, text: &str) -> Option<Vec<u8>> {
        lock(&self.calls)
            .iter()
            .find(|(_, body)| prompt_text(body) == text)
            .map(|(_, body)| picture_for(body))
    }

    /// The picture the last call was answered with.
    pub fn last_picture(&self) -> Option<Vec<u8>> {
        lock(&self.calls).last().map(|(_, body)| picture_for(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn request(endpoint: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
        let addr = endpoint.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: AWS4-HMAC-SHA256 Credential=test/20261202/us-west-2/bedrock/aws4_request\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        // The server keeps connections alive: read until the body is complete.
        let mut buf = [0u8; 65536];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).into_owned();
            if let Some(split) = text.find("\r\n\r\n") {
                let len: usize = text[..split]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if raw.len() >= split + 4 + len {
                    let status = text[9..12].parse().unwrap();
                    let body = &raw[split + 4..split + 4 + len];
                    return (status, serde_json::from_slice(body).unwrap_or(Value::Null));
                }
            }
            if n == 0 {
                panic!("connection closed early");
            }
        }
    }

    async fn titan(endpoint: &str, text: &str) -> (u16, Value) {
        let body = json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": text},
            "imageGenerationConfig": {"width": 32, "height": 16, "seed": 9}});
        request(
            endpoint,
            "POST",
            "/model/amazon.titan-image-generator-v1/invoke",
            &body.to_string(),
        )
        .await
    }

    async fn stability(endpoint: &str, text: &str) -> (u16, Value) {
        let body =
            json!({"prompt": text, "seed": 9, "aspect_ratio": "1:1", "output_format": "png"});
        request(
            endpoint,
            "POST",
            "/model/us.stability.stable-image-core-v1%3A1/invoke",
            &body.to_string(),
        )
        .await
    }

    fn png_of(v: &Value) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(v["images"][0].as_str().unwrap())
            .unwrap()
    }

    #[tokio::test]
    async fn pictures_follow_the_request_and_every_nth_call_is_throttled() {
        let b = FakeBedrock::start_with(Options {
            delay: Duration::ZERO,
            throttle_every: Some(2),
            ..Options::default()
        })
        .await;
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(titan(&b.endpoint, "a lighthouse").await.0);
        }
        assert_eq!(statuses, [200, 429, 200, 429]);
        let (status, v) = titan(&b.endpoint, "a lighthouse").await;
        assert_eq!(status, 200);
        assert_eq!(png_of(&v), crate::png::paint("a lighthouse", 9, 32, 16));
        let (status, _) = titan(&b.endpoint, "please FILTER me").await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn a_capacity_throttles_the_calls_beyond_it_in_each_family() {
        let b = FakeBedrock::start_with(Options {
            delay: Duration::from_millis(400),
            max_in_flight: Some(2),
            ..Options::default()
        })
        .await;
        // Five at once, of both families: two are painted, three throttled.
        let calls: Vec<_> = (0..5)
            .map(|i| {
                let endpoint = b.endpoint.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        titan(&endpoint, "a lighthouse").await.0
                    } else {
                        stability(&endpoint, "a lighthouse").await.0
                    }
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for c in calls {
            statuses.push(c.await.unwrap());
        }
        statuses.sort();
        assert_eq!(statuses, [200, 200, 429, 429, 429]);
        let (status, _) = stability(&b.endpoint, "x").await;
        assert_eq!(status, 200, "places are freed");
        assert_eq!(
            b.stats(),
            json!({"accepted": 3, "throttled": 3, "most_in_flight": 2, "calls": 6})
        );
        // Served over HTTP too, for benchmarks in another process.
        let (status, v) = request(&b.endpoint, "GET", "/_standin/stats", "").await;
        assert_eq!((status, v["accepted"].clone()), (200, json!(3)));
    }

    #[tokio::test]
    async fn each_family_answers_in_its_own_shape() {
        let b = FakeBedrock::start(Duration::ZERO).await;
        let (status, v) = stability(&b.endpoint, "a lighthouse").await;
        assert_eq!(status, 200);
        assert_eq!(v["finish_reasons"], json!([null]));
        assert_eq!(v["seeds"], json!([9]));
        assert_eq!(png_of(&v), crate::png::paint("a lighthouse", 9, 1024, 1024));
        assert_eq!(b.picture_for_prompt("a lighthouse"), Some(png_of(&v)));
        let (status, v) = stability(&b.endpoint, "FILTER me").await;
        assert_eq!(
            (status, v),
            (200, json!({"finish_reasons": ["Filter reason: prompt"]}))
        );
        let (_, v) = stability(&b.endpoint, "BROKEN").await;
        assert_eq!(v["finish_reasons"], json!(["Inference error"]));
        let (status, _) = stability(&b.endpoint, "THROTTLE").await;
        assert_eq!(status, 429);
        let (status, v) = titan(&b.endpoint, "FILTER_OUTPUT").await;
        assert_eq!(status, 200);
        assert!(v["error"].as_str().unwrap().contains("content filters"));
        let (status, _) = request(&b.endpoint, "POST", "/model/meta.llama3/invoke", "{}").await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn the_control_plane_reports_lifecycle_access_and_routes() {
        let b = FakeBedrock::start(Duration::ZERO).await;
        let (s, v) = request(
            &b.endpoint,
            "GET",
            "/foundation-models/stability.stable-image-core-v1%3A1",
            "",
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["modelDetails"]["modelLifecycle"]["status"], "ACTIVE");
        assert_eq!(
            v["modelDetails"]["modelArn"],
            "arn:aws:bedrock:us-west-2::foundation-model/stability.stable-image-core-v1:1"
        );
        let (_, v) = request(
            &b.endpoint,
            "GET",
            "/foundation-models/amazon.nova-canvas-v1%3A0",
            "",
        )
        .await;
        assert_eq!(
            v["modelDetails"]["modelLifecycle"]["endOfLifeTime"],
            "2026-09-30T00:00:00Z"
        );
        b.set_model("stability.stable-image-core-v1:1", ModelState::Unknown);
        let (s, _) = request(
            &b.endpoint,
            "GET",
            "/foundation-models/stability.stable-image-core-v1%3A1",
            "",
        )
        .await;
        assert_eq!(s, 404);
        b.set_model("stability.sd3-5-large-v1:0", ModelState::NotSubscribed);
        let (_, v) = request(
            &b.endpoint,
            "GET",
            "/foundation-model-availability/stability.sd3-5-large-v1%3A0",
            "",
        )
        .await;
        assert_eq!(v["agreementAvailability"]["status"], "NOT_AVAILABLE");
        b.set_routes("us.stability.sd3-5-large-v1:0", &["us-west-2"]);
        let (_, v) = request(
            &b.endpoint,
            "GET",
            "/inference-profiles/us.stability.sd3-5-large-v1%3A0",
            "",
        )
        .await;
        assert_eq!(
            v["models"],
            json!([{"modelArn": "arn:aws:bedrock:us-west-2::foundation-model/stability.sd3-5-large-v1:0"}])
        );
        let (_, v) = request(
            &b.endpoint,
            "GET",
            "/foundation-models?byOutputModality=IMAGE",
            "",
        )
        .await;
        let ids: Vec<&str> = v["modelSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["modelId"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&"amazon.nova-canvas-v1:0")
                && !ids.contains(&"amazon.titan-text-express-v1"),
            "{ids:?}"
        );
        assert!(!ids.contains(&"stability.stable-image-core-v1:1"));
    }
}

/// Counts the SDK attempts whose answer the client never got as a response
/// or a service error (a transport failure, a timeout, a stalled body): the
/// SDK retries those by itself, so the stand-in sees one more call than the
/// caller made. Add it to a Bedrock client with `.interceptor(...)`.
#[derive(Debug, Clone, Default)]
pub struct LostAnswers(pub Arc<std::sync::atomic::AtomicUsize>);

impl LostAnswers {
    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for LostAnswers {
    fn name(&self) -> &'static str {
        "LostAnswers"
    }

    fn read_after_attempt(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<
            '_,
        >,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(Err(e)) = ctx.output_or_error()
            && !e.is_operation_error()
        {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}
