//! AWS's races (testkit::races, in front of moto): first each behaviour on
//! its own, called with the SDK clients the provisioner uses, then the
//! scenarios real accounts hit, run by the provisioner binary through the
//! layer with several seeds: apply from empty, destroy at once followed by
//! apply, two routes added at once (and a stray route beyond the first page
//! deleted), a canary whose own version errs, and a bucket in another
//! Region refused by the plan.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::*;
use testkit::races::{Races, Windows};

/// The layer in front of this binary's moto.
async fn layer(seed: u64) -> (Arc<Races>, String) {
    let races = Races::new(seed);
    let endpoint = races.start(testkit::moto_endpoint()).await;
    (races, endpoint)
}

/// The layer, each write in progress for 300 ms.
async fn held(seed: u64) -> (Arc<Races>, String) {
    let races = Races::with_windows(
        seed,
        Windows {
            hold: Duration::from_millis(300),
            ..Windows::default()
        },
    );
    let endpoint = races.start(testkit::moto_endpoint()).await;
    (races, endpoint)
}

fn conf(endpoint: &str) -> aws_types::SdkConfig {
    testkit::sdk_config(endpoint, REGION)
}

/// A role and a function in moto, made directly (not through the layer).
async fn function(prefix: &str) -> (String, String) {
    let moto = conf(testkit::moto_endpoint());
    let name = testkit::unique(prefix);
    let iam = aws_sdk_iam::Client::new(&moto);
    let role = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("CreateRole")
        .role
        .expect("role");
    aws_sdk_lambda::Client::new(&moto)
        .create_function()
        .function_name(&name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role.arn())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(
                    testkit::zips::empty_zip("races"),
                ))
                .build(),
        )
        .send()
        .await
        .expect("CreateFunction");
    (name, role.arn().to_owned())
}

fn code<E: aws_sdk_sqs::error::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String {
    provisioner::aws::error_code(e)
        .unwrap_or("(none)")
        .to_owned()
}

/// Two writes to one API at once: one of them is told "concurrent
/// modification" (409 ConflictException); one write at a time gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_to_one_api_conflict() {
    // A write in progress for 300 ms: the second surely overlaps it.
    let (races, endpoint) = held(1).await;
    let moto = aws_sdk_apigatewayv2::Client::new(&conf(testkit::moto_endpoint()));
    let api = moto
        .create_api()
        .name(testkit::unique("t-race-api-"))
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .send()
        .await
        .unwrap()
        .api_id
        .unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&conf(&endpoint));
    let route = |key: &str| apigw.create_route().api_id(&api).route_key(key).send();
    let (a, b) = tokio::join!(route("GET /a"), route("GET /b"));
    let failed: Vec<_> = [a.err(), b.err()].into_iter().flatten().collect();
    assert_eq!(
        failed.len(),
        1,
        "exactly one of two overlapping writes fails"
    );
    assert_eq!(code(&failed[0]), "ConflictException");
    let e =
        provisioner::aws::aws_error("apigateway:CreateRoute", failed.into_iter().next().unwrap());
    assert_eq!(e.kind, provisioner::engine::ErrorKind::Conflict, "{e}");
    assert!(e.message.contains("concurrent modification"), "{e}");
    assert_eq!(races.played.api_conflicts.load(SeqCst), 1);
    assert_eq!(races.played.overlaps.load(SeqCst), 1);
    // Alone, after the API has settled, a write gets through.
    tokio::time::sleep(races.windows.settle + Duration::from_millis(50)).await;
    route("GET /c").await.expect("a write on its own");
}

/// `AddPermission` twice at once on one function and qualifier: one is
/// answered ResourceConflictException.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_permission_changes_on_one_policy_conflict() {
    let (races, endpoint) = held(2).await;
    let (name, _) = function("t-race-perm-").await;
    let lambda = aws_sdk_lambda::Client::new(&conf(&endpoint));
    let add = |sid: &str| {
        lambda
            .add_permission()
            .function_name(&name)
            .statement_id(sid)
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .send()
    };
    let (a, b) = tokio::join!(add("one"), add("two"));
    let failed: Vec<_> = [a.err(), b.err()].into_iter().flatten().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(code(&failed[0]), "ResourceConflictException");
    let e = provisioner::aws::aws_error("lambda:AddPermission", failed.into_iter().next().unwrap());
    assert_eq!(e.kind, provisioner::engine::ErrorKind::Conflict, "{e}");
    assert_eq!(races.played.permission_conflicts.load(SeqCst), 1);
}

/// A mapping created right after the role's policy changed: the IAM
/// propagation error; later it is created `Creating`, refuses updates
/// (ResourceInUseException) until it is `Enabled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_waits_for_its_role_and_passes_through_creating() {
    let (races, endpoint) = layer(3).await;
    let (name, _) = function("t-race-esm-").await;
    let c = conf(&endpoint);
    let queue = aws_sdk_sqs::Client::new(&conf(testkit::moto_endpoint()))
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = format!(
        "arn:aws:sqs:{REGION}:123456789012:{}",
        queue.rsplit('/').next().unwrap()
    );
    aws_sdk_iam::Client::new(&c)
        .put_role_policy()
        .role_name(&name)
        .policy_name("p")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:ReceiveMessage","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let lambda = aws_sdk_lambda::Client::new(&c);
    let create = || {
        lambda
            .create_event_source_mapping()
            .function_name(&name)
            .event_source_arn(&queue_arn)
            .send()
    };
    let early = create().await.expect_err("too early");
    assert_eq!(code(&early), "InvalidParameterValueException");
    let e = provisioner::aws::aws_error("lambda:CreateEventSourceMapping", early);
    assert_eq!(e.kind, provisioner::engine::ErrorKind::Propagating, "{e}");

    tokio::time::sleep(races.windows.propagation).await;
    let created = create().await.expect("after propagation");
    assert_eq!(created.state(), Some("Creating"));
    let uuid = created.uuid().unwrap().to_owned();
    let busy = lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .batch_size(5)
        .send()
        .await
        .expect_err("in use while Creating");
    assert_eq!(code(&busy), "ResourceInUseException");
    let e = provisioner::aws::aws_error("lambda:UpdateEventSourceMapping", busy);
    assert_eq!(e.kind, provisioner::engine::ErrorKind::Conflict, "{e}");

    tokio::time::sleep(races.windows.mapping).await;
    let got = lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .unwrap();
    assert_ne!(got.state(), Some("Creating"));
    let updated = lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .batch_size(5)
        .send()
        .await
        .expect("an update once Enabled");
    assert_eq!(updated.state(), Some("Updating"));
    assert_eq!(races.played.role_not_propagated.load(SeqCst), 1);
    assert_eq!(races.played.mapping_in_use.load(SeqCst), 1);
}

/// A published version is `Pending` for a moment: its configuration says
/// so and invoking it is refused; then it is `Active`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_pending_before_it_is_active() {
    // Pending long enough for three calls through moto on a loaded machine
    // (the default 800 ms was not, once: the invoke found it Active).
    let races = Races::with_windows(
        4,
        Windows {
            version: Duration::from_secs(5),
            ..Windows::default()
        },
    );
    let endpoint = races.start(testkit::moto_endpoint()).await;
    let (name, _) = function("t-race-ver-").await;
    let lambda = aws_sdk_lambda::Client::new(&conf(&endpoint));
    let published = lambda
        .publish_version()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(published.state().map(|s| s.as_str()), Some("Pending"));
    let version = published.version().unwrap().to_owned();
    let state = || async {
        lambda
            .get_function_configuration()
            .function_name(&name)
            .qualifier(&version)
            .send()
            .await
            .unwrap()
            .state()
            .map(|s| s.as_str().to_owned())
    };
    assert_eq!(state().await.as_deref(), Some("Pending"));
    let refused = lambda
        .invoke()
        .function_name(&name)
        .qualifier(&version)
        .send()
        .await
        .expect_err("a Pending version is not invoked");
    assert_eq!(code(&refused), "ResourceConflictException");
    tokio::time::sleep(races.windows.version).await;
    assert_eq!(state().await.as_deref(), Some("Active"));
}

/// A queue name is taken for a while after `DeleteQueue`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_queues_name_is_free_only_after_a_while() {
    let races = Races::with_windows(
        5,
        Windows {
            queue_name: Duration::from_secs(2),
            ..Windows::default()
        },
    );
    let endpoint = races.start(testkit::moto_endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&conf(&endpoint));
    let name = testkit::unique("t-race-q-");
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
    let refused = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect_err("QueueDeletedRecently");
    assert!(
        code(&refused).ends_with("QueueDeletedRecently"),
        "{}",
        code(&refused)
    );
    let e = provisioner::aws::aws_error("sqs:CreateQueue", refused);
    assert_eq!(e.kind, provisioner::engine::ErrorKind::Conflict, "{e}");
    tokio::time::sleep(races.windows.queue_name).await;
    sqs.create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("free again");
    assert_eq!(races.played.queue_deleted_recently.load(SeqCst), 1);
}

/// A bucket in another Region: S3 answers 301 with the bucket's Region,
/// except `GetBucketLocation`, which every Region answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_in_another_region_is_redirected() {
    let (races, endpoint) = layer(6).await;
    let name = testkit::unique("t-race-b-");
    let far = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf(testkit::moto_endpoint()))
            .region(aws_sdk_s3::config::Region::new("us-west-2"))
            .force_path_style(true)
            .build(),
    );
    far.create_bucket()
        .bucket(&name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf(&endpoint))
            .force_path_style(true)
            .build(),
    );
    let head = s3
        .head_bucket()
        .bucket(&name)
        .send()
        .await
        .expect_err("301");
    let raw = head.raw_response().expect("an answer");
    assert_eq!(raw.status().as_u16(), 301);
    assert_eq!(raw.headers().get("x-amz-bucket-region"), Some("us-west-2"));
    let put = s3
        .put_object()
        .bucket(&name)
        .key("k")
        .body(Vec::new().into())
        .send()
        .await
        .expect_err("301");
    let e = provisioner::aws::aws_error("s3:PutObject", put);
    assert!(e.message.contains("us-west-2"), "{e}");
    let location = s3.get_bucket_location().bucket(&name).send().await.unwrap();
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some("us-west-2")
    );
    assert!(races.played.bucket_redirects.load(SeqCst) >= 2);
}

/// Lists come one item a page: a reader that stops at the first page sees
/// one route of three; following the token, all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_in_pages() {
    let (_races, endpoint) = layer(7).await;
    let moto = aws_sdk_apigatewayv2::Client::new(&conf(testkit::moto_endpoint()));
    let api = moto
        .create_api()
        .name(testkit::unique("t-race-pages-"))
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .send()
        .await
        .unwrap()
        .api_id
        .unwrap();
    for key in ["GET /a", "GET /b", "GET /c"] {
        moto.create_route()
            .api_id(&api)
            .route_key(key)
            .send()
            .await
            .unwrap();
    }
    let apigw = aws_sdk_apigatewayv2::Client::new(&conf(&endpoint));
    let first = apigw.get_routes().api_id(&api).send().await.unwrap();
    assert_eq!(first.items().len(), 1);
    let mut keys: Vec<String> = first
        .items()
        .iter()
        .filter_map(|r| r.route_key().map(str::to_owned))
        .collect();
    let mut token = first.next_token().map(str::to_owned);
    while let Some(t) = token {
        let page = apigw
            .get_routes()
            .api_id(&api)
            .next_token(t)
            .send()
            .await
            .unwrap();
        keys.extend(
            page.items()
                .iter()
                .filter_map(|r| r.route_key().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
    }
    keys.sort();
    assert_eq!(keys, ["GET /a", "GET /b", "GET /c"]);

    // IAM's XML lists page with IsTruncated and Marker.
    let (role, _) = function("t-race-iam-").await;
    let iam_moto = aws_sdk_iam::Client::new(&conf(testkit::moto_endpoint()));
    for p in ["a", "b", "c"] {
        iam_moto
            .put_role_policy()
            .role_name(&role)
            .policy_name(p)
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
    }
    let iam = aws_sdk_iam::Client::new(&conf(&endpoint));
    let first = iam
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert_eq!(first.policy_names().len(), 1);
    assert!(first.is_truncated());
    let all: Vec<String> = iam
        .list_role_policies()
        .role_name(&role)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
}

/// Runs the binary through `endpoint`; returns the output.
fn run(f: &Fixture, endpoint: &str, args: &[&str]) -> std::process::Output {
    tokio::task::block_in_place(|| {
        f.command(args)
            .env("AWS_ENDPOINT_URL", endpoint)
            .output()
            .expect("run provisioner")
    })
}

fn ok(out: &std::process::Output, what: &str) -> String {
    let text = format!("{}{}", stdout(out), stderr(out));
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// Apply from empty, then destroy followed at once by apply, each in one
/// run through the layer: exit 0, the declared inventory, no change left.
/// One test per seed (they run side by side).
async fn apply_then_destroy_then_apply(seed: u64) {
    // The deleted queues' names stay taken for 15 s (60 s on AWS): long
    // enough that the second apply, a new process reading the account
    // first, meets them even on a loaded machine (with 5 s, a CI run under
    // three test lanes came after the window, and nothing was played).
    let races = Races::with_windows(
        seed,
        Windows {
            queue_name: Duration::from_secs(15),
            ..Windows::default()
        },
    );
    let endpoint = races.start(testkit::moto_endpoint()).await;
    let f = Fixture::new(&format!("t-race{seed}-")).await;
    let text = ok(
        &run(&f, &endpoint, &["apply", "--yes", "--approve-broadening"]),
        "apply",
    );
    assert_eq!(f.inventory().await, DEPLOYED, "seed {seed}: after apply");
    assert!(
        changing(&f.plan().await).is_empty(),
        "seed {seed}: not converged"
    );
    ok(&run(&f, &endpoint, &["destroy", "--yes"]), "destroy");
    assert_eq!(f.inventory().await, Inventory::default(), "seed {seed}");
    let again = ok(
        &run(&f, &endpoint, &["apply", "--yes", "--approve-broadening"]),
        "apply after destroy",
    );
    assert_eq!(f.inventory().await, DEPLOYED, "seed {seed}: after re-apply");
    assert!(
        changing(&f.plan().await).is_empty(),
        "seed {seed}: not converged"
    );
    let played = &races.played;
    println!("seed {seed}: {}", played.summary());
    // Writes to one API or one function policy never overlapped (the
    // engine serialises them); the conflicts met were the moments after a
    // write, waited out.
    assert_eq!(played.overlaps.load(SeqCst), 0, "seed {seed}");
    assert!(
        played.api_conflicts.load(SeqCst) + played.permission_conflicts.load(SeqCst) > 0,
        "seed {seed}: no conflict was played"
    );
    // The other races were played, and apply waited them out.
    assert!(played.version_pending.load(SeqCst) >= 2, "seed {seed}");
    assert!(
        played.mapping_transitions.load(SeqCst) >= 3,
        "seed {seed}: create, delete, create"
    );
    assert!(
        played.queue_deleted_recently.load(SeqCst) >= 1,
        "seed {seed}: {again}"
    );
    assert!(played.pages.load(SeqCst) >= 1, "seed {seed}");
    if seed == 11 {
        println!("{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_destroy_apply_seed_11() {
    apply_then_destroy_then_apply(11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_destroy_apply_seed_12() {
    apply_then_destroy_then_apply(12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_destroy_apply_seed_13() {
    apply_then_destroy_then_apply(13).await;
}

/// Two declared routes gone and a stray one added out of band: one apply
/// adds both at once and deletes the stray, which the reader meets only by
/// following the pages.
async fn two_routes_and_a_stray(seed: u64) {
    let (races, endpoint) = layer(seed + 100).await;
    let f = Fixture::new(&format!("t-race-routes{seed}-")).await;
    ok(
        &run(&f, &endpoint, &["apply", "--yes", "--approve-broadening"]),
        "apply",
    );
    let api = f.live_attr(provisioner::declare::API, "id").await;
    let (routes, declared) = f.routes(&api).await;
    assert_eq!(routes.len(), 4);
    let apigw = f.apigw();
    for r in routes.iter().take(2) {
        apigw
            .delete_route()
            .api_id(&api)
            .route_id(r.route_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    apigw
        .create_route()
        .api_id(&api)
        .route_key("GET /zz-stray")
        .send()
        .await
        .unwrap();
    let before = races.played.api_conflicts.load(SeqCst);
    ok(
        &run(&f, &endpoint, &["apply", "--yes", "--approve-broadening"]),
        "apply",
    );
    let (_, keys) = f.routes(&api).await;
    assert_eq!(keys, declared, "seed {seed}");
    assert_eq!(races.played.overlaps.load(SeqCst), 0, "seed {seed}");
    assert!(changing(&f.plan().await).is_empty(), "seed {seed}");
    println!(
        "seed {seed}: {} (conflicts in the second apply: {})",
        races.played.summary(),
        races.played.api_conflicts.load(SeqCst) - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_added_at_once_and_a_stray_deleted_seed_11() {
    two_routes_and_a_stray(11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_added_at_once_and_a_stray_deleted_seed_12() {
    two_routes_and_a_stray(12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_added_at_once_and_a_stray_deleted_seed_13() {
    two_routes_and_a_stray(13).await;
}

/// A canary whose own version errs (AWS/Lambda Errors with ExecutedVersion
/// = the new version) is rolled back, though no alarm on the function as a
/// whole fired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_own_version_errs_is_rolled_back() {
    let (_races, endpoint) = layer(21).await;
    let f = Fixture::new("t-race-canary-").await;
    f.append_yaml("deploy: { strategy: canary, percent: 10, interval_seconds: 30 }");
    ok(
        &run(&f, &endpoint, &["apply", "--yes", "--approve-broadening"]),
        "apply",
    );
    let http = f.stack().http_name();
    let alias = |f: &Fixture| {
        let lambda = f.lambda();
        let http = http.clone();
        async move {
            let a = lambda
                .get_alias()
                .function_name(&http)
                .name("live")
                .send()
                .await
                .unwrap();
            let weights: Vec<String> = a
                .routing_config()
                .and_then(|r| r.additional_version_weights())
                .map(|w| w.keys().cloned().collect())
                .unwrap_or_default();
            (a.function_version().unwrap_or_default().to_owned(), weights)
        }
    };
    let (before, _) = alias(&f).await;
    testkit::zips::write_function_zip(&f.artifacts, "image-http", "v2");
    let child = f
        .command(&["apply", "--yes", "--approve-broadening"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let new = loop {
        let (_, w) = alias(&f).await;
        if let Some(v) = w.first() {
            break v.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no canary step");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Errors of the canary's own version, as Lambda publishes them for an
    // alias invocation.
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let dim = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
    aws_sdk_cloudwatch::Client::new(&f.conf)
        .put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Errors")
                .dimensions(dim("FunctionName", &http))
                .dimensions(dim("Resource", &format!("{http}:live")))
                .dimensions(dim("ExecutedVersion", &new))
                .value(2.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("rolled back to version {before}"))
            && text.contains(&format!("ExecutedVersion={new}")),
        "{text}"
    );
    let (now, weights) = alias(&f).await;
    assert_eq!(now, before);
    assert!(weights.is_empty());
}

/// The images bucket in another Region than the stack: `plan` refuses,
/// naming both Regions, through the layer's 301s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_in_another_region_is_refused_by_plan() {
    let (_races, endpoint) = layer(31).await;
    let f = Fixture::new("t-race-region-").await;
    let bucket = testkit::unique("t-race-far-");
    let far = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&f.conf)
            .region(aws_sdk_s3::config::Region::new("us-west-2"))
            .force_path_style(true)
            .build(),
    );
    far.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let text = std::fs::read_to_string(&f.file).unwrap();
    std::fs::write(
        &f.file,
        text.replace(&format!("{}-images", f.name), &bucket),
    )
    .unwrap();
    let out = run(&f, &endpoint, &["plan"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&bucket) && text.contains("us-west-2") && text.contains(REGION),
        "{text}"
    );
    // Nothing was created.
    assert_eq!(f.inventory().await, Inventory::default());
}

/// The retry note on the progress line: under a layer whose windows are
/// long enough to be seen, apply says what it waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_says_what_it_waits_for() {
    let races = Races::with_windows(
        41,
        // Longer than the role's creation to the trigger's on a loaded
        // machine (function, version, alias: 4.5 s under three test lanes).
        Windows {
            propagation: Duration::from_secs(12),
            ..Windows::default()
        },
    );
    let endpoint = races.start(testkit::moto_endpoint()).await;
    let f = Fixture::new("t-race-note-").await;
    let text = ok(
        &run(&f, &endpoint, &["apply", "--yes", "--approve-broadening"]),
        "apply",
    );
    assert!(
        text.lines().any(|l| l.starts_with(&format!(
            "{}: Still creating...",
            provisioner::declare::TRIGGER
        )) && l.contains("(InvalidParameterValueException, retrying)")),
        "{text}"
    );
    assert!(races.played.role_not_propagated.load(SeqCst) >= 1);
}

/// An alarm `deploy.alarms` names must exist, as a metric or a composite
/// alarm: otherwise the plan has a problem naming it (a misspelt name would
/// watch nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_alarms_that_do_not_exist_are_a_plan_problem() {
    let f = Fixture::new("t-race-named-").await;
    let named = format!("{}-team-slo", f.name);
    f.append_yaml(&format!(
        "deploy: {{ strategy: canary, percent: 10, interval_seconds: 20, alarms: [{named}] }}"
    ));
    let plan = f.plan().await;
    assert!(
        plan.problems
            .iter()
            .any(|p| p.contains(&named)
                && p.contains("neither a metric alarm nor a composite alarm")),
        "{:?}",
        plan.problems
    );
    // A composite alarm of that name (over one of the stack's own) is found.
    aws_sdk_cloudwatch::Client::new(&f.conf)
        .put_composite_alarm()
        .alarm_name(&named)
        .alarm_rule(format!(
            "ALARM(\"{}\")",
            f.stack().alarm_name_for("http-errors")
        ))
        .send()
        .await
        .unwrap();
    let plan = f.plan().await;
    assert!(
        !plan.problems.iter().any(|p| p.contains(&named)),
        "{:?}",
        plan.problems
    );
}
