//! `plan --out` / `apply --plan`: a saved plan applies only while a fresh
//! plan still makes exactly its changes.

use super::*;

#[tokio::test]
async fn a_saved_plan_applies_only_while_it_is_still_right() {
    let f = Fixture::new("t-saved-").await;
    let saved = f.file.with_extension("plan.json");
    let saved_arg = saved.display().to_string();
    f.run_ok(&["plan", "--out", &saved_arg]);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(json["summary"]["create"], MANAGED);

    // Applied without a question (it was reviewed when saved, broadening
    // included), even off a terminal.
    let text = f.run_ok(&["apply", "--plan", &saved_arg]);
    assert!(
        text.contains("approved: the reviewed saved plan contains them"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Apply complete! Resources: {MANAGED} added")),
        "{text}"
    );

    // A plan for a new threshold, then someone changes the queue: the plan is stale.
    f.write(300, "team@example.com");
    f.run_ok(&["plan", "--out", &saved_arg]);
    let s = f.stack();
    f.drift_visibility_timeout(30).await;
    let out = f.cli(&["apply", "--plan", &saved_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the saved plan is stale"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("queue.prompts"), "{}", stderr(&out));
    let cw = aws_sdk_cloudwatch::Client::new(&f.conf);
    let alarms = cw
        .describe_alarms()
        .alarm_names(s.alarm_name())
        .send()
        .await
        .unwrap();
    assert_eq!(
        alarms.metric_alarms()[0].threshold(),
        Some(120.0),
        "nothing was applied"
    );
    assert_eq!(
        f.queue_attr(&s.queue_name(), QueueAttributeName::VisibilityTimeout)
            .await,
        "30"
    );
}
