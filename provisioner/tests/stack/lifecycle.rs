//! A stack's life: created from empty, planned again with nothing to do,
//! one field changed, destroyed, and an apply interrupted (in process or
//! killed) converging on the next run. Belongs here: whole-stack create,
//! update, destroy and re-run behaviour.

use super::*;

#[tokio::test]
async fn create_from_empty() {
    let f = Fixture::new("t-create-").await;
    let plan = f.plan().await;
    assert_eq!(plan.summary.create, MANAGED, "{plan:#?}");
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);

    let text = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(
        text.contains("queue.prompts: Creation complete after"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Apply complete! Resources: {MANAGED} added, 0 changed, 0 destroyed."
        )),
        "{text}"
    );

    let s = f.stack();
    assert_eq!(
        f.queue_attr(&s.queue_name(), QueueAttributeName::VisibilityTimeout)
            .await,
        "180"
    );
    assert_eq!(
        f.queue_attr(&s.dlq_name(), QueueAttributeName::MessageRetentionPeriod)
            .await,
        "1209600"
    );
    let redrive: Value = serde_json::from_str(
        &f.queue_attr(&s.queue_name(), QueueAttributeName::RedrivePolicy)
            .await,
    )
    .unwrap();
    // max_receive_count 3 + the worker's 50 throttled receives: a crash net.
    assert_eq!(redrive["maxReceiveCount"].as_u64(), Some(53));
    assert!(
        redrive["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", s.dlq_name()))
    );

    let cw = aws_sdk_cloudwatch::Client::new(&f.conf);
    let alarms = cw
        .describe_alarms()
        .alarm_names(s.alarm_name())
        .send()
        .await
        .unwrap();
    let alarm = &alarms.metric_alarms()[0];
    assert_eq!(alarm.metric_name(), Some("ApproximateAgeOfOldestMessage"));
    assert_eq!(alarm.threshold(), Some(120.0));
    assert_eq!(alarm.dimensions()[0].value(), Some(s.queue_name().as_str()));
    assert!(alarm.alarm_actions()[0].ends_with(&s.topic_name()));
    assert!(alarm.ok_actions()[0].ends_with(&s.topic_name()));

    let out = f.cli(&["outputs", "--json"]);
    assert_ok(&out);
    let outputs: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for key in [
        "queue_url",
        "queue_arn",
        "dlq_url",
        "dlq_arn",
        "topic_arn",
        "alarm_name",
    ] {
        assert!(
            outputs[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} missing in {outputs}"
        );
    }
    assert_eq!(outputs["alarm_name"], json!(s.alarm_name()));
}

#[tokio::test]
async fn a_first_plan_knows_what_the_declaration_determines() {
    let f = Fixture::new("t-known-").await;
    let s = f.stack();
    let plan = f.plan().await;
    let after = |address: &str, path: &str| {
        plan.change(address)
            .unwrap()
            .fields
            .iter()
            .find(|c| c.path == path)
            .unwrap_or_else(|| panic!("{address} has no {path}"))
            .after
            .clone()
    };
    // Names are fixed, and ARNs follow from name, region and account.
    assert_eq!(
        after(declare::ALARM, "dimensions"),
        Some(json!([{"name": "QueueName", "value": s.queue_name()}]))
    );
    let dlq_arn = format!("arn:aws:sqs:{REGION}:123456789012:{}", s.dlq_name());
    assert_eq!(
        after(declare::QUEUE, "redrive_policy"),
        Some(json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 53}))
    );
    let topic_arn = format!("arn:aws:sns:{REGION}:123456789012:{}", s.topic_name());
    assert_eq!(
        after(declare::ALARM, "alarm_actions"),
        Some(json!([topic_arn]))
    );
    // The predicted ARNs are the ones AWS gives: applying then planning shows nothing.
    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    assert!(!f.plan().await.has_changes());
    let out = f.cli(&["outputs", "--json"]);
    let outputs: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(outputs["dlq_arn"], json!(dlq_arn));
    assert_eq!(outputs["topic_arn"], json!(topic_arn));
}

#[tokio::test]
async fn second_plan_has_no_changes_and_second_apply_does_nothing() {
    let f = Fixture::new("t-noop-").await;
    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    let out = f.cli(&["plan", "--detailed-exitcode"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("Nothing to do"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("Creating"), "{}", stdout(&out));
    assert_eq!(f.queues().await.len(), 2);
}

#[tokio::test]
async fn changed_threshold_is_one_field_update() {
    let f = Fixture::new("t-thresh-").await;
    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    f.write(300, "team@example.com");

    let out = f.cli(&["plan", "--json", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let changed: Vec<&Value> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .collect();
    assert_eq!(changed.len(), 1, "{plan:#}");
    assert_eq!(changed[0]["address"], "alarm.prompt_age");
    assert_eq!(changed[0]["kind"], "cloudwatch-alarm");
    assert_eq!(changed[0]["action"], "update");
    assert_eq!(
        changed[0]["fields"],
        json!([{"path": "threshold", "before": 120.0, "after": 300.0}])
    );
    assert_eq!(
        plan["summary"],
        json!({"create": 0, "update": 1, "replace": 0, "delete": 0})
    );

    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("0 added, 1 changed, 0 destroyed"),
        "{}",
        stdout(&out)
    );
    let cw = aws_sdk_cloudwatch::Client::new(&f.conf);
    let alarms = cw
        .describe_alarms()
        .alarm_names(f.stack().alarm_name())
        .send()
        .await
        .unwrap();
    assert_eq!(alarms.metric_alarms()[0].threshold(), Some(300.0));
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn destroy_removes_what_the_stack_owns_and_nothing_else() {
    let f = Fixture::new("t-destroy-").await;
    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    let s = f.stack();
    let sqs = f.sqs();
    // Neighbours: a queue with a similar name, and another stack's resources.
    sqs.create_queue()
        .queue_name(format!("{}-prompts-keep", f.name))
        .send()
        .await
        .unwrap();
    let other = Fixture::new("t-other-").await;
    assert_ok(&other.cli(&["apply", "--yes", "--approve-broadening"]));

    let out = f.cli(&["destroy"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "destroy without --yes off a terminal must refuse"
    );
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(f.queues().await.len(), 3);

    let text = f.run_ok(&["destroy", "--yes"]);
    assert!(
        text.contains(&format!(
            "Destroy complete! Resources: 0 added, 0 changed, {MANAGED} destroyed."
        )),
        "{text}"
    );
    // moto confirms e-mail subscriptions at once, so the subscription is deleted too.
    assert!(
        text.contains("subscription.alerts_email: Destruction complete"),
        "{text}"
    );
    let left = f.queues().await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with("-prompts-keep"));
    let topics = f.topic_arns().await;
    assert!(
        !topics
            .iter()
            .any(|t| t.ends_with(&format!(":{}", s.topic_name()))),
        "{topics:?}"
    );
    assert!(
        topics
            .iter()
            .any(|t| t.ends_with(&format!(":{}", other.stack().topic_name()))),
        "{topics:?}"
    );
    let cw = aws_sdk_cloudwatch::Client::new(&f.conf);
    assert!(
        cw.describe_alarms()
            .alarm_names(s.alarm_name())
            .send()
            .await
            .unwrap()
            .metric_alarms()
            .is_empty()
    );
    assert!(
        !other.plan().await.has_changes(),
        "the other stack is intact"
    );
    // Destroying again is a no-op.
    let out = f.cli(&["destroy", "--yes"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("Nothing to do"), "{}", stdout(&out));
}

#[tokio::test]
async fn interrupted_apply_converges_on_rerun() {
    let f = Fixture::new("t-interrupt-").await;
    let session = f.session();
    let (plan, snapshot) = session.plan(Mode::Apply, false).await.unwrap();
    // Interrupted after the first wave: only the resources without dependencies exist.
    let mut partial = plan.clone();
    partial
        .changes
        .retain(|c| c.address == declare::DLQ || c.address == declare::TOPIC);
    execute(&partial, &session.resources(), &snapshot, &|_| {})
        .await
        .unwrap();

    let plan = f.plan().await;
    let rest: Vec<(String, Action)> = ALL[2..]
        .iter()
        .filter(|a| **a != declare::DLQ && **a != declare::TOPIC)
        .map(|a| ((*a).to_owned(), Action::Create))
        .collect();
    assert_eq!(changing(&plan), rest);
    // The re-run references the DLQ that exists: its ARN is known now.
    let q = plan.change(declare::QUEUE).unwrap();
    assert!(q.fields.iter().all(|c| c.after.is_some()), "{q:#?}");

    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains(&format!("{} added, 0 changed", MANAGED - 2)),
        "{}",
        stdout(&out)
    );
    assert_eq!(f.queues().await.len(), 2, "nothing created twice");
    let subs = f.subscriptions().await;
    assert_eq!(subs.len(), 1);
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn killed_apply_process_converges_on_rerun() {
    let f = Fixture::new("t-kill-").await;
    // Kill the real binary as soon as it reports its first creation.
    let mut child = f
        .command(&["apply", "--yes", "--approve-broadening"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap() == 0
            || line.contains("Creation complete")
        {
            break;
        }
    }
    child.kill().ok();
    child.wait().unwrap();

    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    assert_eq!(f.queues().await.len(), 2);
    let out = f.cli(&["plan", "--detailed-exitcode"]);
    assert_ok(&out);
}
