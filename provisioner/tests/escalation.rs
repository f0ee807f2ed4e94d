//! What a pull request could try with the roles CI assumes, under the
//! emulator's IAM enforcement (with the launcher's permissions boundaries and
//! `iam:PermissionsBoundary` condition: scripts/moto_iam_boundaries.py): the
//! preview role cannot make or write a role without the preview boundary, a
//! role it makes with `"*"` inside the boundary still reaches nothing of
//! production's and nothing of IAM, and neither CI role may change a boundary.

mod common;

use common::*;

const REPO: &str = "o/r";

fn policy(statement: serde_json::Value) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
}

fn trust(principal: &str) -> String {
    policy(serde_json::json!({
        "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"
    }))
}

/// Keys of a session of `role` (assumed while enforcement is still off:
/// the CI roles trust GitHub's OIDC tokens, which the emulator cannot mint).
async fn session_of(sts: &aws_sdk_sts::Client, role: &str) -> (String, String, String) {
    let c = sts
        .assume_role()
        .role_arn(role)
        .role_session_name("attacker")
        .send()
        .await
        .unwrap_or_else(|e| panic!("assume {role}: {e:?}"))
        .credentials
        .unwrap();
    (
        c.access_key_id().to_owned(),
        c.secret_access_key().to_owned(),
        c.session_token().to_owned(),
    )
}

fn s3_of(conf: &aws_types::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(true)
            .build(),
    )
}

#[tokio::test]
async fn a_pull_request_cannot_escalate_through_the_preview_role() {
    let endpoint = testkit::private_moto();
    let f = Fixture::with_endpoint("t-esc-", &endpoint).await;
    f.bootstrap();
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();
    let account = "123456789012";
    let arn = |kind: &str, name: &str| format!("arn:aws:iam::{account}:{kind}/{name}");
    let preview_boundary = arn("policy", &s.preview_boundary_name());
    let prod_boundary = arn("policy", &s.boundary_name());
    // Production's roles carry their boundary.
    let iam = f.iam();
    let worker = iam
        .get_role()
        .role_name(s.worker_name())
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert_eq!(
        worker
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn()),
        Some(prod_boundary.as_str())
    );

    // Before enforcement: an administrator, a production picture, a role
    // of a preview's name made without a boundary, and the CI sessions.
    let (admin_id, admin_secret) = user_with_keys(
        &iam,
        "admin",
        &policy(serde_json::json!({"Effect": "Allow", "Action": "*", "Resource": "*"})),
    )
    .await;
    let admin_arn = format!("arn:aws:iam::{account}:user/admin");
    let admin = with_keys(&endpoint, &admin_id, &admin_secret, None);
    let secret_key = couch_contract::image_key(&s.images.prefix, "secret");
    s3_of(&admin)
        .put_object()
        .bucket(&s.images.bucket)
        .key(&secret_key)
        .body(b"production's picture".to_vec().into())
        .send()
        .await
        .unwrap();
    let unbounded = format!("{}-pr-8-worker", s.name);
    iam.create_role()
        .role_name(&unbounded)
        .assume_role_policy_document(trust(&admin_arn))
        .send()
        .await
        .unwrap();
    let sts = aws_sdk_sts::Client::new(&f.conf);
    let (pid, psecret, ptoken) =
        session_of(&sts, &arn("role", &format!("{}-github-preview", s.name))).await;
    let (aid, asecret, atoken) =
        session_of(&sts, &arn("role", &format!("{}-github-apply", s.name))).await;
    testkit::enforce_iam(&endpoint, 0);

    let preview = aws_sdk_iam::Client::new(&with_keys(&endpoint, &pid, &psecret, Some(&ptoken)));
    let made = format!("{}-pr-9-worker", s.name);
    // No boundary, or production's: refused.
    denied(
        "CreateRole without a boundary",
        preview
            .create_role()
            .role_name(&made)
            .assume_role_policy_document(trust(&admin_arn))
            .send()
            .await,
    );
    denied(
        "CreateRole with production's boundary",
        preview
            .create_role()
            .role_name(&made)
            .assume_role_policy_document(trust(&admin_arn))
            .permissions_boundary(&prod_boundary)
            .send()
            .await,
    );
    // "*" into a role without a boundary: refused.
    let everything = policy(serde_json::json!({"Effect": "Allow", "Action": "*", "Resource": "*"}));
    denied(
        "PutRolePolicy * on a role without a boundary",
        preview
            .put_role_policy()
            .role_name(&unbounded)
            .policy_name("x")
            .policy_document(&everything)
            .send()
            .await,
    );
    // Neither boundary can be lifted or rewritten.
    denied(
        "DeleteRolePermissionsBoundary",
        preview
            .delete_role_permissions_boundary()
            .role_name(&made)
            .send()
            .await,
    );
    denied(
        "CreatePolicyVersion of the preview boundary",
        preview
            .create_policy_version()
            .policy_arn(&preview_boundary)
            .policy_document(&everything)
            .set_as_default(true)
            .send()
            .await,
    );
    let apply = aws_sdk_iam::Client::new(&with_keys(&endpoint, &aid, &asecret, Some(&atoken)));
    denied(
        "CreatePolicyVersion of the stack's boundary (apply role)",
        apply
            .create_policy_version()
            .policy_arn(&prod_boundary)
            .policy_document(&everything)
            .set_as_default(true)
            .send()
            .await,
    );
    denied(
        "PutRolePolicy * on a production role without its boundary (apply role)",
        apply
            .put_role_policy()
            .role_name(&unbounded)
            .policy_name("x")
            .policy_document(&everything)
            .send()
            .await,
    );

    // With the preview boundary it may: and the role then holds "*".
    preview
        .create_role()
        .role_name(&made)
        .assume_role_policy_document(trust(&admin_arn))
        .permissions_boundary(&preview_boundary)
        .send()
        .await
        .expect("a preview role with the preview boundary");
    preview
        .put_role_policy()
        .role_name(&made)
        .policy_name("x")
        .policy_document(&everything)
        .send()
        .await
        .expect("any policy inside the boundary");

    // As that role: "*" is cut to the preview boundary.
    let admin_sts = aws_sdk_sts::Client::new(&admin);
    let (rid, rsecret, rtoken) = session_of(&admin_sts, &arn("role", &made)).await;
    let inside = with_keys(&endpoint, &rid, &rsecret, Some(&rtoken));
    let s3 = s3_of(&inside);
    denied(
        "reading production's picture",
        s3.get_object()
            .bucket(&s.images.bucket)
            .key(&secret_key)
            .send()
            .await,
    );
    let iam_inside = aws_sdk_iam::Client::new(&inside);
    denied(
        "iam:CreateUser inside the boundary",
        iam_inside.create_user().user_name("backdoor").send().await,
    );
    denied(
        "iam:ListRoles inside the boundary",
        iam_inside.list_roles().send().await,
    );
    // Its own preview's pictures are within reach (NoSuchKey, not denied).
    let own = couch_contract::image_key(
        &provisioner::stack::preview_prefix(&f.stack().images.prefix, &format!("{}-pr-9", s.name)),
        "x",
    );
    let got = s3
        .get_object()
        .bucket(&s.images.bucket)
        .key(&own)
        .send()
        .await;
    let text = format!("{got:?}");
    assert!(
        !text.contains("AccessDenied") && text.contains("NoSuchKey"),
        "{own}: {text}"
    );
}

fn documents(f: &Fixture, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "policies",
        "--account",
        "123456789012",
        "--github-repo",
        REPO,
        "--json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&f.run_ok(&args)).expect("policies --json")
}

fn statements(doc: &serde_json::Value) -> Vec<serde_json::Value> {
    doc["document"]["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_ci_roles_trust_environments_and_hold_every_role_write_to_a_boundary() {
    let f = Fixture::new("t-pol-").await;
    let name = f.stack().name;
    let docs = documents(&f, &[]);
    let subject = |role: &str| {
        docs.iter()
            .find(|d| d["address"] == format!("role.github_{role}") && d["type"] == "trust")
            .map(|d| d["document"]["Statement"][0]["Condition"].clone())
            .unwrap_or_else(|| panic!("{role}'s trust"))
    };
    let sub = "token.actions.githubusercontent.com:sub";
    assert_eq!(
        subject("apply")["StringEquals"][sub],
        serde_json::json!([format!("repo:{REPO}:environment:production")])
    );
    assert_eq!(
        subject("preview")["StringEquals"][sub],
        serde_json::json!([format!("repo:{REPO}:environment:preview")])
    );
    assert_eq!(
        subject("plan")["StringLike"][sub],
        serde_json::json!([format!("repo:{REPO}:*")])
    );
    let boundary = |n: &str| format!("arn:aws:iam::123456789012:policy/{n}");
    for (role, expected) in [
        ("apply", boundary(&format!("{name}-boundary"))),
        ("preview", boundary(&format!("{name}-preview-boundary"))),
    ] {
        let policy = docs
            .iter()
            .find(|d| d["address"] == format!("role.github_{role}") && d["type"] == "identity")
            .unwrap();
        let mut role_writes = 0;
        for st in statements(policy) {
            let actions: Vec<&str> = st["Action"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|a| a.as_str())
                .collect();
            for a in &actions {
                assert!(
                    !matches!(
                        *a,
                        "iam:CreatePolicy"
                            | "iam:CreatePolicyVersion"
                            | "iam:DeletePolicy"
                            | "iam:SetDefaultPolicyVersion"
                            | "iam:DeleteRolePermissionsBoundary"
                            | "iam:AttachRolePolicy"
                    ),
                    "{role} may {a}: {st}"
                );
            }
            if actions.iter().any(|a| {
                matches!(
                    *a,
                    "iam:CreateRole" | "iam:PutRolePolicy" | "iam:PutRolePermissionsBoundary"
                )
            }) {
                role_writes += 1;
                assert_eq!(
                    st["Condition"]["StringEquals"]["iam:PermissionsBoundary"],
                    serde_json::json!([expected]),
                    "{role}: {st}"
                );
            }
        }
        // The worker's and the HTTP function's roles; the client role is
        // not declared, so CI may only delete it.
        assert_eq!(role_writes, 2, "{role}");
    }
    // The boundaries allow nothing on IAM.
    for address in ["policy.boundary", "policy.preview_boundary"] {
        let doc = docs.iter().find(|d| d["address"] == address).unwrap();
        for st in statements(doc) {
            for a in st["Action"].as_array().unwrap() {
                assert!(!a.as_str().unwrap().starts_with("iam:"), "{address}: {st}");
            }
        }
    }
}

#[tokio::test]
async fn a_preview_reaches_only_its_own_prefix_and_never_declares_a_client() {
    let f = Fixture::new("t-pre-").await;
    let file = f.stack();
    let preview = format!("{}-pr-7", file.name);
    let own = format!("{}/previews/{preview}/", file.images.prefix);
    let docs = documents(&f, &["--name", &preview]);
    let mut s3 = 0;
    for d in docs.iter().filter(|d| {
        !d["address"].as_str().unwrap().starts_with("role.github_")
            && d["address"] != "policy.preview_boundary"
    }) {
        for st in statements(d) {
            let text = st.to_string();
            if text.contains("arn:aws:s3:::") && text.contains('/') {
                for r in st["Resource"].as_array().unwrap() {
                    let r = r.as_str().unwrap();
                    if let Some((_, key)) = r.split_once(":::")
                        && let Some((_, key)) = key.split_once('/')
                    {
                        s3 += 1;
                        assert!(key.starts_with(&own), "{}: {r}", d["address"]);
                    }
                }
            }
            if let Some(prefixes) = st["Condition"]["StringLike"]["s3:prefix"].as_array() {
                for p in prefixes {
                    assert!(
                        p.as_str().unwrap().starts_with(&own),
                        "{}: {p}",
                        d["address"]
                    );
                }
            }
        }
    }
    assert!(s3 >= 3, "{s3}");
    // The functions are told the same place; so is whoever reads the outputs.
    let out = f.run_ok(&["plan", "--offline", "--name", &preview, "--json"]);
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = plan.to_string();
    assert!(
        text.contains(&format!(
            "\"IMAGE_PREFIX\":\"{}\"",
            own.trim_end_matches('/')
        )),
        "{text}"
    );

    // A file that declares `client:` has no preview.
    f.append_yaml("client: { assumed_by: [\"arn:aws:iam::111122223333:root\"] }");
    let out = f.cli(&["plan", "--name", &preview]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("client: a preview stack (--name") && err.contains(&preview),
        "{err}"
    );
    let iam = f.iam();
    let roles = iam.list_roles().send().await.unwrap();
    assert!(
        roles
            .roles()
            .iter()
            .all(|r| !r.role_name().starts_with(&preview)),
        "nothing was created"
    );
}
