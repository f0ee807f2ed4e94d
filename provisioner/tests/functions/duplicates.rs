//! What AWS does not make unique (APIs, event source mappings): owned
//! duplicates are planned as deletions and healed by one apply; an API
//! deleted while read is absent.

use super::*;

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
            (declare::PAGE_PERMISSION.to_owned(), Action::Update),
            (declare::API_5XX_ALARM.to_owned(), Action::Update),
            (declare::DASHBOARD.to_owned(), Action::Update)
        ],
        "{plan:#?}"
    );
}
