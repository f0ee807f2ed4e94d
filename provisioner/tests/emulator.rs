//! The provisioner against a real AWS emulator (moto server on 127.0.0.1),
//! with the same SDK clients and the same binary users run.

mod common;

use std::process::{Command, Stdio};

use aws_sdk_sqs::types::QueueAttributeName;
use common::*;
use provisioner::declare;
use provisioner::engine::plan::{Mode, compute};
use provisioner::engine::{Action, execute};
use serde_json::{Value, json};

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
async fn drift_by_another_client_is_shown_and_corrected() {
    let f = Fixture::new("t-drift-").await;
    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    let s = f.stack();
    f.drift_visibility_timeout(30).await;

    let plan = f.plan().await;
    assert_eq!(
        changing(&plan),
        [("queue.prompts".to_owned(), Action::Update)]
    );
    let fields = &plan.change("queue.prompts").unwrap().fields;
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].path, "visibility_timeout_seconds");
    assert_eq!(fields[0].before, json!(30));
    assert_eq!(fields[0].after, Some(json!(180)));
    let text = stdout(&f.cli(&["plan"]));
    assert!(
        text.contains("~ visibility_timeout_seconds: 30 -> 180"),
        "{text}"
    );

    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    assert_eq!(
        f.queue_attr(&s.queue_name(), QueueAttributeName::VisibilityTimeout)
            .await,
        "180"
    );
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn foreign_queue_is_not_owned_until_adopted() {
    let f = Fixture::new("t-foreign-").await;
    let s = f.stack();
    let sqs = f.sqs();
    sqs.create_queue()
        .queue_name(s.queue_name())
        .attributes(QueueAttributeName::VisibilityTimeout, "45")
        .tags("owner", "someone-else")
        .send()
        .await
        .unwrap();

    let out = f.cli(&["plan", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a plan with a not-owned resource fails: {}",
        stdout(&out)
    );
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let q = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "queue.prompts")
        .unwrap();
    assert_eq!(q["action"], "not-owned");

    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("is not owned by stack"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    // Untouched: its attributes and tags, and nothing else of the stack created.
    assert_eq!(
        f.queue_attr(&s.queue_name(), QueueAttributeName::VisibilityTimeout)
            .await,
        "45"
    );
    let url = sqs
        .get_queue_url()
        .queue_name(s.queue_name())
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let tags = f.queue_tags(&url).await;
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert_eq!(
        f.queues().await.len(),
        1,
        "the DLQ must not have been created"
    );

    let out = f.cli(&["apply", "--yes", "--approve-broadening", "--adopt"]);
    assert_ok(&out);
    assert_eq!(
        f.queue_attr(&s.queue_name(), QueueAttributeName::VisibilityTimeout)
            .await,
        "180"
    );
    let tags = f.queue_tags(&url).await;
    assert_eq!(
        tags.get("managed-by").map(String::as_str),
        Some("couch-provisioner")
    );
    assert_eq!(tags.get("stack"), Some(&f.name));
    assert!(
        !tags.contains_key("owner"),
        "adoption brings tags to the declared set: {tags:?}"
    );
    let out = f.cli(&["plan", "--detailed-exitcode"]);
    assert_ok(&out);
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

#[tokio::test]
async fn changed_email_replaces_the_subscription() {
    let f = Fixture::new("t-email-").await;
    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    f.write(120, "oncall@example.com");
    let plan = f.plan().await;
    assert_eq!(
        changing(&plan),
        [(declare::SUBSCRIPTION.to_owned(), Action::Replace)]
    );
    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("1 added, 0 changed, 1 destroyed"),
        "{}",
        stdout(&out)
    );
    let subs = f.subscriptions().await;
    let endpoints: Vec<_> = subs.iter().filter_map(|s| s.endpoint()).collect();
    assert_eq!(endpoints, ["oncall@example.com"]);
}

#[tokio::test]
async fn missing_bucket_is_reported_and_apply_refuses() {
    let f = Fixture::new("t-nobucket-").await;
    let text = std::fs::read_to_string(&f.file)
        .unwrap()
        .replace(&format!("{}-images", f.name), "no-such-bucket-anywhere");
    std::fs::write(&f.file, text).unwrap();
    let out = f.cli(&["plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out)
            .contains("s3-bucket \"no-such-bucket-anywhere\" (bucket.images) does not exist"),
        "{}",
        stdout(&out)
    );
    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(f.queues().await.is_empty());
}

#[tokio::test]
async fn offline_plan_and_validate_make_no_aws_call() {
    let f = Fixture::new("t-offline-").await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provisioner"));
    // A closed port: any AWS call would fail.
    let out = cmd
        .args(["plan", "--offline", "--detailed-exitcode", "--stack"])
        .arg(&f.file)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!(
            "Plan: {MANAGED} to add, 0 to change, 0 to destroy."
        )),
        "{}",
        stdout(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["validate", "--stack"])
        .arg(&f.file)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_ok(&out);
}

#[test]
fn a_plan_of_the_prod_stack_prints_its_throughput_ceiling() {
    let prod = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks/prod.yaml");
    for verb in [&["plan", "--offline"][..], &["validate"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .args(verb)
            .arg("--stack")
            .arg(&prod)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        let text = stdout(&out);
        // 5 workers x a batch of 10 calls, 5 s an image: 600 a minute.
        assert!(
            text.contains("Throughput: at most 600 images a minute (no model capacity stated (model.max_in_flight): at most 5 worker(s) x 10 call(s)"),
            "{verb:?}: {text}{}",
            stderr(&out)
        );
        assert!(
            text.contains("a burst of 1,000 prompts is drained in about 100 s."),
            "{verb:?}: {text}"
        );
    }
}

#[tokio::test]
async fn invalid_stack_is_rejected_with_file_and_line_before_any_call() {
    let f = Fixture::new("t-invalid-").await;
    let text = std::fs::read_to_string(&f.file).unwrap().replace(
        "visibility_timeout_seconds: 180",
        "visibility_timeout_seconds: 99999",
    );
    std::fs::write(
        &f.file,
        text.replace("email: team@example.com", "email: nobody"),
    )
    .unwrap();
    for verb in [
        &["validate"][..],
        &["plan"],
        &["apply", "--yes", "--approve-broadening"],
    ] {
        let out = f.cli(verb);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        let file = f.file.display().to_string();
        assert!(
            err.contains(&format!(
                "{file}:4: queue.visibility_timeout_seconds: 99999 is out of range"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{file}:5: alarm.email: \"nobody\" is not a valid e-mail address"
            )),
            "{err}"
        );
    }
    assert!(f.queues().await.is_empty());
}

#[tokio::test]
async fn plan_reads_are_concurrent() {
    let f = Fixture::new("t-reads-").await;
    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    let session = f.session();
    session.read().await.unwrap(); // warm up: moto loads each service on first use
    session.aws.calls.clear();
    let snapshot = session.read().await.unwrap();
    let plan = compute(
        &session.resources(),
        &snapshot,
        &session.options(Mode::Apply, false),
    );
    assert!(!plan.has_changes());
    let calls = session.aws.calls.snapshot();
    let stats = provisioner::aws::calls::stats(&calls);
    assert!(stats.calls >= 10, "{stats:?}");
    // Overlap, as a ratio: the calls' summed time over the span they took.
    // Read one after another it would be about 1; the resources' reads run
    // at once, each kind's chain at most three deep (get-url, attributes,
    // tags). (The longest chain of non-overlapping calls alone varied 2..5
    // on this 2-core machine for the same code: the SDK starts 65 calls
    // staggered, and one that ends early chains with one that starts late.)
    let busy: f64 = calls
        .iter()
        .filter_map(|c| c.end.map(|e| e.duration_since(c.start).as_secs_f64()))
        .sum();
    let overlap = busy / stats.span.as_secs_f64().max(1e-6);
    assert!(
        overlap >= 3.0,
        "reads must overlap: {overlap:.1}x, {stats:?}"
    );
    assert!(stats.sequential <= 6, "reads must overlap: {stats:?}");
}

/// Runs the binary on a pseudo-terminal (util-linux `script`), typing `answer`.
fn on_terminal(f: &Fixture, args: &str, answer: &str) -> String {
    use std::io::Write;
    let bin = env!("CARGO_BIN_EXE_provisioner");
    let line = format!(
        "{bin} {args} --stack {} --artifacts {}",
        f.file.display(),
        f.artifacts.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("AWS_ENDPOINT_URL", &f.endpoint)
        .env("AWS_ENDPOINT_URL_BEDROCK", &f.bedrock.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_REGION")
        .env_remove("CI")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the provisioner on a pseudo-terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn apply_asks_on_a_terminal_and_only_yes_applies() {
    let f = Fixture::new("t-tty-").await;
    let text = on_terminal(&f, "apply", "no\n");
    assert!(text.contains("Only 'yes' will be accepted"), "{text}");
    assert!(text.contains("Cancelled: nothing was changed."), "{text}");
    assert!(f.queues().await.is_empty());
    // Yes to the changes, then a separate question for what broadens: no.
    let text = on_terminal(&f, "apply", "yes\nno\n");
    assert!(text.contains("grant more than before"), "{text}");
    assert!(text.contains("Cancelled: nothing was changed."), "{text}");
    assert!(f.queues().await.is_empty());
    let text = on_terminal(&f, "apply", "yes\nyes\n");
    assert!(text.contains("Apply complete!"), "{text}");
    assert_eq!(f.queues().await.len(), 2);
}

// Multi-threaded: the proxy must keep serving while the test waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_email_subscriptions_are_neither_duplicated_nor_fatal() {
    // SNS as on AWS before anyone clicks the link: subscriptions listed as pending.
    let endpoint = testkit::proxy::start_rewriting(
        testkit::moto_endpoint(),
        std::time::Duration::ZERO,
        testkit::proxy::pending_email_subscriptions(),
    )
    .await;
    let f = Fixture::with_endpoint("t-pending-", &endpoint).await;
    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    let subs = f.subscriptions().await;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].subscription_arn(), Some("PendingConfirmation"));

    // The pending subscription is the live one: no Subscribe on every apply.
    let plan = f.plan().await;
    assert!(
        !plan.has_changes(),
        "{:#?}",
        plan.change(declare::SUBSCRIPTION)
    );
    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("Nothing to do"), "{}", stdout(&out));
    assert_eq!(f.subscriptions().await.len(), 1);

    // A new address: subscribe it; the old one cannot be unsubscribed while pending.
    f.write(120, "oncall@example.com");
    assert_eq!(
        changing(&f.plan().await),
        [(declare::SUBSCRIPTION.to_owned(), Action::Replace)]
    );
    let text = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(
        text.contains("Warning: the old one was not deleted"),
        "{text}"
    );
    assert!(text.contains("pending confirmation"), "{text}");
    let mut endpoints: Vec<String> = f
        .subscriptions()
        .await
        .iter()
        .filter_map(|s| s.endpoint().map(str::to_owned))
        .collect();
    endpoints.sort();
    assert_eq!(endpoints, ["oncall@example.com", "team@example.com"]);
    assert!(!f.plan().await.has_changes());

    // Destroy skips the pending subscription with a warning instead of failing.
    let text = f.run_ok(&["destroy", "--yes"]);
    assert!(
        text.contains("subscription.alerts_email: Warning: not deleted"),
        "{text}"
    );
    assert!(text.contains("Destroy complete!"), "{text}");
    assert!(f.queues().await.is_empty());
}

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

#[tokio::test]
async fn name_flag_deploys_and_destroys_a_separate_stack_from_the_same_file() {
    let f = Fixture::new("t-name-").await;
    let preview = format!("{}-pr7", f.name);
    // A preview's roles are bounded by the file's preview boundary, which
    // only `bootstrap` makes: until then the plan says so and changes nothing.
    let out = f.cli(&["apply", "--yes", "--approve-broadening", "--name", &preview]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains(&format!("{}-preview-boundary does not exist", f.name))
            && said.contains("provisioner bootstrap"),
        "{said}"
    );
    f.bootstrap();
    f.run_ok(&["apply", "--yes", "--approve-broadening", "--name", &preview]);
    let sqs = f.sqs();
    let listed = |prefix: String| {
        let sqs = sqs.clone();
        async move {
            sqs.list_queues()
                .queue_name_prefix(prefix)
                .send()
                .await
                .unwrap()
                .queue_urls
                .unwrap_or_default()
        }
    };
    assert_eq!(listed(format!("{preview}-")).await.len(), 2);
    assert_eq!(listed(format!("{}-prompts", f.name)).await.len(), 0);

    // The file's own stack is another stack: created beside it, untouched by its destroy.
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let text = f.run_ok(&["destroy", "--yes", "--name", &preview]);
    assert!(text.contains("Destroy complete!"), "{text}");
    assert!(listed(format!("{preview}-")).await.is_empty());
    assert_eq!(listed(format!("{}-prompts", f.name)).await.len(), 2);
    assert!(!f.plan().await.has_changes());

    // Checked like the file's name, before any AWS call.
    let out = f.cli(&["plan", "--name", "Bad_Name"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--name: \"Bad_Name\" is not a valid stack name"),
        "{}",
        stderr(&out)
    );
}
