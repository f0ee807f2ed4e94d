//! The bootstrap roles' policies are enough and no more: plan, apply, an
//! update touching every kind, and destroy run against moto with the SDK call
//! log on; every call maps to an IAM action the right policy allows (plan:
//! only the plan policy), and the policies allow no action never called.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use provisioner::artifacts::Artifacts;
use provisioner::aws::policies::{PolicyDocument, wildcards};
use provisioner::commands::{Session, bootstrap};
use provisioner::engine::permission_changes::glob;
use provisioner::engine::{Mode, execute};

/// The IAM actions one SDK call needs. Most are `{service}:{Operation}`; the
/// exceptions are IAM's own spelling (API Gateway by HTTP method, S3's
/// HeadBucket is ListBucket, Lambda's Invoke is InvokeFunction, its
/// create/update pass the role).
fn iam_actions(service: &str, operation: &str) -> Vec<String> {
    let prefix = match service {
        "SQS" => "sqs",
        "SNS" => "sns",
        "CloudWatch" => "cloudwatch",
        "CloudWatch Logs" => "logs",
        "IAM" => "iam",
        "Lambda" => "lambda",
        "ApiGatewayV2" => "apigateway",
        "S3" => "s3",
        "STS" => "sts",
        "CloudFormation" => "cloudformation",
        "Bedrock" => "bedrock",
        other => return vec![format!("?{other}:{operation}")],
    };
    match (prefix, operation) {
        // Needs no permission: every principal may ask who it is.
        ("sts", "GetCallerIdentity") => vec![],
        ("s3", "HeadBucket" | "ListObjectsV2") => vec!["s3:ListBucket".into()],
        // The pre-traffic health check.
        ("lambda", "Invoke") => vec!["lambda:InvokeFunction".into()],
        ("apigateway", op) => {
            let method = if op.starts_with("Get") {
                "GET"
            } else if op.starts_with("Create") || op == "TagResource" {
                "POST"
            } else if op.starts_with("Update") {
                "PATCH"
            } else if op.starts_with("Delete") || op == "UntagResource" {
                "DELETE"
            } else {
                panic!("unmapped API Gateway operation {op}")
            };
            vec![format!("apigateway:{method}")]
        }
        ("lambda", op @ ("CreateFunction" | "UpdateFunctionConfiguration")) => {
            vec![format!("lambda:{op}"), "iam:PassRole".into()]
        }
        (p, op) => vec![format!("{p}:{op}")],
    }
}

fn called(session: &Session) -> BTreeSet<String> {
    let held = held_from_ci(session);
    session
        .aws
        .calls
        .snapshot()
        .into_iter()
        .flat_map(|c| iam_actions(&c.service, &c.operation))
        .filter(|a| !held.contains(a))
        .collect()
}

/// What only a person (or `bootstrap`) does: the writes of the stack's
/// permissions boundary. The stack's own apply makes its boundary when a
/// person applies it first; CI's roles never may (checked below).
fn held_from_ci(session: &Session) -> BTreeSet<String> {
    session
        .kinds
        .iter()
        .filter(|k| k.held_from_ci())
        .flat_map(|k| k.write_access())
        .flat_map(|g| g.actions)
        .map(str::to_owned)
        .collect()
}

/// Every action a policy allows.
fn allowed(doc: &PolicyDocument) -> BTreeSet<String> {
    doc.statement
        .iter()
        .flat_map(|st| st.action.iter().cloned())
        .collect()
}

fn session(f: &Fixture, zips: &std::path::Path) -> Session {
    Session::new(f.stack(), &Artifacts::load(zips), Arc::new(f.aws()))
}

/// Plans and applies in `mode` with a fresh session; the actions its calls took.
/// Under the stack lock, as `apply` and `destroy` run.
async fn converge(f: &Fixture, zips: &std::path::Path, mode: Mode) -> BTreeSet<String> {
    converge_in(&session(f, zips), mode).await
}

/// [`converge`] for any session (a preview stack's).
async fn converge_in(s: &Session, mode: Mode) -> BTreeSet<String> {
    s.locked("apply", async {
        let (plan, snapshot) = s.plan(mode, false).await.expect("plan");
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        execute(&plan, &s.resources(), &snapshot, &|_| {})
            .await
            .expect("apply");
        let (after, _) = s.plan(mode, false).await.expect("plan");
        assert!(!after.has_changes(), "{after:#?}");
        Ok(())
    })
    .await
    .expect("the stack lock");
    called(s)
}

/// As `plan` runs: the reads, and a look at the stack lock.
async fn plan_only(f: &Fixture) -> BTreeSet<String> {
    let s = session(f, &f.artifacts);
    s.plan(Mode::Apply, false).await.expect("plan");
    provisioner::lock::read(&s.aws, &s.stack)
        .await
        .expect("reading the lock");
    called(&s)
}

fn assert_within(phase: &str, used: &BTreeSet<String>, policy: &BTreeSet<String>) {
    let missing: Vec<_> = used.difference(policy).collect();
    assert!(
        missing.is_empty(),
        "{phase} called actions its role does not allow: {missing:?}"
    );
}

/// Another hand changes what only an update puts back: the worker's trust
/// policy and permissions boundary, and a managed policy attached to the
/// HTTP role.
async fn drift_roles(f: &Fixture) {
    let iam = f.iam();
    let stack = f.stack();
    iam.delete_role_permissions_boundary()
        .role_name(stack.worker_name())
        .send()
        .await
        .unwrap();
    iam.update_assume_role_policy()
        .role_name(stack.worker_name())
        .policy_document(
            serde_json::to_string(&PolicyDocument::trust("edgelambda.amazonaws.com")).unwrap(),
        )
        .send()
        .await
        .unwrap();
    let stray = iam
        .create_policy()
        .policy_name(format!("{}-stray", f.name))
        .policy_document(
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": ["sqs:ListQueues"], "Resource": ["*"]}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name(stack.http_name())
        .policy_arn(stray.policy.unwrap().arn.unwrap())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_derived_policies_allow_exactly_what_plan_apply_update_and_destroy_call() {
    let f = Fixture::new("access").await;
    // Everything optional declared: a reserved concurrency (the plan reads
    // the account's settings), a JWT authorizer, the client identity; the
    // update below removes each.
    f.append_yaml(
        "http: { reserved_concurrency: 2, auth: jwt, jwt: { issuer: \"https://idp.example.com\", audience: [app] } }\nclient: { assumed_by: [\"arn:aws:iam::123456789012:user/phone\"] }",
    );
    let policies = bootstrap::policies(&session(&f, &f.artifacts))
        .await
        .expect("policies");
    let (plan_policy, apply_policy) = (policies.plan, policies.apply);
    for doc in [&plan_policy, &apply_policy, &policies.preview] {
        let doc = serde_json::to_value(doc).unwrap();
        // No `*` action; `*` resources only for the actions AWS authorises on
        // no resource type (Service Authorization Reference; scripts/check-policies
        // proves it), each held to a Region by condition.
        for st in doc["Statement"].as_array().unwrap() {
            let wild = wildcards(&serde_json::json!({"Statement": [st]}));
            if !wild.is_empty() {
                assert_eq!(wild, ["Resource *"]);
                let region = if st["Action"]
                    == serde_json::json!(["bedrock:GetFoundationModelAvailability"])
                {
                    "us-west-2"
                } else {
                    REGION
                };
                assert_eq!(
                    st["Condition"]["StringEquals"]["aws:RequestedRegion"],
                    serde_json::json!([region]),
                    "{st}"
                );
                for action in st["Action"].as_array().unwrap() {
                    assert!(
                        [
                            "bedrock:GetFoundationModelAvailability",
                            "lambda:ListEventSourceMappings",
                            "lambda:CreateEventSourceMapping",
                            "logs:DescribeLogGroups",
                            "sns:Unsubscribe",
                            "cloudwatch:GetMetricData",
                            "lambda:GetAccountSettings"
                        ]
                        .contains(&action.as_str().unwrap()),
                        "{st}"
                    );
                }
            }
        }
        let pass: Vec<_> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|st| {
                st["Action"]
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!("iam:PassRole"))
            })
            .flat_map(|st| st["Resource"].as_array().unwrap().clone())
            .collect();
        let role =
            |name: String| serde_json::json!(format!("arn:aws:iam::123456789012:role/{name}"));
        let stack = f.stack();
        let mut previews = f.stack();
        previews.name = provisioner::bootstrap::preview_name(&stack.name);
        assert!(
            pass.is_empty()
                || pass == [role(stack.worker_name()), role(stack.http_name())]
                || pass == [role(previews.worker_name()), role(previews.http_name())],
            "PassRole only for the two function roles: {pass:?}"
        );
    }
    let plan_allows = allowed(&plan_policy);
    let apply_allows = allowed(&apply_policy);
    // Neither role may change a boundary, nor lift one from a role.
    let held = held_from_ci(&session(&f, &f.artifacts));
    assert!(held.contains("iam:CreatePolicyVersion"), "{held:?}");
    for doc in [&apply_policy, &policies.preview] {
        let allows = allowed(doc);
        assert!(
            allows.is_disjoint(&held),
            "{:?}",
            allows.intersection(&held)
        );
        assert!(!allows.contains("iam:DeleteRolePermissionsBoundary"));
        assert!(!allows.contains("iam:AttachRolePolicy"));
    }
    assert!(plan_allows.is_subset(&apply_allows));
    assert!(
        plan_allows.iter().all(|a| !a.contains("Create")
            && !a.contains("Delete")
            && !a.contains("Put")
            && !a.contains("Update")
            && !a.contains("Tag")
            || a.starts_with("logs:ListTags")
            || a.ends_with("ListTagsForResource")
            || a.ends_with("ListQueueTags")),
        "the plan role only reads: {plan_allows:?}"
    );

    let mut plan_used = plan_only(&f).await;
    assert_within("plan (nothing deployed)", &plan_used, &plan_allows);

    let mut apply_used = converge(&f, &f.artifacts, Mode::Apply).await;
    assert_within("apply", &apply_used, &apply_allows);

    let deployed = plan_only(&f).await;
    assert_within("plan (deployed)", &deployed, &plan_allows);
    plan_used.extend(deployed);

    // The operating verbs: `status` reads (the plan role), `redrive` moves a
    // dead-lettered prompt back (the apply role). moto's own mapping is
    // paused: the redriven prompt is not for a Lambda it cannot run.
    let s = session(&f, &f.artifacts);
    provisioner::commands::status::read(&s, &Artifacts::load(&f.artifacts))
        .await
        .expect("status");
    provisioner::commands::logs::fetch(&s.aws, &s.stack, None, 0, &["m-1"])
        .await
        .expect("logs");
    // `logs --follow`: a Live Tail session on both groups.
    let groups = provisioner::commands::logs::groups(&s.stack, None);
    let (mut live, _) = provisioner::commands::logs::start_live_tail(&s.aws, &groups, &["m-1"])
        .await
        .expect("live tail");
    assert!(
        live.recv().await.expect("the session starts").is_some(),
        "a sessionStart"
    );
    let status_used = called(&s);
    assert_within("status and logs", &status_used, &plan_allows);
    plan_used.extend(status_used);
    let stack = f.stack();
    let queue_arn = f.live_attr(provisioner::declare::QUEUE, "arn").await;
    provisioner::local::trigger::pause_emulator_mappings(
        &f.lambda(),
        &stack.worker_name(),
        &queue_arn,
    )
    .await
    .expect("pausing moto's mapping");
    f.sqs()
        .send_message()
        .queue_url(f.queue_url(&stack.dlq_name()).await)
        .message_body("a prompt that failed its receives")
        .send()
        .await
        .unwrap();
    let s = session(&f, &f.artifacts);
    let args = provisioner::commands::redrive::Args {
        file: provisioner::commands::StackFile {
            stack: f.file.clone(),
        },
        max_per_second: Some(50),
        yes: true,
    };
    provisioner::commands::redrive::redrive(&s, &args)
        .await
        .expect("redrive");
    let redrive_used = called(&s);
    assert_within("redrive", &redrive_used, &apply_allows);
    assert!(
        redrive_used.contains("sqs:StartMessageMoveTask"),
        "{redrive_used:?}"
    );
    apply_used.extend(redrive_used);

    // An update touching every kind: tags (one removed, one added), queue,
    // alarm, both functions' settings and code, the trigger, the API's
    // integration; and drift only an update repairs.
    std::fs::write(
        &f.file,
        format!(
            "name: {name}\nregion: {REGION}\nimages: {{ bucket: {name}-images, prefix: \"11\" }}\nqueue: {{ visibility_timeout_seconds: 200, max_receive_count: 3 }}\nworker: {{ memory_mb: 1024, batch_size: 5 }}\nhttp: {{ memory_mb: 1024, timeout_seconds: 25, rate_per_second: 1, auth: iam }}\nalarm: {{ threshold_seconds: 300, email: team@example.com }}\ntags: {{ cost-center: images }}\n",
            name = f.name
        ),
    )
    .unwrap();
    let v2 = testkit::zips::write_function_zips(&f.artifacts.with_extension("v2"), "v2");
    drift_roles(&f).await;
    let updated = converge(&f, &v2, Mode::Apply).await;
    assert_within("update", &updated, &apply_allows);
    apply_used.extend(updated);

    let destroyed = converge(&f, &v2, Mode::Destroy).await;
    assert_within("destroy", &destroyed, &apply_allows);
    apply_used.extend(destroyed);
    // S3 evaluates s3:ListBucket itself when a GetObject finds no key (404
    // to who may list, 403 to others: S3 API reference, GetObject), and the
    // lock's read lists its key only after such a 403, which the emulator
    // never answers: a permission used, never a call of this process.
    plan_used.insert("s3:ListBucket".to_owned());
    apply_used.extend(plan_used.iter().cloned());

    let never: Vec<_> = plan_allows.difference(&plan_used).collect();
    assert!(
        never.is_empty(),
        "the plan policy allows actions plan never called: {never:?}"
    );
    // What SQS does on the caller's behalf while it moves messages (receive
    // and delete on the DLQ, send to the prompts queue: AWS's DLQ redrive
    // permissions) and the cancel only Ctrl-C calls (tests/operate.rs) are
    // never calls of this process.
    const ON_BEHALF: [&str; 4] = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:SendMessage",
        "sqs:CancelMessageMoveTask",
    ];
    let never: Vec<_> = apply_allows
        .difference(&apply_used)
        .filter(|a| !ON_BEHALF.contains(&a.as_str()))
        .collect();
    assert!(
        never.is_empty(),
        "the apply policy allows actions never called: {never:?}"
    );
}

/// The ARNs AWS will give a session's named resources, by address.
async fn arns(s: &Session) -> Vec<(String, String)> {
    let attrs = bootstrap::attributes(s).await.expect("predictions");
    attrs
        .into_iter()
        .filter(|(address, _)| {
            [
                "queue.",
                "topic.",
                "role.",
                "function.",
                "log_group.",
                "alarm.",
            ]
            .iter()
            .any(|kind| address.starts_with(kind))
        })
        .filter_map(|(address, a)| a.get("arn").map(|arn| (address, arn.clone())))
        .collect()
}

/// A preview stack (`{name}-pr-7`, as the infrastructure workflow names
/// them) planned, applied and destroyed with the SDK call log on: every call
/// is an action of the preview role, every resource of the preview stack is
/// named by one of its statements, and no statement that changes anything
/// names a resource of the stack itself.
#[tokio::test]
async fn the_preview_role_deploys_preview_stacks_and_never_touches_the_stack() {
    let f = Fixture::new("prev").await;
    let policies = bootstrap::policies(&session(&f, &f.artifacts))
        .await
        .expect("policies");
    let preview_allows = allowed(&policies.preview);
    let preview = f.stack().preview(&format!("{}-pr-7", f.name));
    // The preview boundary is bootstrap's (a person's): made before.
    f.bootstrap();
    let preview_session = || {
        Session::new(
            preview.clone(),
            &Artifacts::load(&f.artifacts),
            Arc::new(f.aws()),
        )
    };

    let s = preview_session();
    s.plan(Mode::Apply, false).await.expect("plan");
    provisioner::lock::read(&s.aws, &s.stack)
        .await
        .expect("lock");
    let mut used = called(&s);
    for mode in [Mode::Apply, Mode::Destroy] {
        let calls = converge_in(&preview_session(), mode).await;
        assert_within(&format!("preview {mode:?}"), &calls, &preview_allows);
        used.extend(calls);
    }
    // The same actions as the apply role (whose every action the test above
    // sees called, updates included: a preview is updated on every push).
    assert!(used.is_subset(&preview_allows));
    // The apply role's, but for the boundary's document: a preview's
    // boundary is referenced (its existence read), the stack's is owned.
    let mut apply_allows = allowed(&policies.apply);
    apply_allows.remove("iam:GetPolicyVersion");
    assert_eq!(preview_allows, apply_allows);

    // By resource: what each stack's resources are called, as AWS derives it.
    let statements = serde_json::to_value(&policies.preview).unwrap()["Statement"]
        .as_array()
        .unwrap()
        .clone();
    let named = |arn: &str| {
        statements.iter().any(|st| {
            st["Resource"].as_array().into_iter().flatten().any(|r| {
                glob(r.as_str().unwrap(), arn) || glob(r.as_str().unwrap(), &format!("{arn}:*"))
            })
        })
    };
    let previews = arns(&preview_session()).await;
    assert!(previews.len() >= 8, "{previews:?}");
    for (address, arn) in &previews {
        assert!(
            named(arn),
            "the preview role names the preview's {address} ({arn})"
        );
    }
    let own = arns(&session(&f, &f.artifacts)).await;
    for st in &statements {
        let reads = st["Action"].as_array().unwrap().iter().all(|a| {
            let a = a.as_str().unwrap();
            ["Get", "List", "Describe"]
                .iter()
                .any(|verb| a.split(':').nth(1).unwrap().starts_with(verb))
                || a == "apigateway:GET"
        });
        if reads || st["Condition"].is_object() {
            // Reads of what `plan` needs, and writes held by a condition
            // (the preview's tag, its function, its Region: see README).
            continue;
        }
        for r in st["Resource"].as_array().unwrap() {
            for (address, arn) in &own {
                assert!(
                    !glob(r.as_str().unwrap(), arn)
                        && !glob(r.as_str().unwrap(), &format!("{arn}:*")),
                    "preview statement {} names the stack's own {address} ({arn})",
                    st["Sid"]
                );
            }
        }
    }
}

#[tokio::test]
async fn bootstrap_adopts_the_shared_provider_makes_both_roles_and_is_idempotent() {
    let f = Fixture::new("boot").await;
    let iam = f.iam();
    // Another tool made GitHub's provider already: bootstrap adopts it.
    let existing = iam
        .create_open_id_connect_provider()
        .url("https://token.actions.githubusercontent.com")
        .client_id_list("sts.amazonaws.com")
        .send()
        .await;
    if let Err(e) = &existing {
        // Made by an earlier run against the same emulator: just as shared.
        assert!(format!("{e:?}").contains("EntityAlreadyExists"), "{e:?}");
    }
    let repo = "couch-explorers/couch";
    let first = f.cli(&[
        "bootstrap",
        "--github-repo",
        repo,
        "--yes",
        "--approve-broadening",
    ]);
    assert_ok(&first);
    let said = stdout(&first);
    assert!(
        !said.contains("+ oidc_provider.github"),
        "adopted, not created:\n{said}"
    );
    // Three roles and two boundaries (the stack's, the previews').
    assert!(said.contains("Plan: 5 to add"), "{said}");
    assert!(
        said.contains(
            "`production`: Deployment branches and tags > Selected branches: `main` only"
        ) && said.contains("`preview`: Required reviewers"),
        "the environments' settings are the next steps:\n{said}"
    );
    assert!(
        said.contains("AWS_PREVIEW_ROLE_ARN=arn:aws:iam::123456789012:role/"),
        "{said}"
    );
    let name = f.stack().name;
    for (role, subject_op, subjects) in [
        (
            "plan",
            "StringLike",
            serde_json::json!([format!("repo:{repo}:*")]),
        ),
        (
            "apply",
            "StringEquals",
            serde_json::json!([format!("repo:{repo}:environment:production")]),
        ),
        (
            "preview",
            "StringEquals",
            serde_json::json!([format!("repo:{repo}:environment:preview")]),
        ),
    ] {
        let role_name = format!("{name}-github-{role}");
        assert!(
            said.contains(&format!(":role/{role_name}")),
            "the ARN of {role_name} is printed:\n{said}"
        );
        let got = iam.get_role().role_name(&role_name).send().await.unwrap();
        let trust = provisioner::aws::policies::parse_document(
            got.role.unwrap().assume_role_policy_document().unwrap(),
        );
        let st = &trust["Statement"][0];
        assert_eq!(
            st["Principal"]["Federated"],
            serde_json::json!([
                "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
            ])
        );
        assert_eq!(
            st["Condition"][subject_op]["token.actions.githubusercontent.com:sub"],
            subjects
        );
    }
    let again = f.cli(&[
        "bootstrap",
        "--github-repo",
        repo,
        "--yes",
        "--approve-broadening",
    ]);
    assert_ok(&again);
    assert!(
        stdout(&again).contains("Nothing to do"),
        "{}",
        stdout(&again)
    );
    // A malformed repository is refused before any AWS call.
    let bad = f.cli(&["bootstrap", "--github-repo", "couch", "--yes"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("expected OWNER/NAME"),
        "{}",
        stderr(&bad)
    );
}
