//! Apply from empty creates every function-side resource with exactly the
//! declared fields, and policies that grant only what the wiring needs.

use super::*;

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
        [
            "GET /",
            "GET /images/{id}",
            "POST /image_generator",
            "POST /images"
        ]
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
            // The API's root: the page.
            format!("{api_arn}/*/GET/"),
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
