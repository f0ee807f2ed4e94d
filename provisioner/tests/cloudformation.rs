//! CloudFormation interop against moto: the exported template describes what
//! apply builds (a CloudFormation deployment of it plans no field change),
//! and `retire` removes an old SAM-shaped stack only once this one serves.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_cloudformation::types::StackStatus;
use common::*;
use provisioner::cloudformation::export::referenced_ids;
use provisioner::cloudformation::logical_id;
use provisioner::declare;
use serde_json::{Map, Value, json};

fn cloudformation(f: &Fixture) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&f.conf)
}

fn export(f: &Fixture) -> Value {
    let out = std::env::temp_dir()
        .join("couch-provisioner-tests")
        .join(format!("{}.template.json", f.name));
    let path = out.display().to_string();
    let said = f.cli(&[
        "export",
        "--format",
        "cloudformation",
        "--out",
        &path,
        "--code-bucket",
        "couch-code",
        "--code-prefix",
        "releases",
    ]);
    assert_ok(&said);
    let text = std::fs::read_to_string(&out).expect("template written");
    serde_json::from_str(&text).expect("template is JSON")
}

/// Creates a CloudFormation stack and waits for a final status.
async fn create_stack(f: &Fixture, name: &str, template: &Value) -> StackStatus {
    let cfn = cloudformation(f);
    cfn.create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .send()
        .await
        .expect("CreateStack");
    for _ in 0..100 {
        let described = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .expect("DescribeStacks");
        let status = described.stacks()[0]
            .stack_status()
            .cloned()
            .expect("a status");
        if !status.as_str().ends_with("_IN_PROGRESS") {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stack {name} did not finish creating within 10 s");
}

#[tokio::test]
async fn the_exported_queues_topic_subscription_and_alarm_deployed_by_cloudformation_plan_no_change()
 {
    let f = Fixture::new("cfn-trip").await;
    let template = export(&f);
    let resources = template["Resources"].as_object().expect("resources");
    let wanted: BTreeSet<String> = [
        declare::DLQ,
        declare::QUEUE,
        declare::TOPIC,
        declare::SUBSCRIPTION,
        declare::ALARM,
    ]
    .iter()
    .map(|a| logical_id(a))
    .collect();
    let subset: Map<String, Value> = resources
        .iter()
        .filter(|(id, _)| wanted.contains(*id))
        .map(|(id, r)| (id.clone(), r.clone()))
        .collect();
    assert_eq!(
        subset.keys().cloned().collect::<BTreeSet<_>>(),
        wanted,
        "{template:#}"
    );
    // The five stand on their own: every reference stays among them.
    for (id, r) in &subset {
        let refs = referenced_ids(r);
        assert!(refs.is_subset(&wanted), "{id} refers to {refs:?}");
    }
    let body = json!({
        "AWSTemplateFormatVersion": template["AWSTemplateFormatVersion"],
        "Resources": subset,
    });
    let status = create_stack(&f, &format!("{}-export", f.name), &body).await;
    assert_eq!(status, StackStatus::CreateComplete);

    // `provisioner plan` against that account: those five, no field change.
    let plan: Value = serde_json::from_str(&f.run_ok(&["plan", "--json"])).expect("JSON plan");
    let changes = plan["changes"].as_array().expect("changes");
    for address in [
        declare::DLQ,
        declare::QUEUE,
        declare::TOPIC,
        declare::SUBSCRIPTION,
        declare::ALARM,
    ] {
        let change = changes
            .iter()
            .find(|c| c["address"] == address)
            .expect("planned");
        assert_eq!(change["action"], "no-op", "{address}: {change:#}");
        assert_eq!(change["fields"], json!([]), "{address}: {change:#}");
    }
    // The rest of the stack was not deployed: the plan creates it.
    assert_eq!(
        plan["summary"],
        json!({"create": MANAGED - 5, "update": 0, "replace": 0, "delete": 0}),
        "{plan:#}"
    );
}

#[tokio::test]
async fn the_template_holds_every_managed_resource_and_the_code_by_hash() {
    let f = Fixture::new("cfn-shape").await;
    let template = export(&f);
    let resources = template["Resources"].as_object().expect("resources");
    for address in ALL
        .iter()
        .filter(|a| ![declare::BUCKET, declare::MODEL].contains(a))
    {
        assert!(
            resources.contains_key(&logical_id(address)),
            "{address} missing"
        );
    }
    // The HTTP API's integration, route and stage are resources of their own.
    let api = logical_id(declare::API);
    for part in [
        "Integration",
        "RoutePostImageGenerator",
        "RoutePostImages",
        "RouteGetImagesId",
        "Stage",
    ] {
        assert!(resources.contains_key(&format!("{api}{part}")), "{part}");
    }
    // Each function's published version is one too.
    for function in [declare::WORKER, declare::HTTP] {
        let version = format!("{}Version", logical_id(function));
        assert_eq!(
            resources[&version]["Type"], "AWS::Lambda::Version",
            "{version}"
        );
    }
    // Parts of their own: integration, four routes, stage, two versions.
    assert_eq!(resources.len(), MANAGED + 6 + 2);
    // Every reference lands on a resource of the template.
    let defined: BTreeSet<String> = resources.keys().cloned().collect();
    assert!(referenced_ids(&template).is_subset(&defined));
    // Code at {prefix}/{function}/{CodeSha256 as hex}.zip.
    let zips = provisioner::artifacts::Artifacts::load(&f.artifacts);
    for (address, artifact) in [(declare::WORKER, &zips.worker), (declare::HTTP, &zips.http)] {
        let code = &resources[&logical_id(address)]["Properties"]["Code"];
        let sha = artifact.code_sha256.clone().expect("zip");
        let hex: String = base64_decode(&sha)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            code,
            &json!({"S3Bucket": "couch-code", "S3Key": format!("releases/{}/{hex}.zip", artifact.package)})
        );
    }
    // The roles' policies are the derived ones, references turned into
    // CloudFormation's: the worker consumes exactly its queue.
    let worker_role = &resources[&logical_id(declare::WORKER_ROLE)]["Properties"];
    let policy = &worker_role["Policies"][0]["PolicyDocument"];
    let consume = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .find(|s| {
            s["Action"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("sqs:ReceiveMessage")))
        })
        .expect("a consumer statement");
    assert_eq!(
        consume["Resource"],
        json!([{"Fn::GetAtt": [logical_id(declare::QUEUE), "Arn"]}])
    );
}

#[tokio::test]
async fn an_inference_profile_exports_its_arn_from_the_deploying_account() {
    let f = Fixture::new("cfn-prof").await;
    f.append_yaml(
        "model: { id: us.stability.stable-image-core-v1:1, region: us-west-2, routes_to: [us-east-1, us-west-2] }",
    );
    let template = export(&f);
    let role = &template["Resources"][logical_id(declare::HTTP_ROLE)]["Properties"];
    let invoke = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == json!(["bedrock:InvokeModel"]))
        .expect("an invoke statement")
        .clone();
    assert_eq!(
        invoke["Resource"],
        json!([
            {"Fn::Sub": "arn:${AWS::Partition}:bedrock:us-west-2:${AWS::AccountId}:inference-profile/us.stability.stable-image-core-v1:1"},
            "arn:aws:bedrock:us-east-1::foundation-model/stability.stable-image-core-v1:1",
            "arn:aws:bedrock:us-west-2::foundation-model/stability.stable-image-core-v1:1",
        ])
    );
}

#[tokio::test]
async fn the_door_exports_its_throttle_authorizer_reservation_and_client_role() {
    let f = Fixture::new("cfn-door").await;
    f.append_yaml(
        "http: { rate_per_second: 0.5, burst: 4, reserved_concurrency: 3, auth: jwt, jwt: { issuer: \"https://idp.example.com\", audience: [app], scopes: [images/write] } }\nclient: { assumed_by: [\"arn:aws:iam::123456789012:role/app\"] }",
    );
    let template = export(&f);
    let r = &template["Resources"];
    let api = logical_id(declare::API);
    assert_eq!(
        r[format!("{api}Stage")]["Properties"]["DefaultRouteSettings"],
        json!({"ThrottlingRateLimit": 0.5, "ThrottlingBurstLimit": 4})
    );
    let authorizer = &r[format!("{api}Authorizer")];
    assert_eq!(authorizer["Type"], "AWS::ApiGatewayV2::Authorizer");
    assert_eq!(
        authorizer["Properties"]["JwtConfiguration"],
        json!({"Issuer": "https://idp.example.com", "Audience": ["app"]})
    );
    assert_eq!(
        authorizer["Properties"]["IdentitySource"],
        json!(["$request.header.Authorization"])
    );
    let route = &r[format!("{api}RouteGetImagesId")]["Properties"];
    assert_eq!(route["AuthorizationType"], "JWT");
    assert_eq!(
        route["AuthorizerId"],
        json!({"Ref": format!("{api}Authorizer")})
    );
    assert_eq!(route["AuthorizationScopes"], json!(["images/write"]));
    assert_eq!(
        r[logical_id(declare::HTTP)]["Properties"]["ReservedConcurrentExecutions"],
        3
    );
    assert!(r[logical_id(declare::WORKER)]["Properties"]["ReservedConcurrentExecutions"].is_null());
    let client = &r[logical_id(declare::CLIENT_ROLE)]["Properties"];
    assert_eq!(
        client["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
        json!({"AWS": ["arn:aws:iam::123456789012:role/app"]})
    );
    let statements = client["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let send = statements
        .iter()
        .find(|s| s["Action"] == json!(["sqs:SendMessage"]))
        .expect("SendMessage");
    assert_eq!(
        send["Resource"],
        json!([{"Fn::GetAtt": [logical_id(declare::QUEUE), "Arn"]}])
    );
    assert!(
        statements
            .iter()
            .all(|s| s["Action"] != json!(["execute-api:Invoke"])),
        "a JWT route is not called with IAM"
    );
    let defined: BTreeSet<String> = r.as_object().unwrap().keys().cloned().collect();
    assert!(referenced_ids(&template).is_subset(&defined));

    // Without `client:`, no role; with `auth: iam`, the client role may call the route.
    f.write(120, "team@example.com");
    assert!(export(&f)["Resources"][logical_id(declare::CLIENT_ROLE)].is_null());
    f.append_yaml(
        "http: { auth: iam }\nclient: { assumed_by: [\"arn:aws:iam::123456789012:role/app\"] }",
    );
    let template = export(&f);
    let statements = template["Resources"][logical_id(declare::CLIENT_ROLE)]["Properties"]
        ["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .clone();
    let invoke = statements
        .iter()
        .find(|s| s["Action"] == json!(["execute-api:Invoke"]))
        .expect("execute-api:Invoke");
    let arn = invoke["Resource"][0]["Fn::Sub"].as_str().unwrap();
    assert!(
        arn.ends_with(&format!("${{{api}}}/$default/POST/image_generator")),
        "{arn}"
    );
    assert!(template["Resources"][format!("{api}Authorizer")].is_null());
}

#[test]
fn export_makes_no_aws_call() {
    // An endpoint nobody listens on: any call would fail the command.
    let dir = std::env::temp_dir().join("couch-provisioner-tests");
    std::fs::create_dir_all(&dir).expect("dir");
    let name = testkit::unique("cfn-offline");
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml(&name, "some-bucket", 120, "a@example.com")).expect("stack");
    let zips = testkit::zips::write_function_zips(&dir.join(format!("{name}-zips")), "v1");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["export", "--format", "cloudformation", "--code-bucket", "b"])
        .arg("--stack")
        .arg(&file)
        .arg("--artifacts")
        .arg(&zips)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("run provisioner");
    assert_ok(&out);
    let template: Value = serde_json::from_slice(&out.stdout).expect("template on stdout");
    assert!(template["Resources"].is_object());
    assert!(stderr(&out).contains("image-worker/bootstrap.zip -> s3://b/image-worker/"));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

/// The stack SAM deployed before the provisioner: the HTTP function, its
/// role and API Gateway's permission to invoke it.
fn sam_shaped(name: &str) -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "ImageGeneratorRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": format!("{name}-sam-role"),
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]},
                        "Action": ["sts:AssumeRole"]}]}
                }
            },
            "ImageGeneratorFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": format!("{name}-sam-http"),
                    "Runtime": "python3.12",
                    "Handler": "app.handler",
                    "Role": {"Fn::GetAtt": ["ImageGeneratorRole", "Arn"]},
                    "Code": {"ZipFile": "def handler(event, context):\n    return {}\n"}
                }
            },
            "ImageGeneratorPermission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "FunctionName": {"Ref": "ImageGeneratorFunction"},
                    "Action": "lambda:InvokeFunction",
                    "Principal": "apigateway.amazonaws.com"
                }
            }
        }
    })
}

async fn stack_status(f: &Fixture, name: &str) -> Option<StackStatus> {
    match cloudformation(f)
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
    {
        Ok(out) => out.stacks()[0].stack_status().cloned(),
        Err(_) => None,
    }
}

#[tokio::test]
async fn retire_waits_for_this_stack_then_deletes_the_sam_stack_keeping_what_is_retained() {
    let f = Fixture::new("retire").await;
    let old = format!("{}-sam", f.name);
    let status = create_stack(&f, &old, &sam_shaped(&f.name)).await;
    assert_eq!(status, StackStatus::CreateComplete);
    let retire = |extra: &[&str]| {
        let mut args = vec!["retire", "--cloudformation-stack", old.as_str()];
        args.extend_from_slice(extra);
        f.cli(&args)
    };

    // Before this stack serves, the old one is never touched.
    let refused = retire(&["--yes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("is not fully deployed"),
        "{}",
        stderr(&refused)
    );
    assert!(stdout(&refused).contains("ImageGeneratorFunction"));
    assert_eq!(
        stack_status(&f, &old).await,
        Some(StackStatus::CreateComplete)
    );

    f.run_ok(&["apply", "--yes", "--approve-broadening"]);

    // A dry run shows what the old stack holds and what replaces it.
    let dry = retire(&["--retain", "ImageGeneratorRole"]);
    assert_ok(&dry);
    let said = stdout(&dry);
    for expected in [
        "ImageGeneratorFunction",
        "deleted; replaced by function.worker, function.http",
        "ImageGeneratorRole",
        "kept (--retain)",
        "ImageGeneratorPermission",
        "Dry run: nothing was changed",
    ] {
        assert!(said.contains(expected), "{expected:?} in\n{said}");
    }
    assert_eq!(
        stack_status(&f, &old).await,
        Some(StackStatus::CreateComplete)
    );

    // A typo in --retain is an error before anything changes.
    let typo = retire(&["--retain", "ImageGeneratorRol", "--yes"]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(stderr(&typo).contains("--retain ImageGeneratorRol: the old stack has no resource"));
    assert_eq!(
        stack_status(&f, &old).await,
        Some(StackStatus::CreateComplete)
    );

    let done = retire(&["--retain", "ImageGeneratorRole", "--yes"]);
    assert_ok(&done);
    assert!(
        stdout(&done).contains("is DELETE_COMPLETE; kept: ImageGeneratorRole"),
        "{}",
        stdout(&done)
    );
    assert!(
        !matches!(stack_status(&f, &old).await, Some(s) if s != StackStatus::DeleteComplete),
        "the old stack is gone"
    );
    // The retained role survives; the old function does not; this stack is intact.
    f.iam()
        .get_role()
        .role_name(format!("{}-sam-role", f.name))
        .send()
        .await
        .expect("the retained role is still there");
    let gone = f
        .lambda()
        .get_function()
        .function_name(format!("{}-sam-http", f.name))
        .send()
        .await;
    assert!(gone.is_err(), "the old function was deleted");
    assert!(!f.plan().await.has_changes());
}
