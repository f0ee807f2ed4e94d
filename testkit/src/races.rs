//! AWS's races, played in front of moto. moto serialises requests and is
//! consistent at once; real AWS is neither, and answers concurrent and
//! too-early calls with errors that a deploy tool must wait out. Switched on
//! (a proxy between the client and moto, [`Races::start`]), this layer
//! answers as each service documents:
//!
//! - **API Gateway**: a write to an API while another write to the same API
//!   is in progress, or moments after one, is answered `409
//!   ConflictException: Unable to complete operation due to concurrent
//!   modification. Please try again later.` (apigatewayv2 API reference,
//!   "Common errors"/`ConflictException`; terraform-provider-aws #18018).
//! - **Lambda permissions**: `AddPermission`/`RemovePermission` overlapping on
//!   one function and qualifier: `409 ResourceConflictException` ("another
//!   operation is in progress", Lambda API reference, AddPermission).
//! - **Event source mappings**: `CreateEventSourceMapping` within the
//!   propagation window after the function's role changed (PutRolePolicy,
//!   AttachRolePolicy, ...) fails `InvalidParameterValueException: The
//!   provided execution role does not have permissions to call
//!   ReceiveMessage on SQS` (Lambda developer guide, "Using Lambda with
//!   Amazon SQS": the execution role needs these permissions; IAM user guide,
//!   "changes ... are eventually consistent"). A created mapping is
//!   `Creating` for a while, an updated one `Updating`; meanwhile updates and
//!   deletes answer `ResourceInUseException` (Lambda API reference,
//!   UpdateEventSourceMapping / DeleteEventSourceMapping: "you tried to
//!   update an event source mapping in the CREATING state"). A deleted
//!   mapping is still read and listed, `Deleting`, for a while (the
//!   `State` values of EventSourceMappingConfiguration).
//! - **Versions**: `PublishVersion` gives a version that is `Pending` for a
//!   moment (Lambda developer guide, "Lambda function states": invocations
//!   of a Pending function fail; the `published-version-active` waiter);
//!   invoking it meanwhile answers `409 ResourceConflictException`.
//! - **Queue names**: `CreateQueue` within 60 s of `DeleteQueue` of that
//!   name answers `QueueDeletedRecently` (SQS API reference, CreateQueue and
//!   DeleteQueue: "you must wait 60 seconds").
//! - **Bucket Regions**: a request signed for another Region than the
//!   bucket's is answered `301` with `x-amz-bucket-region` (S3 API
//!   reference, HeadBucket: "x-amz-bucket-region"; S3 user guide, "Making
//!   requests": PermanentRedirect).
//! - **Paging**: `GetRoutes`, `GetIntegrations`, `GetStages`,
//!   `GetAuthorizers`, `ListAliases`, `ListRolePolicies` and
//!   `ListAttachedRolePolicies` answer one item per page with a token, as
//!   AWS may with any page size (every List API reference: "NextToken"/
//!   "Marker"), so a reader that stops after the first page misses items.
//!
//! The windows are shorter than AWS's by default (tests wait them out in
//! seconds, not minutes); the queue name's is configurable up to AWS's 60 s.
//! Which writes meet a conflict after another one ended is drawn from the
//! seed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::faults::service_of;
use crate::http::{self, Request, Response};
use crate::proxy::forward;

/// How long each of AWS's states lasts here.
#[derive(Debug, Clone)]
pub struct Windows {
    /// How long after a write the API (or function policy) may still be
    /// busy: each write draws from `0..=settle`.
    pub settle: Duration,
    /// How long a write to one API or policy is in progress.
    pub hold: Duration,
    /// How long after a role's policy changes Lambda cannot see it.
    pub propagation: Duration,
    /// How long a mapping stays `Creating` / `Updating`.
    pub mapping: Duration,
    /// How long a new version stays `Pending`.
    pub version: Duration,
    /// How long a deleted queue's name stays taken (60 s on AWS).
    pub queue_name: Duration,
}

impl Default for Windows {
    fn default() -> Windows {
        Windows {
            settle: Duration::from_millis(150),
            hold: Duration::from_millis(20),
            propagation: Duration::from_millis(1500),
            mapping: Duration::from_millis(1500),
            version: Duration::from_millis(800),
            queue_name: Duration::from_secs(5),
        }
    }
}

impl Windows {
    /// Short windows, for suites that play every race many times (the fault
    /// and interruption suites): the same states, a fifth of the wait.
    pub fn quick() -> Windows {
        Windows {
            settle: Duration::from_millis(40),
            hold: Duration::from_millis(2),
            propagation: Duration::from_millis(300),
            mapping: Duration::from_millis(250),
            version: Duration::from_millis(150),
            queue_name: Duration::from_secs(1),
        }
    }
}

/// How many times each race was played.
#[derive(Debug, Default)]
pub struct Played {
    /// Writes refused because another write to the same API or function
    /// policy was in progress (a client that serialises its writes makes
    /// none; the rest of the conflicts below are "moments after one").
    pub overlaps: AtomicUsize,
    pub api_conflicts: AtomicUsize,
    pub permission_conflicts: AtomicUsize,
    pub role_not_propagated: AtomicUsize,
    pub mapping_in_use: AtomicUsize,
    pub mapping_transitions: AtomicUsize,
    pub version_pending: AtomicUsize,
    pub queue_deleted_recently: AtomicUsize,
    pub bucket_redirects: AtomicUsize,
    pub pages: AtomicUsize,
}

impl Played {
    pub fn summary(&self) -> String {
        format!(
            "overlapping writes {}, api 409 {}, permission 409 {}, role not propagated {}, mapping in use {}, mapping transitions {}, version pending {}, queue deleted recently {}, bucket 301 {}, extra pages {}",
            self.overlaps.load(SeqCst),
            self.api_conflicts.load(SeqCst),
            self.permission_conflicts.load(SeqCst),
            self.role_not_propagated.load(SeqCst),
            self.mapping_in_use.load(SeqCst),
            self.mapping_transitions.load(SeqCst),
            self.version_pending.load(SeqCst),
            self.queue_deleted_recently.load(SeqCst),
            self.bucket_redirects.load(SeqCst),
            self.pages.load(SeqCst),
        )
    }
}

#[derive(Default)]
struct State {
    /// API id or function policy key -> writes in progress, busy until.
    busy: HashMap<String, (usize, Option<Instant>)>,
    role_changed: HashMap<String, Instant>,
    function_role: HashMap<String, String>,
    /// Mapping UUID -> (state, until).
    mappings: HashMap<String, (&'static str, Instant)>,
    /// Deleted mappings still listed as `Deleting`: UUID -> (mapping, until).
    deleting: HashMap<String, (serde_json::Value, Instant)>,
    /// (function, version) -> Pending until.
    versions: HashMap<(String, String), Instant>,
    deleted_queues: HashMap<String, Instant>,
    bucket_regions: HashMap<String, String>,
}

pub struct Races {
    seed: u64,
    pub windows: Windows,
    pub played: Played,
    draws: AtomicU64,
    state: Mutex<State>,
}

/// splitmix64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn decode(s: &str) -> String {
    s.replace("%3A", ":")
        .replace("%3a", ":")
        .replace("%2F", "/")
        .replace("%2f", "/")
}

/// A function's name from a name, partial ARN or ARN (with or without a qualifier).
fn function_name(s: &str) -> String {
    let s = decode(s);
    let parts: Vec<&str> = s.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) => parts.get(i + 1).copied().unwrap_or_default().to_owned(),
        None => parts[0].to_owned(),
    }
}

fn query_param(path: &str, key: &str) -> Option<String> {
    path.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map(decode)
}

fn form_param(body: &str, key: &str) -> Option<String> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map(decode)
}

fn without_param(path: &str, key: &str) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.starts_with(&format!("{key}=")))
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

fn rest_error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-amzn-errortype".into(), code.into()),
        ],
        body: serde_json::json!({"Type": "User", "message": message, "Message": message})
            .to_string()
            .into_bytes(),
    }
}

/// The region a request is signed for.
fn signed_region(req: &Request) -> Option<String> {
    req.header("authorization")?
        .split("Credential=")
        .nth(1)?
        .split('/')
        .nth(2)
        .map(str::to_owned)
}

enum Paged {
    /// JSON list under `items`, token `key` in the query, `next` in the answer.
    Json {
        items: &'static str,
        token: &'static str,
        next: &'static str,
    },
    /// IAM's XML list (`<member>`s), `Marker` in the form body.
    Xml,
}

impl Races {
    pub fn new(seed: u64) -> Arc<Races> {
        Races::with_windows(seed, Windows::default())
    }

    pub fn with_windows(seed: u64, windows: Windows) -> Arc<Races> {
        Arc::new(Races {
            seed,
            windows,
            played: Played::default(),
            draws: AtomicU64::new(0),
            state: Mutex::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A seeded duration in `0..=max`; zero for half the draws.
    fn draw(&self, max: Duration) -> Duration {
        let n = self.draws.fetch_add(1, SeqCst);
        let r = mix(self.seed ^ mix(n));
        if r & 1 == 0 || max.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_millis((r >> 1) % (max.as_millis() as u64 + 1))
    }

    /// Starts the layer in front of `upstream`; returns its endpoint.
    pub async fn start(self: &Arc<Self>, upstream: &str) -> String {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let me = Arc::clone(self);
        let addr = http::serve(Arc::new(move |req: Request| {
            let me = Arc::clone(&me);
            let upstream = upstream.clone();
            Box::pin(async move { me.answer(&upstream, req).await })
        }))
        .await;
        format!("http://{addr}")
    }

    async fn pass(&self, upstream: &str, req: Request) -> Response {
        match forward(upstream, req).await {
            Ok(r) => r,
            Err(e) => Response {
                status: 502,
                headers: vec![],
                body: format!("races: {e}").into_bytes(),
            },
        }
    }

    async fn answer(&self, upstream: &str, req: Request) -> Response {
        let service = service_of(&req);
        let path = req.path.split('?').next().unwrap_or_default().to_owned();
        let parts: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        match service.as_str() {
            "apigateway" => self.apigateway(upstream, req, &parts).await,
            "lambda" => self.lambda(upstream, req, &parts).await,
            "iam" => self.iam(upstream, req).await,
            "sqs" => self.sqs(upstream, req).await,
            "s3" => self.s3(upstream, req, &parts).await,
            _ => self.pass(upstream, req).await,
        }
    }

    /// Runs `req` as a write to `parent`, or answers `conflict` if another
    /// write to it is in progress or just ended.
    async fn exclusive(
        &self,
        upstream: &str,
        req: Request,
        parent: String,
        conflict: impl Fn() -> Response,
        counter: &AtomicUsize,
    ) -> Response {
        {
            let mut state = self.state();
            let entry = state.busy.entry(parent.clone()).or_insert((0, None));
            let settling = entry.1.is_some_and(|until| Instant::now() < until);
            if entry.0 > 0 || settling {
                counter.fetch_add(1, SeqCst);
                if entry.0 > 0 {
                    self.played.overlaps.fetch_add(1, SeqCst);
                }
                return conflict();
            }
            entry.0 += 1;
        }
        tokio::time::sleep(self.windows.hold).await;
        let answer = self.pass(upstream, req).await;
        let settle = self.draw(self.windows.settle);
        let mut state = self.state();
        let entry = state.busy.entry(parent).or_insert((1, None));
        entry.0 = entry.0.saturating_sub(1);
        entry.1 = Some(Instant::now() + settle);
        answer
    }

    async fn apigateway(&self, upstream: &str, req: Request, parts: &[&str]) -> Response {
        // /v2/apis/{id}/{collection}[/{id}]
        if parts.len() >= 3 && parts[0] == "v2" && parts[1] == "apis" {
            let api = parts[2].to_owned();
            if req.method != "GET" {
                return self
                    .exclusive(
                        upstream,
                        req,
                        format!("api/{api}"),
                        || {
                            rest_error(
                                409,
                                "ConflictException",
                                "Unable to complete operation due to concurrent modification. Please try again later.",
                            )
                        },
                        &self.played.api_conflicts,
                    )
                    .await;
            }
            if parts.len() == 4
                && matches!(
                    parts[3],
                    "routes" | "integrations" | "stages" | "authorizers"
                )
            {
                let paged = Paged::Json {
                    items: "items",
                    token: "nextToken",
                    next: "nextToken",
                };
                return self.paged(upstream, req, &paged).await;
            }
        }
        self.pass(upstream, req).await
    }

    async fn lambda(&self, upstream: &str, req: Request, parts: &[&str]) -> Response {
        if parts.first() != Some(&"2015-03-31") {
            return self.pass(upstream, req).await;
        }
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        match (req.method.as_str(), &parts[1..]) {
            // CreateFunction / UpdateFunctionConfiguration: which role a function uses.
            ("POST", ["functions"]) => {
                if let (Some(f), Some(role)) =
                    (body["FunctionName"].as_str(), body["Role"].as_str())
                {
                    let role = role.rsplit('/').next().unwrap_or(role).to_owned();
                    self.state().function_role.insert(function_name(f), role);
                }
                self.pass(upstream, req).await
            }
            ("PUT", ["functions", f, "configuration"]) => {
                if let Some(role) = body["Role"].as_str() {
                    let role = role.rsplit('/').next().unwrap_or(role).to_owned();
                    self.state().function_role.insert(function_name(f), role);
                }
                self.pass(upstream, req).await
            }
            // AddPermission / RemovePermission.
            ("POST", ["functions", f, "policy"]) | ("DELETE", ["functions", f, "policy", _]) => {
                let qualifier = query_param(&req.path, "Qualifier").unwrap_or_default();
                let parent = format!("policy/{}:{qualifier}", function_name(f));
                self.exclusive(
                    upstream,
                    req,
                    parent,
                    || {
                        rest_error(
                            409,
                            "ResourceConflictException",
                            "The operation cannot be performed at this time. Another operation is in progress on this resource's policy.",
                        )
                    },
                    &self.played.permission_conflicts,
                )
                .await
            }
            ("POST", ["event-source-mappings"]) => self.create_mapping(upstream, req, &body).await,
            ("GET", ["event-source-mappings"]) => {
                let function = query_param(&req.path, "FunctionName");
                let answer = self.pass(upstream, req).await;
                let answer = self.mapping_states(answer);
                self.with_deleting(answer, function.as_deref())
            }
            ("GET", ["event-source-mappings", id]) => {
                let deleting = self
                    .state()
                    .deleting
                    .get(*id)
                    .filter(|(_, until)| Instant::now() < *until)
                    .map(|(m, _)| m.clone());
                let answer = self.pass(upstream, req).await;
                match deleting {
                    Some(m) if answer.status == 404 => Response::json(200, &m),
                    _ => self.mapping_states(answer),
                }
            }
            ("PUT", ["event-source-mappings", id]) | ("DELETE", ["event-source-mappings", id]) => {
                let id = (*id).to_owned();
                let in_use = self
                    .state()
                    .mappings
                    .get(&id)
                    .is_some_and(|(_, until)| Instant::now() < *until);
                if in_use {
                    self.played.mapping_in_use.fetch_add(1, SeqCst);
                    return rest_error(
                        400,
                        "ResourceInUseException",
                        "Cannot update the event source mapping because it is in use. The event source mapping is in a transitional state (Creating or Updating).",
                    );
                }
                let put = req.method == "PUT";
                let answer = self.pass(upstream, req).await;
                if !put
                    && answer.status < 300
                    && let Ok(mut m) = serde_json::from_slice::<serde_json::Value>(&answer.body)
                {
                    // Deleting takes a while: still read and listed, `Deleting`.
                    m["State"] = "Deleting".into();
                    let until = Instant::now() + self.windows.mapping;
                    self.state().deleting.insert(id, (m.clone(), until));
                    self.played.mapping_transitions.fetch_add(1, SeqCst);
                    let mut answer = answer;
                    answer.body = m.to_string().into_bytes();
                    return answer;
                }
                if put && answer.status < 300 {
                    let until = Instant::now() + self.windows.mapping;
                    self.state().mappings.insert(id, ("Updating", until));
                    self.played.mapping_transitions.fetch_add(1, SeqCst);
                    return self.mapping_states(answer);
                }
                answer
            }
            ("POST", ["functions", f, "versions"]) => {
                let name = function_name(f);
                let mut answer = self.pass(upstream, req).await;
                if answer.status < 300
                    && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&answer.body)
                    && let Some(version) = v["Version"].as_str().map(str::to_owned)
                {
                    let until = Instant::now() + self.windows.version;
                    self.state().versions.insert((name, version), until);
                    self.played.version_pending.fetch_add(1, SeqCst);
                    v["State"] = "Pending".into();
                    answer.body = v.to_string().into_bytes();
                }
                answer
            }
            ("GET", ["functions", f, "configuration"]) | ("GET", ["functions", f]) => {
                let qualifier = query_param(&req.path, "Qualifier")
                    .or_else(|| decode(f).rsplit_once(':').map(|(_, q)| q.to_owned()))
                    .unwrap_or_default();
                let pending = self.version_pending(&function_name(f), &qualifier);
                let configuration = parts.len() == 4;
                let mut answer = self.pass(upstream, req).await;
                if pending
                    && answer.status < 300
                    && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&answer.body)
                {
                    if configuration {
                        v["State"] = "Pending".into();
                    } else {
                        v["Configuration"]["State"] = "Pending".into();
                    }
                    answer.body = v.to_string().into_bytes();
                }
                answer
            }
            ("POST", ["functions", f, "invocations"]) => {
                let qualifier = query_param(&req.path, "Qualifier")
                    .or_else(|| decode(f).rsplit_once(':').map(|(_, q)| q.to_owned()))
                    .unwrap_or_default();
                if self.version_pending(&function_name(f), &qualifier) {
                    return rest_error(
                        409,
                        "ResourceConflictException",
                        "The operation cannot be performed at this time. The function is currently in the following state: Pending",
                    );
                }
                self.pass(upstream, req).await
            }
            ("GET", ["functions", _, "aliases"]) => {
                let paged = Paged::Json {
                    items: "Aliases",
                    token: "Marker",
                    next: "NextMarker",
                };
                self.paged(upstream, req, &paged).await
            }
            _ => self.pass(upstream, req).await,
        }
    }

    fn version_pending(&self, function: &str, version: &str) -> bool {
        self.state()
            .versions
            .get(&(function.to_owned(), version.to_owned()))
            .is_some_and(|until| Instant::now() < *until)
    }

    async fn create_mapping(
        &self,
        upstream: &str,
        req: Request,
        body: &serde_json::Value,
    ) -> Response {
        let function = function_name(body["FunctionName"].as_str().unwrap_or_default());
        let known = self.state().function_role.get(&function).cloned();
        let role = match known {
            Some(role) => Some(role),
            // A function created before the layer started: ask moto.
            None => {
                let mut ask = req.clone();
                ask.method = "GET".into();
                ask.path = format!("/2015-03-31/functions/{function}/configuration");
                ask.body = Vec::new();
                let answer = self.pass(upstream, ask).await;
                serde_json::from_slice::<serde_json::Value>(&answer.body)
                    .ok()
                    .and_then(|v| v["Role"].as_str().map(str::to_owned))
                    .map(|r| r.rsplit('/').next().unwrap_or(&r).to_owned())
            }
        };
        let too_early = role.as_ref().is_some_and(|role| {
            self.state()
                .role_changed
                .get(role)
                .is_some_and(|at| at.elapsed() < self.windows.propagation)
        });
        if too_early {
            self.played.role_not_propagated.fetch_add(1, SeqCst);
            return rest_error(
                400,
                "InvalidParameterValueException",
                "The provided execution role does not have permissions to call ReceiveMessage on SQS",
            );
        }
        let answer = self.pass(upstream, req).await;
        if answer.status < 300
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&answer.body)
            && let Some(id) = v["UUID"].as_str()
        {
            let until = Instant::now() + self.windows.mapping;
            self.state()
                .mappings
                .insert(id.to_owned(), ("Creating", until));
            self.played.mapping_transitions.fetch_add(1, SeqCst);
        }
        self.mapping_states(answer)
    }

    /// A list of mappings with the deleted ones still `Deleting` for
    /// `function` (a name, maybe qualified, as `ListEventSourceMappings`
    /// filters: the mapping's function ARN ends with it).
    fn with_deleting(&self, mut answer: Response, function: Option<&str>) -> Response {
        let Some(function) = function else {
            return answer;
        };
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&answer.body) else {
            return answer;
        };
        let now = Instant::now();
        let name = decode(function);
        let wanted = if name.contains(":function:") {
            name
        } else {
            format!(":function:{name}")
        };
        let gone: Vec<serde_json::Value> = self
            .state()
            .deleting
            .values()
            .filter(|(m, until)| {
                now < *until
                    && m["FunctionArn"]
                        .as_str()
                        .is_some_and(|a| a.ends_with(&wanted))
            })
            .map(|(m, _)| m.clone())
            .collect();
        if let Some(list) = v["EventSourceMappings"].as_array_mut() {
            let listed: Vec<String> = list
                .iter()
                .filter_map(|m| m["UUID"].as_str().map(str::to_owned))
                .collect();
            list.extend(gone.into_iter().filter(|m| {
                m["UUID"]
                    .as_str()
                    .is_some_and(|u| !listed.iter().any(|l| l == u))
            }));
        }
        answer.body = v.to_string().into_bytes();
        answer
    }

    /// A mapping answer (one or a list) with each transitional mapping's state.
    fn mapping_states(&self, mut answer: Response) -> Response {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&answer.body) else {
            return answer;
        };
        let now = Instant::now();
        let state = self.state();
        let mut fix = |m: &mut serde_json::Value| {
            if let Some(id) = m["UUID"].as_str()
                && let Some((s, until)) = state.mappings.get(id)
                && now < *until
            {
                m["State"] = (*s).into();
            }
        };
        if let Some(list) = v["EventSourceMappings"].as_array_mut() {
            list.iter_mut().for_each(&mut fix);
        } else {
            fix(&mut v);
        }
        answer.body = v.to_string().into_bytes();
        answer
    }

    async fn iam(&self, upstream: &str, req: Request) -> Response {
        let body = String::from_utf8_lossy(&req.body).into_owned();
        let action = form_param(&body, "Action").unwrap_or_default();
        match action.as_str() {
            "PutRolePolicy"
            | "DeleteRolePolicy"
            | "AttachRolePolicy"
            | "DetachRolePolicy"
            | "CreateRole"
            | "PutRolePermissionsBoundary" => {
                let answer = self.pass(upstream, req).await;
                if let Some(role) = form_param(&body, "RoleName") {
                    self.state().role_changed.insert(role, Instant::now());
                }
                answer
            }
            "ListRolePolicies" | "ListAttachedRolePolicies" => {
                self.paged(upstream, req, &Paged::Xml).await
            }
            _ => self.pass(upstream, req).await,
        }
    }

    async fn sqs(&self, upstream: &str, req: Request) -> Response {
        let target = req.header("x-amz-target").unwrap_or_default().to_owned();
        let body = String::from_utf8_lossy(&req.body).into_owned();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let action = target
            .rsplit('.')
            .next()
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .or_else(|| form_param(&body, "Action"))
            .unwrap_or_default();
        match action.as_str() {
            "DeleteQueue" => {
                let url = json["QueueUrl"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| form_param(&body, "QueueUrl"))
                    .unwrap_or_default();
                let name = url.rsplit('/').next().unwrap_or_default().to_owned();
                let answer = self.pass(upstream, req).await;
                if answer.status < 300 {
                    self.state().deleted_queues.insert(name, Instant::now());
                }
                answer
            }
            "CreateQueue" => {
                let name = json["QueueName"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| form_param(&body, "QueueName"))
                    .unwrap_or_default();
                let recent = self
                    .state()
                    .deleted_queues
                    .get(&name)
                    .is_some_and(|at| at.elapsed() < self.windows.queue_name);
                if recent {
                    self.played.queue_deleted_recently.fetch_add(1, SeqCst);
                    let message = "You must wait 60 seconds after deleting a queue before you can create another with the same name.";
                    return Response {
                        status: 400,
                        headers: vec![
                            ("content-type".into(), "application/x-amz-json-1.0".into()),
                            (
                                "x-amzn-query-error".into(),
                                "AWS.SimpleQueueService.QueueDeletedRecently;Sender".into(),
                            ),
                        ],
                        body: serde_json::json!({
                            "__type": "com.amazonaws.sqs#QueueDeletedRecently",
                            "message": message,
                        })
                        .to_string()
                        .into_bytes(),
                    };
                }
                self.pass(upstream, req).await
            }
            _ => self.pass(upstream, req).await,
        }
    }

    /// Records that `bucket` lives in `region` (else moto is asked).
    pub fn bucket_in(&self, bucket: &str, region: &str) {
        self.state()
            .bucket_regions
            .insert(bucket.to_owned(), region.to_owned());
    }

    async fn s3(&self, upstream: &str, req: Request, parts: &[&str]) -> Response {
        let bucket = parts.first().copied().unwrap_or_default().to_owned();
        let create = req.method == "PUT" && parts.len() == 1 && !req.path.contains('?');
        let Some(signed) = signed_region(&req) else {
            return self.pass(upstream, req).await;
        };
        // GetBucketLocation is answered in every Region (S3 API reference,
        // GetBucketLocation: "In other Regions, the bucket policy doesn't
        // apply"); HeadBucket and everything else is redirected.
        let location = req.method == "GET"
            && parts.len() == 1
            && req
                .path
                .split_once('?')
                .is_some_and(|(_, q)| q.split('&').any(|kv| kv == "location" || kv == "location="));
        if bucket.is_empty() || create || location {
            return self.pass(upstream, req).await;
        }
        let known = self.state().bucket_regions.get(&bucket).cloned();
        let region = match known {
            Some(r) => Some(r),
            None => {
                let mut ask = req.clone();
                ask.method = "HEAD".into();
                ask.path = format!("/{bucket}");
                ask.body = Vec::new();
                let answer = self.pass(upstream, ask).await;
                let region = answer
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-bucket-region"))
                    .map(|(_, v)| v.clone());
                if let Some(r) = &region {
                    self.bucket_in(&bucket, r);
                }
                region
            }
        };
        match region {
            Some(region) if region != signed => {
                self.played.bucket_redirects.fetch_add(1, SeqCst);
                let body = if req.method == "HEAD" {
                    Vec::new()
                } else {
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>{bucket}.s3.{region}.amazonaws.com</Endpoint><Bucket>{bucket}</Bucket></Error>"
                    )
                    .into_bytes()
                };
                Response {
                    status: 301,
                    headers: vec![
                        ("x-amz-bucket-region".into(), region),
                        ("content-type".into(), "application/xml".into()),
                    ],
                    body,
                }
            }
            _ => self.pass(upstream, req).await,
        }
    }

    /// Serves a list one item per page: the whole list is read from moto
    /// (without the token, which moto does not know) and the page cut out.
    async fn paged(&self, upstream: &str, mut req: Request, paged: &Paged) -> Response {
        match paged {
            Paged::Json { items, token, next } => {
                let offset: usize = query_param(&req.path, token)
                    .and_then(|t| t.strip_prefix("page-").and_then(|n| n.parse().ok()))
                    .unwrap_or(0);
                req.path = without_param(&req.path, token);
                let mut answer = self.pass(upstream, req).await;
                if answer.status >= 300 {
                    return answer;
                }
                let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&answer.body) else {
                    return answer;
                };
                let all = v[*items].as_array().cloned().unwrap_or_default();
                let page: Vec<_> = all.iter().skip(offset).take(1).cloned().collect();
                v[*items] = page.into();
                if offset + 1 < all.len() {
                    v[*next] = format!("page-{}", offset + 1).into();
                    self.played.pages.fetch_add(1, SeqCst);
                } else if let Some(o) = v.as_object_mut() {
                    o.remove(*next);
                }
                answer.body = v.to_string().into_bytes();
                answer
            }
            Paged::Xml => {
                let body = String::from_utf8_lossy(&req.body).into_owned();
                let offset: usize = form_param(&body, "Marker")
                    .and_then(|t| t.strip_prefix("page-").and_then(|n| n.parse().ok()))
                    .unwrap_or(0);
                let kept: Vec<&str> = body
                    .split('&')
                    .filter(|kv| !kv.starts_with("Marker=") && !kv.starts_with("MaxItems="))
                    .collect();
                req.body = kept.join("&").into_bytes();
                let mut answer = self.pass(upstream, req).await;
                if answer.status >= 300 {
                    return answer;
                }
                let text = String::from_utf8_lossy(&answer.body).into_owned();
                let (Some(open), Some(close)) = (text.find("<member>"), text.rfind("</member>"))
                else {
                    return answer;
                };
                let close = close + "</member>".len();
                let members: Vec<String> = text[open..close]
                    .split("</member>")
                    .filter(|m| m.contains("<member>"))
                    .map(|m| format!("{}</member>", m.trim()))
                    .collect();
                let page = members.get(offset).cloned().unwrap_or_default();
                let more = offset + 1 < members.len();
                let mut out = format!("{}{}{}", &text[..open], page, &text[close..]);
                let truncated = if more {
                    self.played.pages.fetch_add(1, SeqCst);
                    format!(
                        "<IsTruncated>true</IsTruncated><Marker>page-{}</Marker>",
                        offset + 1
                    )
                } else {
                    "<IsTruncated>false</IsTruncated>".to_owned()
                };
                if let (Some(a), Some(b)) = (out.find("<IsTruncated>"), out.find("</IsTruncated>"))
                {
                    // moto read the whole list: it wrote no Marker of its own.
                    out.replace_range(a..b + "</IsTruncated>".len(), &truncated);
                } else if let Some(i) = out
                    .find("</PolicyNames>")
                    .or_else(|| out.find("</AttachedPolicies>"))
                {
                    let end = out[i..].find('>').map_or(i, |j| i + j + 1);
                    out.insert_str(end, &truncated);
                }
                answer.body = out.into_bytes();
                answer
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_come_from_names_and_arns() {
        assert_eq!(function_name("f"), "f");
        assert_eq!(function_name("f:live"), "f");
        assert_eq!(
            function_name("arn%3Aaws%3Alambda%3Aeu-west-1%3A123%3Afunction%3Af%3A3"),
            "f"
        );
    }

    #[test]
    fn tokens_are_taken_out_of_the_query() {
        assert_eq!(
            without_param("/v2/apis/a/routes?nextToken=page-2", "nextToken"),
            "/v2/apis/a/routes"
        );
        assert_eq!(
            without_param("/x?a=1&Marker=page-1&b=2", "Marker"),
            "/x?a=1&b=2"
        );
    }
}
