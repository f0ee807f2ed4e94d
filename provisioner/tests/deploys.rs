//! Safe deploys against moto: each change is a published version the `live`
//! alias moves to; a canary gives the new HTTP version its share for the
//! interval, watched by the alarms, and an alarm forced into ALARM
//! (`SetAlarmState`) mid-shift puts the alias back and fails the apply;
//! `rollback` moves the alias back without building; old versions are pruned.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// `(function_version, weights)` of a function's `live` alias.
async fn alias(f: &Fixture, function: &str) -> (String, Vec<(String, f64)>) {
    let out = f
        .lambda()
        .get_alias()
        .function_name(function)
        .name("live")
        .send()
        .await
        .unwrap();
    let weights = out
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    (out.function_version().unwrap().to_owned(), weights)
}

async fn versions(f: &Fixture, function: &str) -> Vec<u64> {
    let out = f
        .lambda()
        .list_versions_by_function()
        .function_name(function)
        .send()
        .await
        .unwrap();
    let mut v: Vec<u64> = out
        .versions()
        .iter()
        .filter_map(|c| c.version()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

fn cloudwatch(f: &Fixture) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&f.conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_during_a_canary_rolls_the_alias_back_and_fails_the_apply() {
    let f = Fixture::new("t-canary-").await;
    f.append_yaml("deploy: { strategy: canary, percent: 10, interval_seconds: 20 }");
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let http = f.stack().http_name();
    let (before, weights) = alias(&f, &http).await;
    assert!(weights.is_empty());

    // An alarm already firing before the shift does not block it.
    let errors = f.stack().alarm_name_for("http-errors");
    let throttles = f.stack().alarm_name_for("http-throttles");
    cloudwatch(&f)
        .set_alarm_state()
        .alarm_name(&throttles)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("firing before the deploy")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    testkit::zips::write_function_zip(&f.artifacts, "image-http", "v2");
    let child = f
        .command(&["apply", "--yes", "--approve-broadening"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The canary step: the old version primary, the new one at 10%.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (primary, weights) = loop {
        let (v, w) = alias(&f, &http).await;
        if !w.is_empty() {
            break (v, w);
        }
        assert!(Instant::now() < deadline, "no canary step within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(primary, before);
    assert_eq!(weights.len(), 1);
    assert!((weights[0].1 - 0.1).abs() < 1e-9, "{weights:?}");
    let new_version = weights[0].0.clone();

    // An alarm going into ALARM mid-shift: back, within one poll.
    let fired = Instant::now();
    cloudwatch(&f)
        .set_alarm_state()
        .alarm_name(&errors)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("Threshold Crossed: 3 errors")
        .send()
        .await
        .unwrap();
    let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let rolled_back_after = fired.elapsed();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("10% on version"),
        "the step is printed: {text}"
    );
    assert!(
        text.contains(&format!("rolled back to version {before}"))
            && text.contains(&errors)
            && text.contains("Threshold Crossed: 3 errors"),
        "{text}"
    );
    assert!(
        rolled_back_after < Duration::from_secs(15),
        "rolled back in {rolled_back_after:?}"
    );
    let (now, weights) = alias(&f, &http).await;
    assert_eq!(now, before);
    assert!(weights.is_empty(), "no weights left: {weights:?}");
    // Nothing else was undone: the function's code is the new one.
    let latest = f
        .lambda()
        .get_function_configuration()
        .function_name(&http)
        .send()
        .await
        .unwrap();
    let zips = provisioner::artifacts::Artifacts::load(&f.artifacts);
    assert_eq!(latest.code_sha256(), zips.http.code_sha256.as_deref().ok());
    // The next plan moves the alias again.
    let plan = f.plan().await;
    let c = plan.change(provisioner::declare::HTTP_ALIAS).unwrap();
    assert!(c.action.mutates(), "{c:#?}");
    println!(
        "canary: new version {new_version}, rolled back {rolled_back_after:?} after the alarm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_shift_finishes_rollback_moves_back_and_old_versions_are_pruned() {
    let f = Fixture::new("t-linear-").await;
    f.append_yaml(
        "deploy: { strategy: linear, percent: 50, interval_seconds: 1, keep_versions: 2 }",
    );
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let http = f.stack().http_name();
    let (first, _) = alias(&f, &http).await;

    let started = Instant::now();
    testkit::zips::write_function_zip(&f.artifacts, "image-http", "v2");
    let text = tokio::task::block_in_place(|| {
        let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
        assert_ok(&out);
        format!("{}{}", stdout(&out), stderr(&out))
    });
    let shift = started.elapsed();
    assert!(text.contains("50% on version"), "{text}");
    assert!(text.contains("100% on version"), "{text}");
    let (second, weights) = alias(&f, &http).await;
    assert_ne!(second, first);
    assert!(weights.is_empty());
    assert!(!f.plan().await.has_changes());
    println!("linear 50% x 1 s: apply took {shift:?}");

    // Rollback: back to the first version, no build.
    let text = tokio::task::block_in_place(|| f.run_ok(&["rollback", "http"]));
    assert!(
        text.contains(&format!("function.http: live {second} -> {first}")),
        "{text}"
    );
    assert_eq!(alias(&f, &http).await, (first.clone(), Vec::new()));
    let plan = f.plan().await;
    assert!(
        plan.change(provisioner::declare::HTTP_ALIAS)
            .unwrap()
            .action
            .mutates(),
        "the alias is behind the deployed code"
    );

    // Two more versions with keep_versions 2: only the newest two (and any
    // the alias serves) are kept.
    for v in ["v3", "v4"] {
        testkit::zips::write_function_zip(&f.artifacts, "image-http", v);
        tokio::task::block_in_place(|| f.run_ok(&["apply", "--yes", "--approve-broadening"]));
    }
    let kept = versions(&f, &http).await;
    let (serving, _) = alias(&f, &http).await;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept.last().map(u64::to_string), Some(serving));
    // The worker moves at once, whatever the strategy.
    let worker = f.stack().worker_name();
    assert!(alias(&f, &worker).await.1.is_empty());
}

/// SIGKILL at two moments of a canary: just after the new version is
/// published (before or during its health check), and during the 10% step.
/// Either way the old version stays primary (at most one weighted version),
/// the plan shows what is left, and the next apply finishes the shift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_at_two_moments_of_a_canary_is_finished_by_the_next() {
    let f = Fixture::new("t-killshift-").await;
    f.append_yaml("deploy: { strategy: canary, percent: 10, interval_seconds: 4 }");
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let http = f.stack().http_name();
    for (round, moment) in ["published", "weighted"].into_iter().enumerate() {
        let (before, _) = alias(&f, &http).await;
        let published = versions(&f, &http).await;
        testkit::zips::write_function_zip(&f.artifacts, "image-http", &format!("v{}", round + 2));
        let mut child = f
            .command(&["apply", "--yes", "--approve-broadening"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reached = match moment {
                "published" => versions(&f, &http).await != published,
                _ => !alias(&f, &http).await.1.is_empty(),
            };
            if reached {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{moment}: not reached within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let _ = child.wait();
        // Left: the old version primary, at most the new one weighted; the plan says so.
        let (primary, weights) = alias(&f, &http).await;
        assert_eq!(primary, before, "{moment}");
        assert!(weights.len() <= 1, "{moment}: {weights:?}");
        let plan = f.plan().await;
        let c = plan.change(provisioner::declare::HTTP_ALIAS).unwrap();
        let shown = if weights.is_empty() {
            "function_version"
        } else {
            "weights"
        };
        assert!(
            c.fields.iter().any(|f| f.path.starts_with(shown)),
            "{moment}: the plan shows the {shown}: {c:#?}"
        );
        // The next apply (after the dead run's lock lapses) runs the shift again
        // from the old version and finishes it: one version, no weights.
        tokio::task::block_in_place(|| f.run_ok(&["apply", "--yes", "--approve-broadening"]));
        let (after, weights) = alias(&f, &http).await;
        assert_ne!(after, before, "{moment}");
        assert!(weights.is_empty(), "{moment}: {weights:?}");
        assert!(!f.plan().await.has_changes(), "{moment}");
    }
}

/// Before any traffic moves, apply invokes the new version with the health
/// event; the emulator runs the function's host build (scripts/moto_lambda_invoke.py).
/// A version that cannot write under the prefix gets no traffic, the apply
/// fails with the function's answer, and `verify` says the same of `live`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_its_health_check_gets_no_traffic_and_verify_says_why() {
    let f = Fixture::new("t-health-").await;
    let first = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&first);
    let log = stderr(&first);
    for function in ["alias.worker", "alias.http"] {
        assert!(
            log.contains(&format!(
                "{function}: version 1 passed its health check (config, model, store;"
            )),
            "{log}"
        );
    }
    // The check's round trip in the emulator (a debug build's cold start, one PutObject).
    for l in log
        .lines()
        .filter(|l| l.contains("passed its health check"))
    {
        println!("health check: {}", l.rsplit("store; ").next().unwrap_or(l));
    }
    let http = f.stack().http_name();
    // The health check's proof is under the prefix, where the roles may write.
    f.s3()
        .head_object()
        .bucket(&f.stack().images.bucket)
        .key(format!(
            "{}/images/_health/{http}.json",
            f.stack().images.prefix
        ))
        .send()
        .await
        .unwrap();
    let verified = f.run_ok(&["verify"]);
    assert_eq!(
        verified.matches(":live (version 1) healthy in").count(),
        2,
        "{verified}"
    );

    // The next HTTP version is broken as deployed: it writes to a bucket that does not exist.
    testkit::set_function_environment(&f.endpoint, &http, &[("IMAGE_BUCKET", "no-such-bucket")]);
    testkit::zips::write_function_zip(&f.artifacts, "image-http", "v2");
    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains("version 2 failed its health check, so no traffic moved to it: store:"),
        "{said}"
    );
    assert!(said.contains("NoSuchBucket"), "{said}");
    assert_eq!(alias(&f, &http).await, ("1".to_owned(), Vec::new()));
    assert_eq!(
        versions(&f, &http).await,
        [1, 2],
        "the version was published, not served"
    );
    // `verify` checks `live` the same way (the broken environment applies to every version here).
    let v = f.cli(&["verify"]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(
        stdout(&v).contains("FAILED its health check: store:"),
        "{}",
        stdout(&v)
    );

    // Fixed: the next apply checks version 2 again and moves `live` to it.
    testkit::set_function_environment(&f.endpoint, &http, &[]);
    let fixed = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&fixed);
    assert!(
        stderr(&fixed).contains("alias.http: version 2 passed its health check"),
        "{}",
        stderr(&fixed)
    );
    assert_eq!(alias(&f, &http).await, ("2".to_owned(), Vec::new()));
    let verified = f.run_ok(&["verify"]);
    assert!(
        verified.contains(&format!("{http}:live (version 2) healthy in")),
        "{verified}"
    );
}

/// AWS never reuses a version number (Lambda developer guide,
/// configuration-versions.html), and the launcher numbers versions so too
/// (moto alone repeats a deleted one's number): five code changes of a
/// canary stack with pruning at `keep_versions: 3` each put `live` on a new,
/// higher version; `rollback` moves each function back one kept version, the
/// plan shows the alias behind the code, and the next apply moves it forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_code_changes_pruned_at_three_each_go_live_and_roll_back_one() {
    let f = Fixture::new("t-cycle-").await;
    f.append_yaml(
        "deploy: { strategy: canary, percent: 10, interval_seconds: 1, keep_versions: 3 }",
    );
    tokio::task::block_in_place(|| f.run_ok(&["apply", "--yes", "--approve-broadening"]));
    let s = f.stack();
    let functions = [("http", s.http_name()), ("worker", s.worker_name())];
    let live = |name: String| {
        let f = &f;
        async move { alias(f, &name).await.0.parse::<u64>().unwrap() }
    };
    let mut last = [live(s.http_name()).await, live(s.worker_name()).await];
    for n in 2..=6 {
        let tag = format!("v{n}");
        testkit::zips::write_function_zip(&f.artifacts, "image-http", &tag);
        testkit::zips::write_function_zip(&f.artifacts, "image-worker", &tag);
        tokio::task::block_in_place(|| f.run_ok(&["apply", "--yes", "--approve-broadening"]));
        for (i, (_, name)) in functions.iter().enumerate() {
            let now = live(name.clone()).await;
            let kept = versions(&f, name).await;
            assert!(
                now > last[i],
                "{name} change {n}: live {now} after {}",
                last[i]
            );
            assert_eq!(
                kept.last(),
                Some(&now),
                "{name}: live is the newest {kept:?}"
            );
            assert!(kept.len() <= 3, "{name}: pruned to three {kept:?}");
            let mut distinct = kept.clone();
            distinct.dedup();
            assert_eq!(distinct, kept, "{name}: no number twice");
            assert!(alias(&f, name).await.1.is_empty(), "{name}: shift finished");
            last[i] = now;
        }
    }
    for (what, name) in &functions {
        let kept = versions(&f, name).await;
        let before = live(name.clone()).await;
        let text = tokio::task::block_in_place(|| f.run_ok(&["rollback", what]));
        let after = live(name.clone()).await;
        assert_eq!(
            after,
            kept[kept.len() - 2],
            "{what}: one version back\n{text}"
        );
        assert!(after < before);
    }
    let plan = f.plan().await;
    for address in [
        provisioner::declare::HTTP_ALIAS,
        provisioner::declare::WORKER_ALIAS,
    ] {
        assert!(
            plan.change(address).unwrap().action.mutates(),
            "{address} is behind the code"
        );
    }
    tokio::task::block_in_place(|| f.run_ok(&["apply", "--yes", "--approve-broadening"]));
    for (i, (_, name)) in functions.iter().enumerate() {
        assert_eq!(live(name.clone()).await, last[i], "{name}: forward again");
    }
    assert!(!f.plan().await.has_changes());
}
