//! The door and the spend against moto: the `$default` stage's throttling
//! (exact, changed in place), the route's authorization (a JWT authorizer
//! with scopes, `AWS_IAM`, open again: each exact, the authorizer removed),
//! the HTTP function's reserved concurrency (a reservation the account
//! cannot give is a plan problem before any change; set, changed and removed
//! without publishing a version), and the client identity, with moto's IAM
//! enforcement switched on: its keys send and download with `couch-client`
//! and are refused on the dead-letter queue, on CreateQueue and on another
//! prefix.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use provisioner::declare;
use provisioner::engine::Action;

const JWT: &str = "http: { rate_per_second: 2.5, burst: 10, auth: jwt, jwt: { issuer: \"https://idp.example.com/pool\", audience: [app, web], scopes: [images/write] } }";

struct Door {
    rate: Option<f64>,
    burst: Option<i32>,
    kind: String,
    authorizer_id: Option<String>,
    scopes: Vec<String>,
    authorizers: Vec<aws_sdk_apigatewayv2::types::Authorizer>,
    stage_created: Option<aws_smithy_types::DateTime>,
}

async fn door(f: &Fixture) -> Door {
    let api_id = f.live_attr(declare::API, "id").await;
    let apigw = f.apigw();
    let stage = apigw
        .get_stage()
        .api_id(&api_id)
        .stage_name("$default")
        .send()
        .await
        .unwrap();
    let (routes, keys) = f.routes(&api_id).await;
    assert_eq!(
        keys,
        [
            "GET /",
            "GET /images/{id}",
            "POST /image_generator",
            "POST /images"
        ]
    );
    // The page is public whatever the stack's auth: no authorization, no
    // authorizer (a browser loads it before it holds a credential).
    let (page, routes): (Vec<_>, Vec<_>) = routes
        .into_iter()
        .partition(|r| r.route_key() == Some("GET /"));
    assert_eq!(
        page[0].authorization_type().map(|t| t.as_str()),
        Some("NONE"),
        "{page:?}"
    );
    assert_eq!(page[0].authorizer_id().unwrap_or_default(), "", "{page:?}");
    // Every other route is authorised alike.
    let route = &routes[0];
    for other in &routes {
        assert_eq!(
            other.authorization_type(),
            route.authorization_type(),
            "{routes:?}"
        );
        assert_eq!(other.authorizer_id(), route.authorizer_id());
    }
    let authorizers = apigw
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    let settings = stage.default_route_settings();
    Door {
        rate: settings.and_then(|s| s.throttling_rate_limit()),
        burst: settings.and_then(|s| s.throttling_burst_limit()),
        kind: route
            .authorization_type()
            .map_or("NONE", |t| t.as_str())
            .to_owned(),
        authorizer_id: route.authorizer_id().map(str::to_owned),
        scopes: route.authorization_scopes().to_vec(),
        authorizers: authorizers.items().to_vec(),
        stage_created: stage.created_date().copied(),
    }
}

fn redeclare(f: &Fixture, http: &str) {
    f.write(120, "team@example.com");
    f.append_yaml(http);
}

#[tokio::test]
async fn throttling_and_authorization_are_exact_changed_in_place_and_removable() {
    let f = Fixture::new("t-door-").await;
    // Defaults: a low throttle, an open route, and the plan says so.
    let out = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(
        out.contains("POST /image_generator and POST /images are open (http.auth: none)")
            && out.contains(
                "at most 363 an hour on each route (3 at once, then 0.1/s), 726 an hour in all"
            ),
        "{out}"
    );
    let d = door(&f).await;
    assert_eq!((d.rate, d.burst), (Some(0.1), Some(3)));
    assert_eq!(d.kind, "NONE");
    assert!(d.authorizers.is_empty());
    let created = d.stage_created;

    // A JWT authorizer with scopes, and a higher throttle: one update of the API.
    redeclare(&f, JWT);
    let (address, action, mut fields) = f.only_change().await;
    fields.sort();
    assert_eq!((address.as_str(), action), (declare::API, Action::Update));
    let mut want = vec!["authorizer".to_owned()];
    for route in ["GET /images/{id}", "POST /image_generator", "POST /images"] {
        for field in [
            "authorization_scopes",
            "authorization_type",
            "to_authorizer",
        ] {
            want.push(format!("routes.{route}.{field}"));
        }
    }
    want.extend([
        "stage.throttling.burst_limit".into(),
        "stage.throttling.rate_limit".into(),
    ]);
    assert_eq!(fields, want);
    let out = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(!out.contains("are open"), "{out}");
    let d = door(&f).await;
    assert_eq!((d.rate, d.burst), (Some(2.5), Some(10)));
    assert_eq!(d.stage_created, created, "the stage was updated in place");
    assert_eq!(d.authorizers.len(), 1, "{:?}", d.authorizers);
    let a = &d.authorizers[0];
    assert_eq!(a.name(), Some(f.stack().authorizer_name().as_str()));
    assert_eq!(a.authorizer_type().map(|t| t.as_str()), Some("JWT"));
    assert_eq!(a.identity_source(), ["$request.header.Authorization"]);
    let jwt = a.jwt_configuration().unwrap();
    assert_eq!(jwt.issuer(), Some("https://idp.example.com/pool"));
    assert_eq!(jwt.audience(), ["app", "web"]);
    assert_eq!(d.kind, "JWT");
    assert_eq!(d.authorizer_id.as_deref(), a.authorizer_id());
    assert_eq!(d.scopes, ["images/write"]);
    assert!(!f.plan().await.has_changes());

    // IAM: the route is detached from the authorizer, which is then deleted
    // (the emulator refuses, as AWS does, to delete one a route uses).
    redeclare(&f, "http: { rate_per_second: 2.5, burst: 10, auth: iam }");
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let d = door(&f).await;
    assert_eq!(d.kind, "AWS_IAM");
    assert!(d.authorizers.is_empty(), "{:?}", d.authorizers);
    assert!(!f.plan().await.has_changes());

    // Open again, the default throttle back.
    f.write(120, "team@example.com");
    let out = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(out.contains("are open (http.auth: none)"), "{out}");
    let d = door(&f).await;
    assert_eq!(
        (d.kind.as_str(), d.rate, d.burst),
        ("NONE", Some(0.1), Some(3))
    );
    assert_eq!(d.stage_created, created);
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn a_reservation_the_account_cannot_give_is_a_problem_before_any_change() {
    let f = Fixture::new("t-conc-").await;
    redeclare(&f, "http: { reserved_concurrency: 5 }");
    // A new account: a quota of 10, so nothing can be reserved.
    testkit::set_concurrency_quota(&f.endpoint, Some(10));
    let refused = f.cli(&["apply", "--yes", "--approve-broadening"]);
    testkit::set_concurrency_quota(&f.endpoint, None);
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    let said = format!("{}{}", stdout(&refused), stderr(&refused));
    assert!(
        said.contains("http.reserved_concurrency 5 for ")
            && said.contains(
                "decreases account's UnreservedConcurrentExecution below its minimum value of [100]"
            )
            && said.contains("quota in this Region is 10 with 10 unreserved now")
            && said.contains("at most 0 can be reserved"),
        "{said}"
    );
    assert!(f.queues().await.is_empty(), "nothing was created");

    // With AWS's default quota: reserved, then changed and removed in
    // place, publishing nothing.
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let http = f.stack().http_name();
    let reserved = |f: &Fixture| {
        let lambda = f.lambda();
        let http = http.clone();
        async move {
            lambda
                .get_function_concurrency()
                .function_name(http)
                .send()
                .await
                .unwrap()
                .reserved_concurrent_executions()
        }
    };
    assert_eq!(reserved(&f).await, Some(5));
    let version = f.live_attr(declare::HTTP, "version").await;
    redeclare(&f, "http: { reserved_concurrency: 7 }");
    assert_eq!(
        f.only_change().await,
        (
            declare::HTTP.to_owned(),
            Action::Update,
            vec!["reserved_concurrency".to_owned()]
        )
    );
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert_eq!(reserved(&f).await, Some(7));
    f.write(120, "team@example.com");
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert_eq!(reserved(&f).await, None);
    assert_eq!(
        f.live_attr(declare::HTTP, "version").await,
        version,
        "a reservation is not a version's: nothing was published"
    );
    assert!(!f.plan().await.has_changes());
}

/// SDK configuration with these keys (an IAM identity in the emulator).
#[tokio::test]
async fn the_client_identity_sends_and_downloads_and_is_refused_elsewhere() {
    // IAM enforcement refuses every caller without a policy: a server of its own.
    let endpoint = testkit::private_moto();
    let f = Fixture::with_endpoint("t-client-", &endpoint).await;
    let phone = "arn:aws:iam::123456789012:user/phone";
    f.append_yaml(&format!("client: {{ assumed_by: [\"{phone}\"] }}"));
    // The permission section shows who may assume the new role, as broadening.
    let plan = f.plan().await;
    let trust: Vec<_> = plan
        .permission_changes
        .iter()
        .filter(|c| c.address == declare::CLIENT_ROLE && c.permission.document == "trust policy")
        .collect();
    assert_eq!(trust.len(), 1, "{trust:#?}");
    assert!(trust[0].broadening);
    assert_eq!(trust[0].permission.principals, [format!("AWS:{phone}")]);
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();
    let role_arn = f.live_attr(declare::CLIENT_ROLE, "arn").await;
    let trust = f
        .iam()
        .get_role()
        .role_name(s.client_role_name())
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .assume_role_policy_document
        .unwrap();
    let trust = provisioner::aws::policies::parse_document(&trust);
    assert_eq!(
        trust["Statement"][0]["Principal"]["AWS"],
        serde_json::json!([phone])
    );
    let outputs = std::env::temp_dir().join(format!("{}-outputs.json", f.name));
    let json = f.run_ok(&["outputs", "--json"]);
    std::fs::write(&outputs, &json).unwrap();

    // Before enforcement: the phone's user (may only assume the client
    // role) and an administrator standing in for the worker.
    let iam = f.iam();
    let (phone_id, phone_secret) = user_with_keys(
        &iam,
        "phone",
        &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{role_arn}"}}]}}"#),
    )
    .await;
    let (admin_id, admin_secret) = user_with_keys(
        &iam,
        "admin",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    )
    .await;
    let admin = with_keys(&endpoint, &admin_id, &admin_secret, None);
    let admin_s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&admin)
            .force_path_style(true)
            .build(),
    );
    let bucket = s.images.bucket.clone();
    admin_s3
        .put_object()
        .bucket(&bucket)
        .key("elsewhere/secret.png")
        .body(b"not yours".to_vec().into())
        .send()
        .await
        .unwrap();
    let queue_url = f.queue_url(&s.queue_name()).await;
    let dlq_url = f.queue_url(&s.dlq_name()).await;
    testkit::enforce_iam(&endpoint, 0);

    // The phone assumes the client role.
    let sts = aws_sdk_sts::Client::new(&with_keys(&endpoint, &phone_id, &phone_secret, None));
    let creds = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("phone")
        .send()
        .await
        .expect("the phone may assume the client role")
        .credentials
        .unwrap();
    let (id, secret, token) = (
        creds.access_key_id().to_owned(),
        creds.secret_access_key().to_owned(),
        creds.session_token().to_owned(),
    );

    // couch-client with the role's keys: sends, waits, downloads.
    let dir = std::env::temp_dir().join(format!("{}-download", f.name));
    let mut client = std::process::Command::new(testkit::host_binary("couch-client"))
        .args([
            "--stack",
            outputs.to_str().unwrap(),
            "--wait",
            "--timeout",
            "60",
        ])
        .arg("--download")
        .arg(format!("{}/", dir.display()))
        .arg("a lighthouse in the fog")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_SESSION_TOKEN", &token)
        .env("AWS_REGION", REGION)
        .env_remove("AWS_PROFILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run couch-client");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let message_id = lines.next().expect("the message id").unwrap();
    // The worker's part, by the administrator: the message is on the
    // prompts queue, and its picture is stored under the id.
    let admin_sqs = aws_sdk_sqs::Client::new(&admin);
    let got = admin_sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages()[0].message_id(), Some(message_id.as_str()));
    let key = couch_contract::image_key(&s.images.prefix, &message_id);
    let png = testkit::png::paint("a lighthouse in the fog", 7, 8, 8);
    tokio::time::sleep(Duration::from_secs(2)).await;
    admin_s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(png.clone().into())
        .send()
        .await
        .unwrap();
    let status = client.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut client.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "couch-client failed: {err}");
    assert_eq!(rest, [format!("s3://{bucket}/{key}")], "{err}");
    let saved = std::fs::read(dir.join(format!("{message_id}.png"))).unwrap();
    assert_eq!(saved, png, "the downloaded picture is the stored one");

    // The same keys, anywhere else: refused.
    let role = with_keys(&endpoint, &id, &secret, Some(&token));
    let sqs = aws_sdk_sqs::Client::new(&role);
    denied(
        "SendMessage to the dead-letter queue",
        sqs.send_message()
            .queue_url(&dlq_url)
            .message_body("{}")
            .send()
            .await,
    );
    denied(
        "CreateQueue",
        sqs.create_queue().queue_name("mine").send().await,
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&role)
            .force_path_style(true)
            .build(),
    );
    denied(
        "GetObject on another prefix",
        s3.get_object()
            .bucket(&bucket)
            .key("elsewhere/secret.png")
            .send()
            .await,
    );
    denied(
        "PutObject under the images prefix",
        s3.put_object()
            .bucket(&bucket)
            .key(couch_contract::image_key(&s.images.prefix, "forged"))
            .body(b"x".to_vec().into())
            .send()
            .await,
    );

    // Enforcement off again; without `client:`, apply deletes the role.
    testkit::enforce_iam(&endpoint, u32::MAX);
    f.write(120, "team@example.com");
    let plan = f.plan().await;
    assert_eq!(
        changing(&plan),
        [(declare::CLIENT_ROLE.to_owned(), Action::Delete)],
        "{plan:#?}"
    );
    assert!(
        plan.permission_changes
            .iter()
            .all(|c| c.address == declare::CLIENT_ROLE && !c.broadening),
        "{:#?}",
        plan.permission_changes
    );
    f.run_ok(&["apply", "--yes"]);
    let gone = f
        .iam()
        .get_role()
        .role_name(s.client_role_name())
        .send()
        .await;
    assert!(gone.is_err(), "the client role is deleted");
    assert!(!f.plan().await.has_changes());
}
