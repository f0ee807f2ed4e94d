//! The plan's permission section against moto: a role that lost an action, a
//! resource, a trust principal or gained a condition (changed by another hand)
//! is put back by a plan whose statements are marked broadening, in text and
//! JSON; a grant added by hand is removed without being broadening; and the
//! gate: `apply --yes` refuses a broadening plan, `--approve-broadening` and a
//! reviewed saved plan apply it.

mod common;

use common::*;
use provisioner::aws::roles::POLICY_NAME;
use serde_json::{Value, json};

async fn put_policy(f: &Fixture, role: &str, doc: &Value) {
    f.iam()
        .put_role_policy()
        .role_name(role)
        .policy_name(POLICY_NAME)
        .policy_document(doc.to_string())
        .send()
        .await
        .unwrap();
}

/// The statement of `doc` that allows `action`.
fn statement_with<'a>(doc: &'a mut Value, action: &str) -> &'a mut Value {
    doc["Statement"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|st| st["Action"].as_array().unwrap().iter().any(|a| a == action))
        .unwrap_or_else(|| panic!("no statement allows {action}"))
}

fn plan_json(f: &Fixture) -> Value {
    serde_json::from_str(&f.run_ok(&["plan", "--json"])).unwrap()
}

/// `(change, document, broadening)` of the permission changes of `address`.
fn lines(plan: &Value, address: &str) -> Vec<(String, String, bool, Value)> {
    plan["permission_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["address"] == address)
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_owned(),
                c["document"].as_str().unwrap().to_owned(),
                c["broadening"].as_bool().unwrap(),
                c["actions"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_grants_more_is_broadening_and_is_gated() {
    let f = Fixture::new("t-perm-").await;

    // A fresh stack: every statement is new, so the plan broadens and
    // `--yes` alone does not apply it.
    let fresh = plan_json(&f);
    let all = fresh["permission_changes"].as_array().unwrap();
    assert!(!all.is_empty());
    // Every Allow broadens; a role's permissions boundary is a limit (a
    // Deny of whatever the boundary does not allow), so it does not.
    assert!(
        all.iter()
            .all(|c| c["change"] == "+" && c["broadening"] == (c["effect"] == "Allow"))
    );
    let limits: Vec<_> = all
        .iter()
        .filter(|c| c["document"] == "permissions boundary")
        .collect();
    assert_eq!(
        limits.len(),
        2,
        "the worker's and the HTTP role's: {limits:?}"
    );
    assert!(limits.iter().all(|c| c["effect"] == "Deny"));
    // In GitHub Actions: the section in the job summary, and an annotation.
    let summary = f.file.with_extension("summary.md");
    let out = f
        .command(&["plan"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        stdout(&out).contains("::warning title=Permissions broaden::"),
        "{}",
        stdout(&out)
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("#### Permission changes ("), "{md}");
    assert!(
        md.contains("| `+` **broadening** | `role.worker` | trust policy |"),
        "{md}"
    );

    let refused = tokio::task::block_in_place(|| f.cli(&["apply", "--yes"]));
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("--approve-broadening"),
        "{}",
        stderr(&refused)
    );
    assert!(f.queues().await.is_empty(), "nothing was changed");
    let text = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(
        text.contains("broadening permission change(s) approved by --approve-broadening"),
        "{text}"
    );
    assert!(
        !text.contains("[broadening]") || text.contains("Permission changes ("),
        "{text}"
    );

    let stack = f.stack();
    let worker = stack.worker_name();
    let http = stack.http_name();

    // Another hand narrows the worker's grants (one action fewer, a narrower
    // image prefix), adds a condition to the HTTP role's listing, adds an
    // action to the HTTP role, and swaps the worker's trusted service.
    let original = f.role_policy(&worker).await;
    let mut narrowed = original.clone();
    let queue = statement_with(&mut narrowed, "sqs:ReceiveMessage");
    let kept: Vec<Value> = queue["Action"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| *a != "sqs:DeleteMessage")
        .cloned()
        .collect();
    queue["Action"] = Value::Array(kept);
    let objects = statement_with(&mut narrowed, "s3:PutObject");
    let wide = objects["Resource"][0].as_str().unwrap().to_owned();
    objects["Resource"] = json!([wide.replace("/images/*", "/images/thumbnails/*")]);
    put_policy(&f, &worker, &narrowed).await;

    let mut http_doc = f.role_policy(&http).await;
    let listing = statement_with(&mut http_doc, "s3:ListBucket");
    listing["Condition"]["StringEquals"] = json!({"aws:RequestedRegion": ["eu-west-1"]});
    let store = statement_with(&mut http_doc, "s3:PutObject");
    store["Action"]
        .as_array_mut()
        .unwrap()
        .push(json!("s3:DeleteObject"));
    put_policy(&f, &http, &http_doc).await;

    f.iam()
        .update_assume_role_policy()
        .role_name(&worker)
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": ["edgelambda.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();

    let plan = plan_json(&f);
    let worker_lines = lines(&plan, "role.worker");
    // Putting back the action and the wider prefix, and the trusted service: broadening.
    for (document, action) in [
        ("inline policy", "sqs:DeleteMessage"),
        ("inline policy", "s3:PutObject"),
        ("trust policy", "sts:AssumeRole"),
    ] {
        assert!(
            worker_lines.iter().any(|(c, d, b, a)| c == "+"
                && d == document
                && *b
                && a.as_array().unwrap().iter().any(|x| x == action)),
            "{action} in {document} is re-granted as broadening: {worker_lines:#?}"
        );
        // What is replaced is removed, never broadening.
        assert!(
            worker_lines
                .iter()
                .any(|(c, d, b, _)| c == "-" && d == document && !*b),
            "{worker_lines:#?}"
        );
    }
    let http_lines = lines(&plan, "role.http");
    // The condition removed again: broadening. The hand-added action removed: not.
    assert!(
        http_lines
            .iter()
            .any(|(c, _, b, a)| c == "+" && *b && a == &json!(["s3:ListBucket"])),
        "{http_lines:#?}"
    );
    assert!(
        http_lines
            .iter()
            .any(|(c, _, b, a)| c == "+" && !*b && a == &json!(["s3:GetObject", "s3:PutObject"])),
        "{http_lines:#?}"
    );
    assert!(
        http_lines.iter().any(|(c, _, b, a)| c == "-"
            && !*b
            && a == &json!(["s3:DeleteObject", "s3:GetObject", "s3:PutObject"])),
        "{http_lines:#?}"
    );
    let text = f.run_ok(&["plan"]);
    assert!(text.contains("Permission changes ("), "{text}");
    assert!(
        text.contains("+ role.worker trust policy: Allow sts:AssumeRole for Service:lambda.amazonaws.com  [broadening]"),
        "{text}"
    );
    assert!(
        text.contains("- role.worker trust policy: Allow sts:AssumeRole for Service:edgelambda.amazonaws.com\n"),
        "{text}"
    );

    // Saved and reviewed: applies without the flag, even off a terminal.
    let saved = f.file.with_extension("plan.json");
    let saved_arg = saved.display().to_string();
    f.run_ok(&["plan", "--out", &saved_arg]);
    let text = f.run_ok(&["apply", "--plan", &saved_arg]);
    assert!(
        text.contains("approved: the reviewed saved plan contains them"),
        "{text}"
    );
    assert_eq!(f.role_policy(&worker).await, original);

    // Only a hand-added grant to remove: nothing broadens, `--yes` applies.
    let mut extra = f.role_policy(&http).await;
    statement_with(&mut extra, "s3:PutObject")["Action"]
        .as_array_mut()
        .unwrap()
        .push(json!("s3:DeleteObject"));
    put_policy(&f, &http, &extra).await;
    let plan = plan_json(&f);
    assert!(!plan["permission_changes"].as_array().unwrap().is_empty());
    assert!(
        plan["permission_changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["broadening"] == false),
        "{plan:#}"
    );
    let out = f
        .command(&["apply", "--yes"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_ok(&out);
    let text = stdout(&out);
    assert!(!text.contains("::warning"), "nothing broadens: {text}");
    assert!(text.contains("none broadening"), "{text}");
    assert!(text.contains("Apply complete!"), "{text}");
}
