//! The declared Bedrock model, checked at plan time against Bedrock's control
//! plane (the model stand-in serves it): end-of-life and not-offered models
//! and missing Marketplace subscriptions stop `plan` (exit 1) and `apply`
//! (nothing changed), Legacy ones warn with their date, an inference profile's
//! routes are checked and its invoke policy names exactly the profile and the
//! model in each routed Region. Also `validate` and `provisioner models`.

mod common;

use common::*;
use provisioner::aws::policies::parse_document;
use provisioner::aws::roles::POLICY_NAME;
use serde_json::{Value, json};
use testkit::bedrock::ModelState;

fn combined(o: &std::process::Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

#[tokio::test]
async fn an_end_of_life_model_fails_the_plan_and_apply_touches_nothing() {
    let f = Fixture::new("mdleol").await;
    f.append_yaml("model: { id: amazon.titan-image-generator-v1, region: us-east-1 }");
    let out = f.cli(&["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", combined(&out));
    let text = combined(&out);
    assert!(
        text.contains(
            "amazon.titan-image-generator-v1 in us-east-1 reached its end-of-life on 2026-06-30"
        ),
        "{text}"
    );
    assert!(
        text.contains("provisioner models --region us-east-1"),
        "{text}"
    );

    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_eq!(out.status.code(), Some(1), "{}", combined(&out));
    assert!(combined(&out).contains("end-of-life"), "{}", combined(&out));
    assert!(f.queues().await.is_empty(), "apply created something");
    assert!(
        f.lambda()
            .get_function()
            .function_name(f.stack().worker_name())
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_legacy_model_plans_with_a_warning_and_its_date() {
    let f = Fixture::new("mdlleg").await;
    f.bedrock.set_model(
        "stability.stable-image-core-v1:1",
        ModelState::Legacy {
            end_of_life: "2099-06-30T00:00:00Z".into(),
        },
    );
    let out = f.cli(&["plan"]);
    assert_ok(&out);
    let text = combined(&out);
    assert!(
        text.contains(
            "stability.stable-image-core-v1:1 in us-west-2 is Legacy: its end-of-life is 2099-06-30"
        ),
        "{text}"
    );
    let plan = f.plan().await;
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    assert_eq!(model_warnings(&plan).len(), 1, "{:?}", plan.warnings);
}

#[tokio::test]
async fn an_unknown_or_unsubscribed_model_is_a_problem_saying_what_to_do() {
    let f = Fixture::new("mdlsub").await;
    f.bedrock.set_model(
        "stability.stable-image-core-v1:1",
        ModelState::NotSubscribed,
    );
    let plan = f.plan().await;
    assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
    let p = &plan.problems[0];
    for needle in [
        "model.image:",
        "has not subscribed to stability.stable-image-core-v1:1 in us-west-2",
        "aws-marketplace:Subscribe",
        "create-foundation-model-agreement",
        "function roles deliberately carry no Marketplace rights",
    ] {
        assert!(p.contains(needle), "{needle}: {p}");
    }

    f.bedrock
        .set_model("stability.stable-image-core-v1:1", ModelState::Unknown);
    let plan = f.plan().await;
    assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
    assert!(
        plan.problems[0].contains("stability.stable-image-core-v1:1 is not offered in us-west-2"),
        "{:?}",
        plan.problems
    );
}

/// The plan's warnings but the open route's (tests/door.rs has that one).
fn model_warnings(plan: &provisioner::engine::Plan) -> Vec<&String> {
    plan.warnings
        .iter()
        .filter(|w| !w.starts_with("api.http: the route"))
        .collect()
}

#[tokio::test]
async fn the_default_active_model_plans_cleanly_and_offline_says_it_was_not_checked() {
    let f = Fixture::new("mdlok").await;
    let plan = f.plan().await;
    assert!(
        plan.problems.is_empty() && model_warnings(&plan).is_empty(),
        "{plan:?}"
    );
    let model = plan
        .change(provisioner::declare::MODEL)
        .expect("model line");
    assert!(model.referenced);
    assert_eq!(model.kind, "bedrock-model");

    let out = f.cli(&["plan", "--offline"]);
    assert_ok(&out);
    assert!(
        combined(&out).contains(
            "offline: the model stability.stable-image-core-v1:1 in us-west-2 was not checked"
        ),
        "{}",
        combined(&out)
    );
}

#[tokio::test]
async fn an_inference_profile_is_invoked_as_itself_and_as_the_model_where_it_routes() {
    let f = Fixture::new("mdlprof").await;
    let profile = "us.stability.stable-image-core-v1:1";
    f.bedrock
        .set_routes(profile, &["us-east-1", "us-east-2", "us-west-2"]);
    // Declared with one Region fewer than the profile routes to: a problem naming the list.
    f.append_yaml(&format!(
        "model: {{ id: {profile}, region: us-west-2, routes_to: [us-east-1, us-west-2] }}"
    ));
    let plan = f.plan().await;
    assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
    assert!(
        plan.problems[0].contains("routes to us-east-2 too")
            && plan.problems[0].contains("routes_to: [us-east-1, us-east-2, us-west-2]"),
        "{:?}",
        plan.problems
    );

    f.write(120, "team@example.com");
    f.append_yaml(&format!(
        "model: {{ id: {profile}, region: us-west-2, routes_to: [us-east-1, us-east-2, us-west-2] }}"
    ));
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let profile_arn = format!(
        "arn:aws:bedrock:us-west-2:{}:inference-profile/{profile}",
        testkit::bedrock::ACCOUNT
    );
    let model =
        |r: &str| format!("arn:aws:bedrock:{r}::foundation-model/stability.stable-image-core-v1:1");
    for role in [f.stack().worker_name(), f.stack().http_name()] {
        let doc = f
            .iam()
            .get_role_policy()
            .role_name(&role)
            .policy_name(POLICY_NAME)
            .send()
            .await
            .unwrap();
        let doc: Value = parse_document(&doc.policy_document);
        let invoke: Vec<&Value> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|st| st["Action"] == json!(["bedrock:InvokeModel"]))
            .collect();
        assert_eq!(invoke.len(), 1, "{doc}");
        assert_eq!(
            invoke[0]["Resource"],
            json!([
                profile_arn,
                model("us-east-1"),
                model("us-east-2"),
                model("us-west-2")
            ]),
            "{role}"
        );
    }
    // A second plan has no changes: the profile's ARN is read, not invented.
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn validate_rejects_a_model_of_no_known_family_with_its_line() {
    let f = Fixture::new("mdlval").await;
    f.append_yaml("model: { id: anthropic.claude-3-haiku-20240307-v1:0, region: us-west-2 }");
    let out = f.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let text = combined(&out);
    let line = std::fs::read_to_string(&f.file).unwrap().lines().count();
    assert!(
        text.contains(&format!("{}:{line}: model.id:", f.file.display())),
        "{text}"
    );
    assert!(
        text.contains("no model family the functions speak"),
        "{text}"
    );
}

#[tokio::test]
async fn models_lists_the_image_models_with_lifecycle_and_marks_the_declared_one() {
    let f = Fixture::new("mdllist").await;
    let out = f.cli(&["models", "--region", "us-west-2"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("Image models in us-west-2"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("amazon.nova-canvas-v1:0")
            && l.contains("LEGACY (end-of-life 2026-09-30)")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("stability.stable-image-core-v1:1") && l.contains("<- declared")),
        "{text}"
    );
    assert!(!text.contains("titan-text"), "only image models: {text}");
    let out = f.cli(&["models", "--json"]);
    assert_ok(&out);
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let core = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model_id"] == "stability.stable-image-core-v1:1")
        .unwrap();
    assert_eq!(core["lifecycle"], "ACTIVE");
    assert_eq!(core["family"], "stability");
    assert_eq!(core["declared"], true);
}
