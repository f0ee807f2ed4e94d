//! The loss-and-failure alarms against moto: every alarm with its exact
//! fields (metric, dimensions, statistic, threshold, period, actions on the
//! alerts topic, ownership tags), thresholds from the stack file's `alarms:`,
//! a changed threshold as one field update, and mistakes rejected with
//! file:line before any AWS call.

mod common;

use common::*;
use couch_contract::metrics;
use provisioner::declare;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_an_image_is_lost_has_an_alarm_on_the_alerts_topic() {
    let f = Fixture::new("t-alarms-").await;
    f.append_yaml(
        "alarms: { period_seconds: 300, dlq_messages: 0, failed_images: 7, function_errors: 2, function_throttles: 3, api_5xx: 4 }\n",
    );
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();
    let api_id = f.live_attr(declare::API, "id").await;
    let topic = f.live_attr(declare::TOPIC, "arn").await;
    let cw = aws_sdk_cloudwatch::Client::new(&f.conf);

    // (name, namespace, metric, dimensions, statistic, threshold)
    let expected = [
        (
            s.alarm_name_for("dlq-messages"),
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            vec![("QueueName", s.dlq_name())],
            "Maximum",
            0.0,
        ),
        (
            s.alarm_name_for("failed-images"),
            metrics::NAMESPACE,
            metrics::IMAGES_FAILED,
            vec![(metrics::FUNCTION_NAME, s.worker_name())],
            "Sum",
            7.0,
        ),
        (
            s.alarm_name_for("worker-errors"),
            "AWS/Lambda",
            "Errors",
            vec![("FunctionName", s.worker_name())],
            "Sum",
            2.0,
        ),
        (
            s.alarm_name_for("worker-throttles"),
            "AWS/Lambda",
            "Throttles",
            vec![("FunctionName", s.worker_name())],
            "Sum",
            3.0,
        ),
        (
            s.alarm_name_for("http-errors"),
            "AWS/Lambda",
            "Errors",
            vec![("FunctionName", s.http_name())],
            "Sum",
            2.0,
        ),
        (
            s.alarm_name_for("http-throttles"),
            "AWS/Lambda",
            "Throttles",
            vec![("FunctionName", s.http_name())],
            "Sum",
            3.0,
        ),
        (
            s.alarm_name_for("api-5xx"),
            "AWS/ApiGateway",
            "5xx",
            vec![("ApiId", api_id.clone()), ("Stage", "$default".to_owned())],
            "Sum",
            4.0,
        ),
    ];
    for (name, namespace, metric, dimensions, statistic, threshold) in expected {
        let got = cw
            .describe_alarms()
            .alarm_names(&name)
            .send()
            .await
            .unwrap();
        let a = got
            .metric_alarms()
            .first()
            .unwrap_or_else(|| panic!("alarm {name} exists"));
        assert_eq!(a.namespace(), Some(namespace), "{name}");
        assert_eq!(a.metric_name(), Some(metric), "{name}");
        let dims: Vec<(String, String)> = a
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned()))
            .collect();
        let want: Vec<(String, String)> = dimensions
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        assert_eq!(dims, want, "{name}");
        assert_eq!(a.statistic().map(|s| s.as_str()), Some(statistic), "{name}");
        assert_eq!(
            a.comparison_operator().map(|c| c.as_str()),
            Some("GreaterThanThreshold"),
            "{name}"
        );
        assert_eq!(a.threshold(), Some(threshold), "{name}");
        assert_eq!(a.period(), Some(300), "{name}");
        assert_eq!(a.evaluation_periods(), Some(1), "{name}");
        assert_eq!(a.treat_missing_data(), Some("notBreaching"), "{name}");
        assert_eq!(a.actions_enabled(), Some(true), "{name}");
        assert_eq!(a.alarm_actions(), std::slice::from_ref(&topic), "{name}");
        assert_eq!(a.ok_actions(), std::slice::from_ref(&topic), "{name}");
        assert!(
            a.alarm_description()
                .is_some_and(|d| d.ends_with("managed by couch-provisioner")),
            "{name}: {:?}",
            a.alarm_description()
        );
        let tags = cw
            .list_tags_for_resource()
            .resource_arn(a.alarm_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            tags.tags()
                .iter()
                .any(|t| t.key() == Some("stack") && t.value() == Some(f.name.as_str())),
            "{name} carries the ownership tags"
        );
    }
    assert!(!f.plan().await.has_changes(), "a fresh apply plans nothing");

    // One threshold changed: one field of one alarm.
    f.write(120, "team@example.com");
    f.append_yaml(
        "alarms: { period_seconds: 300, dlq_messages: 0, failed_images: 9, function_errors: 2, function_throttles: 3, api_5xx: 4 }\n",
    );
    let plan = f.plan().await;
    let changes = changing(&plan);
    assert_eq!(
        changes,
        [(
            declare::FAILED_IMAGES_ALARM.to_owned(),
            provisioner::engine::Action::Update
        )]
    );
    let fields: Vec<&str> = plan
        .change(declare::FAILED_IMAGES_ALARM)
        .unwrap()
        .fields
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(fields, ["description", "threshold"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_derived_compared_as_json_and_put_back_when_edited() {
    let f = Fixture::new("t-board-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let cw = aws_sdk_cloudwatch::Client::new(&f.conf);
    let body =
        |raw: Option<&str>| -> serde_json::Value { serde_json::from_str(raw.unwrap()).unwrap() };
    let dashboard = || async {
        let got = cw
            .get_dashboard()
            .dashboard_name(&f.name)
            .send()
            .await
            .unwrap();
        body(got.dashboard_body())
    };
    let live = dashboard().await;
    let text = live.to_string();
    let api_id = f.live_attr(declare::API, "id").await;
    let s = f.stack();
    for needle in [
        s.queue_name(),
        s.dlq_name(),
        s.worker_name(),
        s.http_name(),
        api_id.clone(),
        s.alarm_name_for("dlq-messages"),
        "ImagesFailed".into(),
        "ModelLatency".into(),
    ] {
        assert!(text.contains(&needle), "{needle} in {text}");
    }
    let alarms = live["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["type"] == "alarm")
        .unwrap()["properties"]["alarms"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(alarms, 9, "every alarm of the stack");
    assert!(!f.plan().await.has_changes(), "compared as JSON: no change");

    // Someone edits a widget in the console.
    let mut edited = live.clone();
    edited["widgets"][3]["properties"]["title"] = serde_json::json!("my own title");
    cw.put_dashboard()
        .dashboard_name(&f.name)
        .dashboard_body(edited.to_string())
        .send()
        .await
        .unwrap();
    let plan = f.plan().await;
    assert_eq!(
        changing(&plan),
        [(
            declare::DASHBOARD.to_owned(),
            provisioner::engine::Action::Update
        )]
    );
    let text = f.run_ok(&["apply", "--yes"]);
    assert!(text.contains("dashboard.stack"), "{text}");
    assert_eq!(dashboard().await, live, "put back");

    f.run_ok(&["destroy", "--yes"]);
    assert!(
        cw.get_dashboard()
            .dashboard_name(&f.name)
            .send()
            .await
            .is_err(),
        "destroy removes it"
    );
}

#[tokio::test]
async fn alarm_mistakes_are_rejected_with_file_and_line() {
    let f = Fixture::new("t-alarms-bad-").await;
    f.append_yaml("alarms: { period_seconds: 45, failed_images: 0, oops: 1 }\n");
    let out = f.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = std::fs::read_to_string(&f.file)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("alarms:"))
        .unwrap()
        + 1;
    assert!(err.contains(&format!(":{line}")), "{err}");
    assert!(err.contains("alarms"), "{err}");
    assert!(err.contains("oops"), "{err}");

    f.write(120, "team@example.com");
    f.append_yaml("alarms: { period_seconds: 45, failed_images: 0 }\n");
    let err = stderr(&f.cli(&["validate"]));
    assert!(
        err.contains("alarms.period_seconds")
            && err.contains("45 is not a CloudWatch alarm period"),
        "{err}"
    );
    assert!(err.contains("alarms.failed_images"), "{err}");
}
