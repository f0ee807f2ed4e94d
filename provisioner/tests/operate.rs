//! Operating the deployed stack against moto: `status` exits 3 with a prompt
//! in the dead-letter queue, `redrive` moves it back with SQS's message move
//! task (served by the moto launcher), the real worker code makes it an
//! image, and `status` exits 0 again; an interrupted redrive cancels the task
//! and loses nothing.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsEvent;
use common::*;
use imagegen::{BedrockModel, Generator, S3Store};
use provisioner::local::trigger::{Invoke, Trigger, pause_emulator_mappings};
use serde_json::Value;

/// The worker as Lambda runs it, with the real clients.
struct Worker(Generator<BedrockModel, S3Store>);

#[async_trait]
impl Invoke for Worker {
    async fn invoke(&self, event: Value) -> Result<Value, String> {
        let event: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
        let outcomes = image_worker::process_batch(&self.0, &event.records, 10).await;
        serde_json::to_value(image_worker::batch_response(&event.records, &outcomes))
            .map_err(|e| e.to_string())
    }
}

/// The stack applied, moto's own mapping paused (the test plays the trigger),
/// and `bodies` in the dead-letter queue as if they had failed their receives.
async fn deployed_with_dead_letters(prefix: &str, bodies: &[&str]) -> (Fixture, String, String) {
    let f = Fixture::new(prefix).await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();
    let queue_arn = f.live_attr(provisioner::declare::QUEUE, "arn").await;
    pause_emulator_mappings(&f.lambda(), &s.worker_name(), &queue_arn)
        .await
        .expect("pausing moto's mapping");
    let dlq_url = f.queue_url(&s.dlq_name()).await;
    for body in bodies {
        f.sqs()
            .send_message()
            .queue_url(&dlq_url)
            .message_body(*body)
            .send()
            .await
            .unwrap();
    }
    let queue_url = f.queue_url(&s.queue_name()).await;
    (f, queue_url, dlq_url)
}

async fn depth(f: &Fixture, url: &str) -> usize {
    testkit::queues::depth(&f.sqs(), url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_prompt_is_redriven_and_becomes_an_image() {
    let (f, queue_url, dlq_url) =
        deployed_with_dead_letters("t-redrive-", &["me on a sofa, sent back"]).await;
    let s = f.stack();

    let out = tokio::task::block_in_place(|| f.cli(&["status"]));
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("1 prompt(s) in the dead-letter queue"),
        "{text}"
    );
    assert!(
        text.contains(&s.alarm_name_for("dlq-messages")),
        "every alarm is listed: {text}"
    );
    let json: Value = serde_json::from_str(&stdout(&tokio::task::block_in_place(|| {
        f.cli(&["status", "--json"])
    })))
    .unwrap();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["dead_letter_queue"]["visible"], 1);
    assert_eq!(json["alarms"].as_array().unwrap().len(), 9);
    for function in json["functions"].as_array().unwrap() {
        assert_eq!(function["code_is_local_zip"], true, "{function}");
    }

    let text =
        tokio::task::block_in_place(|| f.run_ok(&["redrive", "--yes", "--max-per-second", "50"]));
    assert!(
        text.contains("Redrive complete: 1 prompt(s) are back on"),
        "{text}"
    );
    assert_eq!(depth(&f, &dlq_url).await, 0);
    assert_eq!(depth(&f, &queue_url).await, 1);

    // The worker takes it from the prompts queue and stores its image.
    let bconf = testkit::sdk_config(&f.bedrock.endpoint, &s.model.region);
    let s3 = f.s3();
    let worker = Worker(Generator::new(
        BedrockModel::new(aws_sdk_bedrockruntime::Client::new(&bconf), &s.model.id)
            .expect("the default model's family"),
        S3Store::new(s3.clone(), s.images.bucket.clone()),
        &s.images.prefix,
    ));
    let trigger = Trigger {
        queue_url: queue_url.clone(),
        queue_arn: f.live_attr(provisioner::declare::QUEUE, "arn").await,
        region: REGION.into(),
        batch_size: 10,
        wait_seconds: 1,
        timeout: Duration::from_secs(30),
    };
    let batch = trigger.poll_once(&f.sqs(), &worker).await.unwrap();
    assert_eq!(batch.received, 1);
    assert!(batch.failed.is_empty(), "{:?}", batch.invoke_error);
    let images: BTreeSet<String> = s3
        .list_objects_v2()
        .bucket(&s.images.bucket)
        .prefix(format!("{}/images/", s.images.prefix))
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .filter(|k| k.ends_with(".png"))
        .collect();
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(depth(&f, &queue_url).await, 0);

    let out = tokio::task::block_in_place(|| f.cli(&["status"]));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("Healthy."), "{}", stdout(&out));

    // Nothing left: a second redrive says so and moves nothing.
    let text = tokio::task::block_in_place(|| f.run_ok(&["redrive", "--yes"]));
    assert!(text.contains("Nothing to redrive"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_redrive_cancels_the_task_and_loses_nothing() {
    let bodies: Vec<String> = (0..6).map(|i| format!("prompt {i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let (f, queue_url, dlq_url) = deployed_with_dead_letters("t-redrive-int-", &refs).await;

    // One a second: Ctrl-C (SIGINT) lands while the task runs, once the
    // redrive says it is running (not after a guessed delay: a loaded
    // machine starts the process late).
    let mut child = f
        .command(&["redrive", "--yes", "--max-per-second", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (running_tx, running_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut text = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("RUNNING:") {
                let _ = running_tx.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let running = tokio::task::block_in_place(|| running_rx.recv_timeout(Duration::from_secs(120)));
    assert!(running.is_ok(), "the redrive never said it was running");
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe_free_kill(pid), 0);
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    let text = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("cancelling the move task"), "{text}");
    assert!(text.contains("Redrive cancelled after"), "{text}");
    let (moved, left) = (depth(&f, &queue_url).await, depth(&f, &dlq_url).await);
    assert!(
        moved >= 1 && left >= 1,
        "moved {moved}, left {left}: {text}"
    );
    assert_eq!(moved + left, 6, "nothing lost or doubled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_one_prompt_across_both_functions_in_time_order() {
    let f = Fixture::new("t-logs-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    // As Lambda writes them: one stream per instance, JSON lines.
    let lines = [
        (
            "http",
            now - 4000,
            r#"{"level":"INFO","message":"image stored","request_id":"r-1","image_key":"11/images/r-1.png","outcome":"stored"}"#,
        ),
        (
            "worker",
            now - 3000,
            r#"{"level":"WARN","message":"image failed","message_id":"m-7","image_key":"11/images/m-7.png","outcome":"failed","Reason":"throttled","_aws":{"Timestamp":1}}"#,
        ),
        (
            "http",
            now - 2000,
            r#"{"level":"INFO","message":"queued","request_id":"m-7"}"#,
        ),
        (
            "worker",
            now - 1000,
            r#"{"level":"INFO","message":"image stored","message_id":"m-7","image_key":"11/images/m-7.png","outcome":"stored"}"#,
        ),
        ("worker", now - 500, "END RequestId: abc"),
    ];
    for (function, timestamp, message) in lines {
        let name = if function == "worker" {
            s.worker_name()
        } else {
            s.http_name()
        };
        let group = provisioner::stack::Stack::log_group_name(&name);
        let stream = format!("2026/12/02/[$LATEST]{function}{timestamp}");
        write_lines(&f, &group, &stream, timestamp, &[message]).await;
    }

    // Everything, interleaved by time, marked with the function.
    let all = tokio::task::block_in_place(|| f.run_ok(&["logs", "--since", "1h"]));
    // Apply's health checks ran both functions in the emulator, which wrote
    // their lines (a "Lambda runtime invoke" span, then REPORT) as Lambda does.
    let health_runs =
        |l: &&str| l.contains("Lambda runtime invoke") || l.contains("REPORT RequestId");
    assert!(all.contains("health check passed"), "{all}");
    let order: Vec<&str> = all
        .lines()
        .filter(|l| !health_runs(l))
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        order,
        ["http", "worker", "http", "worker", "worker"],
        "{all}"
    );
    assert!(all.contains("worker WARN  image failed"), "{all}");
    assert!(!all.contains("_aws"), "EMF metadata is left out: {all}");

    // One prompt across both groups, in order.
    let one = tokio::task::block_in_place(|| f.run_ok(&["logs", "--since", "1h", "--id", "m-7"]));
    let got: Vec<(&str, &str)> = one
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace().skip(1);
            (w.next().unwrap_or(""), w.next().unwrap_or(""))
        })
        .collect();
    assert_eq!(
        got,
        [("worker", "WARN"), ("http", "INFO"), ("worker", "INFO")],
        "{one}"
    );

    // One function, a filter, raw JSON.
    let worker = tokio::task::block_in_place(|| {
        f.run_ok(&[
            "logs", "worker", "--since", "1h", "--filter", "stored", "--json",
        ])
    });
    let parsed: Vec<serde_json::Value> = worker
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 1, "{worker}");
    assert_eq!(parsed[0]["function"], "worker");
    assert!(
        parsed[0]["message"]
            .as_str()
            .unwrap()
            .contains("\"outcome\":\"stored\"")
    );

    // Nothing older than --since.
    // (The apply's health checks just ran: their runs are recent and shown.)
    let recent = tokio::task::block_in_place(|| f.run_ok(&["logs", "--since", "1s"]));
    assert!(
        recent.lines().filter(|l| !health_runs(l)).count() <= 1,
        "{recent}"
    );

    // --follow prints a line written after it started, until Ctrl-C: from a
    // Live Tail session (the emulator streams it as AWS does), and, where
    // Live Tail cannot be reached (here: its `stream-` host prefix left in
    // front of 127.0.0.1), by polling FilterLogEvents.
    let group = provisioner::stack::Stack::log_group_name(&s.worker_name());
    for (n, live) in [(8, true), (9, false)] {
        let id = format!("m-{n}");
        let mut cmd = f.command(&["logs", "--since", "1s", "--follow", "--id", &id]);
        if !live {
            cmd.env_remove("AWS_DISABLE_HOST_PREFIX_INJECTION")
                .env("AWS_MAX_ATTEMPTS", "1");
        }
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let stream = format!("later-{n}");
        let later = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let wanted_line =
            format!(r#"{{"level":"INFO","message":"image stored","message_id":"{id}"}}"#);
        let other = r#"{"level":"INFO","message":"image stored","message_id":"other"}"#;
        write_lines(&f, &group, &stream, later, &[&wanted_line, other]).await;
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert_eq!(unsafe_free_kill(i32::try_from(child.id()).unwrap()), 0);
        let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let errors = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{text}{errors}");
        let wanted = format!("image stored message_id={id}");
        assert_eq!(
            text.lines().filter(|l| l.contains(&wanted)).count(),
            1,
            "the new line once: {text}{errors}"
        );
        assert!(!text.contains("message_id=other"), "filtered: {text}");
        assert_eq!(
            errors.contains("Live Tail is not available"),
            !live,
            "live tail {live}: {errors}"
        );
    }
}

/// A new log stream in `group` with `messages`, all at `timestamp`, as a
/// function's Lambda instance writes them.
async fn write_lines(f: &Fixture, group: &str, stream: &str, timestamp: i64, messages: &[&str]) {
    f.logs()
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let events = messages
        .iter()
        .map(|m| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(timestamp)
                .message(*m)
                .build()
                .unwrap()
        })
        .collect();
    f.logs()
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
}

/// SIGINT to `pid` through kill(1): no unsafe code in the tests.
fn unsafe_free_kill(pid: i32) -> i32 {
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .map(|s| s.code().unwrap_or(1))
        .unwrap_or(1)
}
