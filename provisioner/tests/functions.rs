//! The functions' part of the stack against moto: log groups, roles with
//! derived policies, Lambda functions from the zips, the SQS trigger, the HTTP
//! API and its invoke permission, and the waits AWS needs (made to happen by a
//! proxy that answers like AWS where moto answers at once).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::*;
use provisioner::aws::policies::{parse_document, wildcards};
use provisioner::aws::roles::POLICY_NAME;
use provisioner::declare;
use provisioner::engine::Action;
use serde_json::{Value, json};

/// Every (action, resource) pair a policy grants.
fn grants(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for st in doc["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow");
        for a in st["Action"].as_array().unwrap() {
            for r in st["Resource"].as_array().unwrap() {
                out.insert((
                    a.as_str().unwrap().to_owned(),
                    r.as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

async fn worker_configuration(
    f: &Fixture,
) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
    f.lambda()
        .get_function_configuration()
        .function_name(f.stack().worker_name())
        .send()
        .await
        .unwrap()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
        .collect()
}

#[tokio::test]
async fn everything_is_created_with_the_declared_fields_and_least_privilege() {
    let f = Fixture::new("t-fn-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();
    let account = "123456789012";
    let queue_arn = format!("arn:aws:sqs:{REGION}:{account}:{}", s.queue_name());

    // Log groups, with the declared retention.
    for function in [s.worker_name(), s.http_name()] {
        let groups = f
            .logs()
            .describe_log_groups()
            .log_group_name_prefix(format!("/aws/lambda/{function}"))
            .send()
            .await
            .unwrap();
        assert_eq!(groups.log_groups().len(), 1);
        assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));
    }

    // Functions.
    for (name, memory, timeout) in [(s.worker_name(), 512, 30), (s.http_name(), 512, 29)] {
        let out = f
            .lambda()
            .get_function()
            .function_name(&name)
            .send()
            .await
            .unwrap();
        let c = out.configuration().unwrap();
        assert_eq!(c.runtime().unwrap().as_str(), "provided.al2023");
        assert_eq!(c.architectures()[0].as_str(), "arm64");
        assert_eq!(c.handler(), Some("bootstrap"));
        assert_eq!(c.memory_size(), Some(memory));
        assert_eq!(c.timeout(), Some(timeout));
        assert_eq!(
            c.role(),
            Some(format!("arn:aws:iam::{account}:role/{name}").as_str())
        );
        let env = c.environment().unwrap().variables().unwrap();
        assert_eq!(env["IMAGE_BUCKET"], format!("{}-images", f.name));
        assert_eq!(env["IMAGE_PREFIX"], "11");
        assert_eq!(env["MODEL_ID"], "stability.stable-image-core-v1:1");
        assert_eq!(env["MODEL_REGION"], "us-west-2");
        // Each function's own: the worker's receive count, the HTTP function's queue.
        if name == s.worker_name() {
            assert_eq!(env["MAX_RECEIVE_COUNT"], "3");
            // No model capacity stated: a batch's calls, found from throttles.
            assert_eq!(env["WORKER_CONCURRENCY"], "10");
            assert_eq!(env["WORKER_PACE"], "adaptive");
            assert_eq!(env["DLQ_NAME"], s.dlq_name());
            assert_eq!(env.len(), 8);
        } else {
            assert_eq!(env["QUEUE_ARN"], queue_arn);
            assert_eq!(env.len(), 5);
        }
        // JSON lines at the stack's level, in the declared log group (moto
        // drops LoggingConfig; scripts/moto_server.py keeps it as Lambda does).
        let logging = c.logging_config().unwrap();
        assert_eq!(logging.log_format().map(|f| f.as_str()), Some("JSON"));
        assert_eq!(
            logging.application_log_level().map(|l| l.as_str()),
            Some("INFO")
        );
        assert_eq!(logging.system_log_level().map(|l| l.as_str()), Some("INFO"));
        assert_eq!(
            logging.log_group(),
            Some(format!("/aws/lambda/{name}").as_str())
        );
        let zip = std::fs::read(
            f.artifacts
                .join(if name == s.worker_name() {
                    "image-worker"
                } else {
                    "image-http"
                })
                .join("bootstrap.zip"),
        )
        .unwrap();
        assert_eq!(
            c.code_sha256(),
            Some(provisioner::artifacts::code_sha256(&zip).as_str())
        );
        assert_eq!(out.tags().unwrap()["stack"], f.name);
    }

    // The trigger.
    let mappings = f
        .lambda()
        .list_event_source_mappings()
        .function_name(format!("{}:live", s.worker_name()))
        .send()
        .await
        .unwrap();
    let m = &mappings.event_source_mappings()[0];
    assert_eq!(mappings.event_source_mappings().len(), 1);
    assert_eq!(m.event_source_arn(), Some(queue_arn.as_str()));
    assert_eq!(m.batch_size(), Some(10));
    assert_eq!(
        m.function_response_types()[0].as_str(),
        "ReportBatchItemFailures"
    );
    assert_eq!(
        m.scaling_config().and_then(|c| c.maximum_concurrency()),
        Some(5)
    );
    assert_eq!(m.state(), Some("Enabled"));

    // The HTTP API and its parts.
    let apis = f.apigw().get_apis().send().await.unwrap();
    let ours: Vec<_> = apis
        .items()
        .iter()
        .filter(|a| a.name() == Some(s.api_name().as_str()))
        .collect();
    assert_eq!(ours.len(), 1);
    let api_id = ours[0].api_id().unwrap();
    assert_eq!(ours[0].protocol_type().unwrap().as_str(), "HTTP");
    let integrations = f
        .apigw()
        .get_integrations()
        .api_id(api_id)
        .send()
        .await
        .unwrap();
    let i = &integrations.items()[0];
    assert_eq!(i.integration_type().unwrap().as_str(), "AWS_PROXY");
    assert_eq!(
        i.integration_uri(),
        Some(
            format!(
                "arn:aws:lambda:{REGION}:{account}:function:{}:live",
                s.http_name()
            )
            .as_str()
        ),
        "the integration calls the live alias"
    );
    assert_eq!(i.payload_format_version(), Some("2.0"));
    assert_eq!(i.timeout_in_millis(), Some(29_000));
    let (routes, keys) = f.routes(api_id).await;
    assert_eq!(
        keys,
        ["GET /images/{id}", "POST /image_generator", "POST /images"]
    );
    for route in &routes {
        assert_eq!(
            route.target(),
            Some(format!("integrations/{}", i.integration_id().unwrap()).as_str())
        );
    }
    let stages = f.apigw().get_stages().api_id(api_id).send().await.unwrap();
    assert_eq!(stages.items()[0].stage_name(), Some("$default"));
    assert_eq!(stages.items()[0].auto_deploy(), Some(true));

    // The invoke permission on the live alias, scoped to this API's route.
    let policy: Value = serde_json::from_str(
        &f.lambda()
            .get_policy()
            .function_name(s.http_name())
            .qualifier("live")
            .send()
            .await
            .unwrap()
            .policy
            .unwrap(),
    )
    .unwrap();
    // One statement per route, each scoped to that route.
    let mut sources: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| {
            assert_eq!(
                st["Resource"],
                json!(format!(
                    "arn:aws:lambda:{REGION}:{account}:function:{}:live",
                    s.http_name()
                ))
            );
            assert_eq!(st["Action"], "lambda:InvokeFunction");
            assert_eq!(st["Principal"]["Service"], "apigateway.amazonaws.com");
            st["Condition"]["ArnLike"]["AWS:SourceArn"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    sources.sort();
    let api_arn = format!("arn:aws:execute-api:{REGION}:{account}:{api_id}");
    assert_eq!(
        sources,
        [
            format!("{api_arn}/*/GET/images/*"),
            format!("{api_arn}/*/POST/image_generator"),
            format!("{api_arn}/*/POST/images"),
        ]
    );

    // Roles: Lambda may assume them, nothing else; the policies are exactly the derived grants.
    let bucket = format!("arn:aws:s3:::{}-images", f.name);
    let model = "arn:aws:bedrock:us-west-2::foundation-model/stability.stable-image-core-v1:1";
    let dlq_arn = format!("arn:aws:sqs:{REGION}:{account}:{}", s.dlq_name());
    for (role, extra) in [
        (
            s.worker_name(),
            vec![
                ("sqs:ReceiveMessage", queue_arn.as_str()),
                ("sqs:DeleteMessage", queue_arn.as_str()),
                ("sqs:GetQueueAttributes", queue_arn.as_str()),
                ("sqs:ChangeMessageVisibility", queue_arn.as_str()),
                // What it gives up, it moves to the dead-letter queue itself.
                ("sqs:SendMessage", dlq_arn.as_str()),
            ],
        ),
        // The HTTP role sends prompts (POST /images) and nothing else on SQS.
        (s.http_name(), vec![("sqs:SendMessage", queue_arn.as_str())]),
    ] {
        let got = f.iam().get_role().role_name(&role).send().await.unwrap();
        let trust = parse_document(got.role().unwrap().assume_role_policy_document().unwrap());
        assert_eq!(
            trust["Statement"],
            json!([{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}])
        );
        let doc = f.role_policy(&role).await;
        assert!(wildcards(&doc).is_empty(), "{doc}");
        let logs = format!("arn:aws:logs:{REGION}:{account}:log-group:/aws/lambda/{role}:*");
        let images = format!("{bucket}/11/images/*");
        let mut want = vec![
            ("bedrock:InvokeModel", model),
            ("s3:PutObject", images.as_str()),
            ("s3:GetObject", images.as_str()),
            ("s3:ListBucket", bucket.as_str()),
            ("logs:CreateLogStream", logs.as_str()),
            ("logs:PutLogEvents", logs.as_str()),
        ];
        want.extend(extra);
        assert_eq!(grants(&doc), pairs(&want), "{role}: {doc}");
        let list = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["Action"] == json!(["s3:ListBucket"]))
            .unwrap();
        assert_eq!(
            list["Condition"],
            json!({"StringLike": {"s3:prefix": ["11/images/*"]}})
        );
        let attached = f
            .iam()
            .list_attached_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        assert!(attached.attached_policies().is_empty());
    }

    // Outputs.
    let out: Value = serde_json::from_str(&f.run_ok(&["outputs", "--json"])).unwrap();
    assert!(
        out["api_url"].as_str().unwrap().ends_with(&format!(
            "{api_id}.execute-api.{REGION}.amazonaws.com/image_generator"
        )),
        "{out}"
    );
    assert_eq!(out["worker_function_name"], json!(s.worker_name()));
    assert_eq!(out["http_function_name"], json!(s.http_name()));
    assert_eq!(
        out["worker_role_arn"],
        json!(format!("arn:aws:iam::{account}:role/{}", s.worker_name()))
    );
    assert_eq!(
        out["http_role_arn"],
        json!(format!("arn:aws:iam::{account}:role/{}", s.http_name()))
    );

    // And nothing left to do.
    let out = f.cli(&["plan", "--detailed-exitcode"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
}

#[tokio::test]
async fn code_changes_are_exactly_one_update_and_rebuilt_identical_zips_nothing() {
    let f = Fixture::new("t-code-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);

    // Rebuilt from unchanged source: the same bytes, a new file.
    testkit::zips::write_function_zips(&f.artifacts, "v1");
    let out = f.cli(&["plan", "--detailed-exitcode"]);
    assert_ok(&out);

    // A different worker zip: one code update, shown as two short hashes.
    let before = provisioner::artifacts::Artifacts::load(&f.artifacts);
    testkit::zips::write_function_zip(&f.artifacts, "image-worker", "v2");
    let after = provisioner::artifacts::Artifacts::load(&f.artifacts);
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (
            declare::WORKER,
            Action::Update,
            vec!["code_sha256".to_owned()]
        )
    );
    let short = |a: &provisioner::artifacts::Artifact| {
        provisioner::artifacts::short(a.code_sha256.as_ref().unwrap())
    };
    let text = f.run_ok(&["plan"]);
    assert!(
        text.contains(&format!(
            "~ code_sha256: {:?} -> {:?}",
            short(&before.worker),
            short(&after.worker)
        )),
        "{text}"
    );
    assert!(!text.contains("PK\u{5}\u{6}"), "never zip bytes: {text}");
    // The alias moves to the version the update publishes.
    assert!(
        text.contains("alias.worker") && text.contains("function_version"),
        "{text}"
    );
    let serving = |f: &Fixture| {
        let (lambda, name) = (f.lambda(), f.stack().worker_name());
        async move {
            lambda
                .get_alias()
                .function_name(name)
                .name("live")
                .send()
                .await
                .unwrap()
                .function_version()
                .unwrap()
                .to_owned()
        }
    };
    let old_version = serving(&f).await;
    let text = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(text.contains("0 added, 2 changed, 0 destroyed"), "{text}");
    let live = worker_configuration(&f).await;
    assert_eq!(live.code_sha256(), after.worker.code_sha256.as_deref().ok());
    let new_version = serving(&f).await;
    assert_ne!(new_version, old_version);
    let published = f
        .lambda()
        .get_function_configuration()
        .function_name(f.stack().worker_name())
        .qualifier(&new_version)
        .send()
        .await
        .unwrap();
    assert_eq!(
        published.code_sha256(),
        after.worker.code_sha256.as_deref().ok(),
        "the alias serves the new code"
    );
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn worker_memory_is_exactly_one_field_update() {
    let f = Fixture::new("t-mem-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    f.append_yaml("worker: { memory_mb: 1024 }");
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (
            declare::WORKER,
            Action::Update,
            vec!["memory_size".to_owned()]
        )
    );
    // The function and its alias (moved to the version published with it).
    let text = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(text.contains("0 added, 2 changed, 0 destroyed"), "{text}");
    let live = worker_configuration(&f).await;
    assert_eq!(live.memory_size(), Some(1024));
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn trigger_drift_is_shown_and_corrected() {
    let f = Fixture::new("t-esm-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let lambda = f.lambda();
    let worker = f.stack().worker_name();
    let uuid = lambda
        .list_event_source_mappings()
        .function_name(format!("{worker}:live"))
        .send()
        .await
        .unwrap()
        .event_source_mappings()[0]
        .uuid()
        .unwrap()
        .to_owned();
    lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .batch_size(3)
        .send()
        .await
        .unwrap();
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (
            declare::TRIGGER,
            Action::Update,
            vec!["batch_size".to_owned()]
        )
    );
    let text = f.run_ok(&["plan"]);
    assert!(text.contains("~ batch_size: 3 -> 10"), "{text}");
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let m = lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .unwrap();
    assert_eq!(m.batch_size(), Some(10), "corrected in place, same mapping");
    assert!(!f.plan().await.has_changes());
}

/// The `$default` stage changed by hand is put back in place with
/// UpdateStage (served by the moto launcher): same stage, same creation date.
#[tokio::test]
async fn stage_drift_is_corrected_in_place() {
    let f = Fixture::new("t-stage-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let api_id = f.live_attr(declare::API, "id").await;
    let apigw = f.apigw();
    let stage = |apigw: aws_sdk_apigatewayv2::Client, api_id: String| async move {
        apigw
            .get_stage()
            .api_id(api_id)
            .stage_name("$default")
            .send()
            .await
            .unwrap()
    };
    let created = stage(apigw.clone(), api_id.clone())
        .await
        .created_date()
        .cloned();
    apigw
        .update_stage()
        .api_id(&api_id)
        .stage_name("$default")
        .auto_deploy(false)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stage(apigw.clone(), api_id.clone()).await.auto_deploy(),
        Some(false)
    );
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (
            declare::API,
            Action::Update,
            vec!["stage.auto_deploy".to_owned()]
        )
    );
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let after = stage(apigw, api_id).await;
    assert_eq!(after.auto_deploy(), Some(true));
    assert_eq!(
        after.created_date().cloned(),
        created,
        "updated in place, not recreated"
    );
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn a_foreign_role_with_the_stacks_name_is_refused_untouched_and_adoptable() {
    let f = Fixture::new("t-role-").await;
    let s = f.stack();
    let foreign_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    f.iam()
        .create_role()
        .role_name(s.worker_name())
        .assume_role_policy_document(foreign_trust)
        .send()
        .await
        .unwrap();

    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!(
            "iam-role {:?} (role.worker) exists but is not owned",
            s.worker_name()
        )),
        "{}",
        stdout(&out)
    );
    let got = f
        .iam()
        .get_role()
        .role_name(s.worker_name())
        .send()
        .await
        .unwrap();
    assert!(
        parse_document(got.role().unwrap().assume_role_policy_document().unwrap())
            .to_string()
            .contains("ec2.amazonaws.com"),
        "untouched"
    );
    assert!(f.queues().await.is_empty(), "nothing else was created");

    let out = f.cli(&["apply", "--yes", "--approve-broadening", "--adopt"]);
    assert_ok(&out);
    let got = f
        .iam()
        .get_role()
        .role_name(s.worker_name())
        .send()
        .await
        .unwrap();
    let trust = parse_document(got.role().unwrap().assume_role_policy_document().unwrap());
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        json!(["lambda.amazonaws.com"])
    );
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn a_grant_added_by_hand_is_shown_and_removed() {
    let f = Fixture::new("t-extra-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let role = f.stack().http_name();
    f.iam()
        .put_role_policy()
        .role_name(&role)
        .policy_name("debug-everything")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let admin = f
        .iam()
        .create_policy()
        .policy_name(format!("{}-admin", f.name))
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    f.iam()
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(admin.policy().unwrap().arn().unwrap())
        .send()
        .await
        .unwrap();
    let (address, _, fields) = f.only_change().await;
    assert_eq!(address, declare::HTTP_ROLE);
    assert_eq!(fields, ["managed_policies", "other_inline_policies"]);
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let inline = f
        .iam()
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert_eq!(inline.policy_names(), [POLICY_NAME]);
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn missing_zips_stop_plan_and_apply_before_any_call_but_not_validate_or_offline() {
    let f = Fixture::new("t-nozip-").await;
    std::fs::remove_dir_all(&f.artifacts).unwrap();
    for verb in [&["plan"][..], &["apply", "--yes", "--approve-broadening"]] {
        // A closed port: any AWS call would fail differently.
        let out = f
            .command(verb)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("image-worker/bootstrap.zip does not exist"),
            "{err}"
        );
        assert!(err.contains("run `scripts/build-functions`"), "{err}");
        assert!(err.contains("nothing was read or changed"), "{err}");
    }
    let out = f.cli(&["plan", "--offline"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("(not built: run scripts/build-functions)"),
        "{}",
        stdout(&out)
    );
    let out = f.cli(&["validate"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("code image-worker: not built"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn destroy_removes_functions_api_roles_and_logs_dependents_first() {
    let f = Fixture::new("t-fndestroy-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let other = Fixture::new("t-fnother-").await;
    other.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();

    let text = f.run_ok(&["destroy", "--yes"]);
    let at = |address: &str| {
        text.find(&format!("{address}: Destruction complete"))
            .unwrap_or_else(|| panic!("{address} not destroyed:\n{text}"))
    };
    assert!(at(declare::TRIGGER) < at(declare::WORKER));
    assert!(at(declare::API_PERMISSION) < at(declare::API));
    assert!(at(declare::API) < at(declare::HTTP));
    assert!(at(declare::WORKER) < at(declare::WORKER_ROLE));
    assert!(at(declare::WORKER) < at(declare::WORKER_LOGS));
    assert!(at(declare::HTTP) < at(declare::HTTP_ROLE));

    let lambda = f.lambda();
    for name in [s.worker_name(), s.http_name()] {
        assert!(
            lambda
                .get_function()
                .function_name(&name)
                .send()
                .await
                .is_err()
        );
        assert!(f.iam().get_role().role_name(&name).send().await.is_err());
    }
    let groups = f
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{}", f.name))
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty());
    let apis = f.apigw().get_apis().send().await.unwrap();
    assert!(
        !apis
            .items()
            .iter()
            .any(|a| a.name() == Some(s.api_name().as_str()))
    );
    // The other stack is intact.
    assert!(!other.plan().await.has_changes());
}

// The proxy serves from this runtime while the binary runs: two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_iam_propagation_pending_functions_and_updates_in_progress() {
    let aws_like = testkit::proxy::LambdaLikeAws::new(2, 2);
    let (intercept, rewrite) = aws_like.hooks();
    let endpoint =
        testkit::proxy::start_with(testkit::moto_endpoint(), Duration::ZERO, intercept, rewrite)
            .await;
    let f = Fixture::with_endpoint("t-waits-", &endpoint).await;
    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    let counts = &aws_like.counts;
    assert_eq!(counts.role_not_assumable.load(SeqCst), 2);
    // The engine's retry says what it waits out, on the function's
    // progress line.
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("function.")
            && l.contains(": Still creating... [")
            && l.ends_with("(InvalidParameterValueException, retrying)")),
        "{}",
        stdout(&out)
    );
    // Both new functions were Pending twice before the trigger, permission and
    // integration used them.
    assert_eq!(counts.pending.load(SeqCst), 4);
    assert!(!f.plan().await.has_changes());

    // Configuration, then code: each waits for the other, conflicts are retried.
    f.append_yaml("worker: { memory_mb: 1024 }");
    testkit::zips::write_function_zip(&f.artifacts, "image-worker", "v2");
    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    assert_eq!(
        counts.conflicts.load(SeqCst),
        2,
        "configuration and code each conflicted once"
    );
    assert!(counts.in_progress.load(SeqCst) >= 2);
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn owned_duplicate_apis_and_mappings_are_planned_as_deletions_and_healed_by_one_apply() {
    let f = Fixture::new("t-dupapi-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();
    let kept_api = f.live_attr(declare::API, "id").await;
    // A foreign API with the same name is not ours: nothing changes, ever.
    let foreign = f
        .apigw()
        .create_api()
        .name(s.api_name())
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .tags("owner", "someone-else")
        .send()
        .await
        .unwrap();
    assert!(!f.plan().await.has_changes());
    // What two racing applies left before the stack lock: a second API
    // carrying this stack's ownership tags, and a second mapping.
    let twin = f
        .apigw()
        .create_api()
        .name(s.api_name())
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .set_tags(Some(s.resource_tags().into_iter().collect()))
        .send()
        .await
        .unwrap();
    let twin_id = twin.api_id().unwrap().to_owned();
    let queue_arn = f
        .queue_attr(
            &s.queue_name(),
            aws_sdk_sqs::types::QueueAttributeName::QueueArn,
        )
        .await;
    let extra = f
        .lambda()
        .create_event_source_mapping()
        .event_source_arn(&queue_arn)
        .function_name(s.worker_name())
        .batch_size(10)
        .send()
        .await
        .unwrap();
    let extra_uuid = extra.uuid().unwrap().to_owned();

    let out = f.cli(&["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("- api.http (duplicate {twin_id})")),
        "{text}"
    );
    assert!(
        text.contains(&format!("trigger.prompts (duplicate {extra_uuid})")),
        "{text}"
    );
    assert!(
        text.contains("0 to add, 0 to change, 2 to destroy"),
        "{text}"
    );
    let plan = f.plan().await;
    let deletions: Vec<(&str, Option<&str>)> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| (c.address.as_str(), c.duplicate_of.as_deref()))
        .collect();
    assert_eq!(deletions.len(), 2, "{deletions:?}");
    assert!(deletions.contains(&(
        format!("api.http (duplicate {twin_id})").as_str(),
        Some(declare::API)
    )));

    // One apply heals it: the oldest of each is kept, the foreign API untouched.
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(!f.plan().await.has_changes());
    let apis: Vec<String> = f
        .apigw()
        .get_apis()
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter(|a| a.name() == Some(s.api_name().as_str()))
        .filter_map(|a| a.api_id().map(str::to_owned))
        .collect();
    assert!(apis.contains(&kept_api) && apis.contains(&foreign.api_id().unwrap().to_owned()));
    assert!(!apis.contains(&twin_id), "{apis:?}");
    let mappings = f
        .lambda()
        .list_event_source_mappings()
        .function_name(format!("{}:live", s.worker_name()))
        .send()
        .await
        .unwrap();
    let uuids: Vec<&str> = mappings
        .event_source_mappings()
        .iter()
        .filter_map(|m| m.uuid())
        .collect();
    assert_eq!(uuids.len(), 1, "{uuids:?}");
    assert_ne!(uuids[0], extra_uuid);
}

/// `provisioner local` pauses the emulator's own event source mapping (moto
/// receives every sent message for it, which counts toward maxReceiveCount)
/// and enables it again on exit: the plan shows exactly that while paused and
/// nothing after.
#[tokio::test]
async fn the_local_run_pauses_the_emulators_mapping_and_restores_it() {
    use aws_sdk_sqs::types::MessageSystemAttributeName as Attr;
    use provisioner::local::trigger::{pause_emulator_mappings, resume_emulator_mappings};
    let f = Fixture::new("t-local-esm-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let stack = f.stack();
    let (lambda, sqs) = (f.lambda(), f.sqs());
    let url = f.queue_url(&stack.queue_name()).await;
    let arn = f
        .queue_attr(
            &stack.queue_name(),
            aws_sdk_sqs::types::QueueAttributeName::QueueArn,
        )
        .await;
    let receive_count = |body: &'static str| {
        let (sqs, url) = (sqs.clone(), url.clone());
        async move {
            sqs.send_message()
                .queue_url(&url)
                .message_body(body)
                .send()
                .await
                .unwrap();
            let got = sqs
                .receive_message()
                .queue_url(&url)
                .message_system_attribute_names(Attr::ApproximateReceiveCount)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let m = &got.messages()[0];
            assert_eq!(m.body(), Some(body));
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            m.attributes().unwrap()[&Attr::ApproximateReceiveCount].clone()
        }
    };
    // Enabled: moto already received the message once when it was sent.
    assert_eq!(receive_count("before").await, "2");
    let paused = pause_emulator_mappings(&lambda, &stack.worker_name(), &arn)
        .await
        .unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(
        receive_count("paused").await,
        "1",
        "only our receive counts"
    );
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (declare::TRIGGER, Action::Update, vec!["enabled".to_owned()])
    );
    resume_emulator_mappings(&lambda, &paused).await.unwrap();
    assert!(changing(&f.plan().await).is_empty());
    // Pausing what is already paused changes nothing and is not resumed twice.
    let again = pause_emulator_mappings(&lambda, &stack.worker_name(), &arn)
        .await
        .unwrap();
    assert_eq!(
        pause_emulator_mappings(&lambda, &stack.worker_name(), &arn)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    resume_emulator_mappings(&lambda, &again).await.unwrap();
}

/// An API deleted between `GetApis` and reading its parts (a killed destroy's
/// last `DeleteApi` still being carried out as the next run reads) is absent,
/// not a failed read.
#[tokio::test]
async fn an_http_api_deleted_while_being_read_is_absent() {
    let f = Fixture::new("fn-api-gone").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let gone: testkit::proxy::Intercept = std::sync::Arc::new(|req: &testkit::http::Request| {
        let path = req.path.split('?').next().unwrap_or_default();
        (req.method == "GET" && path.starts_with("/v2/apis/") && path.ends_with("/integrations"))
            .then(|| testkit::http::Response {
                status: 404,
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("x-amzn-ErrorType".into(), "NotFoundException".into()),
                ],
                body: br#"{"message": "Invalid API identifier specified"}"#.to_vec(),
            })
    });
    let endpoint = testkit::proxy::start_with(
        testkit::moto_endpoint(),
        Duration::ZERO,
        gone,
        std::sync::Arc::new(|_, r| r),
    )
    .await;
    let session = provisioner::commands::Session::new(
        f.stack(),
        &provisioner::artifacts::Artifacts::load(&f.artifacts),
        std::sync::Arc::new({
            let conf = testkit::sdk_config(&endpoint, REGION);
            provisioner::aws::Aws::from_conf(&conf)
                .with_bedrock_endpoint(&conf, &f.bedrock.endpoint)
        }),
    );
    let (plan, _) = session
        .plan(provisioner::engine::Mode::Apply, false)
        .await
        .expect("the read does not fail");
    // Created again; the invoke permission, the 5xx alarm and the dashboard
    // follow the new API's id.
    assert_eq!(
        changing(&plan),
        [
            (declare::API.to_owned(), Action::Create),
            (declare::API_PERMISSION.to_owned(), Action::Update),
            (declare::SUBMIT_PERMISSION.to_owned(), Action::Update),
            (declare::STATUS_PERMISSION.to_owned(), Action::Update),
            (declare::API_5XX_ALARM.to_owned(), Action::Update),
            (declare::DASHBOARD.to_owned(), Action::Update)
        ],
        "{plan:#?}"
    );
}
