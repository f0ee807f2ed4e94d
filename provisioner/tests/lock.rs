//! The stack lock (`provisioner::lock`) against moto: two applies started
//! together end with exactly one of everything; a second writer waits with a
//! progress line, or fails at once with `--lock-timeout 0` having changed
//! nothing; a SIGKILLed holder's lock lapses and the next run proceeds;
//! `unlock` refuses a live lock and removes a stale one; `plan` says when a
//! lock is held.

mod common;

use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// `apply --yes` started and read until its first change starts: it holds
/// the lock then. The rest of its output, to drain.
fn apply_until_it_changes_something(
    f: &Fixture,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    let mut child = f
        .command(&["apply", "--yes", "--approve-broadening"])
        .stdout(Stdio::piped())
        // Small (errors only): read by the callers that want it.
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("Creating...") {
            break;
        }
    }
    (child, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_started_together_end_with_one_of_everything() {
    let f = Fixture::new("t-lock2-").await;
    let (a, b) = tokio::task::block_in_place(|| {
        let a = f
            .command(&["apply", "--yes", "--approve-broadening"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let b = f
            .command(&["apply", "--yes", "--approve-broadening"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
    });
    assert_ok(&a);
    assert_ok(&b);
    let said = format!("{}{}{}{}", stdout(&a), stderr(&a), stdout(&b), stderr(&b));
    assert!(
        said.contains("waiting for the stack lock held by"),
        "{said}"
    );
    // One created everything; the other found nothing to do.
    assert!(said.contains("Nothing to do"), "{said}");
    assert_eq!(f.inventory().await, DEPLOYED);
    assert!(!f.plan().await.has_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_stops_a_second_writer_at_once_with_lock_timeout_0_and_plan_says_so() {
    let f = Fixture::new("t-lock0-").await;
    let session = f.session();
    let lock = provisioner::lock::acquire(&session.aws, &session.stack, "apply", Duration::ZERO)
        .await
        .expect("the lock is free");
    let out = tokio::task::block_in_place(|| {
        f.cli(&[
            "apply",
            "--yes",
            "--approve-broadening",
            "--lock-timeout",
            "0",
        ])
    });
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("the stack lock is held by arn:aws:sts::123456789012:")
            && err.contains("(apply, pid "),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        f.inventory().await,
        Inventory::default(),
        "nothing was created"
    );
    let out = tokio::task::block_in_place(|| f.cli(&["destroy", "--yes", "--lock-timeout", "0"]));
    assert_eq!(out.status.code(), Some(1), "destroy waits for the lock too");
    // plan never takes the lock, but says it is held.
    let out = tokio::task::block_in_place(|| f.cli(&["plan"]));
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Warning: the stack lock is held by"),
        "{}",
        stdout(&out)
    );
    lock.release().await;
    assert!(
        provisioner::lock::read(&session.aws, &session.stack)
            .await
            .unwrap()
            .is_none(),
        "released"
    );
    f.run_ok(&[
        "apply",
        "--yes",
        "--approve-broadening",
        "--lock-timeout",
        "0",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_lock_lapses_and_the_next_apply_waits_then_proceeds() {
    let f = Fixture::new("t-lockkill-").await;
    // Kill an apply once it holds the lock and has started changing things.
    tokio::task::block_in_place(|| {
        let (mut child, _rest) = apply_until_it_changes_something(&f);
        child.kill().unwrap(); // SIGKILL: no release
        child.wait().unwrap();
    });
    let session = f.session();
    let left = provisioner::lock::read(&session.aws, &session.stack)
        .await
        .unwrap()
        .expect("the killed run's lock is left behind");
    assert_eq!(left.holder.verb, "apply");
    assert_eq!(left.holder.lease_seconds, LOCK_LEASE_SECONDS);

    let started = Instant::now();
    let out = tokio::task::block_in_place(|| f.cli(&["apply", "--yes", "--approve-broadening"]));
    assert_ok(&out);
    let err = stderr(&out);
    assert!(err.contains("waiting for the stack lock held by"), "{err}");
    assert!(
        err.contains("is stale") && err.contains("taking it over"),
        "{err}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(LOCK_LEASE_SECONDS - 1),
        "it waited for the lease ({:?})",
        started.elapsed()
    );
    assert_eq!(f.inventory().await, DEPLOYED);
    assert!(
        provisioner::lock::read(&session.aws, &session.stack)
            .await
            .unwrap()
            .is_none(),
        "the finished apply released its lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_refuses_a_live_lock_and_removes_a_stale_one() {
    let f = Fixture::new("t-unlock-").await;
    let out = tokio::task::block_in_place(|| f.cli(&["unlock"]));
    assert_ok(&out);
    assert!(stdout(&out).contains("is not locked"), "{}", stdout(&out));

    // A live lock, held by a run of another process (lease renewed in the background).
    let session = f.session();
    let lock = provisioner::lock::acquire(&session.aws, &session.stack, "destroy", Duration::ZERO)
        .await
        .unwrap();
    let out = tokio::task::block_in_place(|| f.cli(&["unlock"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("its lease is live"),
        "{}",
        stderr(&out)
    );
    // --force removes it anyway.
    let out = tokio::task::block_in_place(|| f.cli(&["unlock", "--force"]));
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Removed the stack lock"),
        "{}",
        stdout(&out)
    );
    lock.release().await; // finds nothing of its own: no error

    // A stale lock (written by a run that died, lease long gone) is removed without --force.
    let stale = serde_json::json!({"stack": f.name, "verb": "apply", "who": "arn:aws:iam::123456789012:user/gone",
        "host": "h", "pid": 1, "started": 0, "lease_seconds": 1, "token": "dead"});
    let s3 = &session.aws.s3;
    s3.put_object()
        .bucket(&session.stack.images.bucket)
        .key(provisioner::lock::key(&session.stack))
        .body(stale.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let out = tokio::task::block_in_place(|| f.cli(&["unlock"]));
    assert_ok(&out);
    assert!(stdout(&out).contains("user/gone"), "{}", stdout(&out));
    assert!(
        provisioner::lock::read(&session.aws, &session.stack)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_releases_the_lock() {
    let f = Fixture::new("t-lockint-").await;
    tokio::task::block_in_place(|| {
        let (mut child, lines) = apply_until_it_changes_something(&f);
        let pid = i32::try_from(child.id()).unwrap();
        // SAFETY: signalling a child process this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        let drain = std::thread::spawn(move || for _ in lines {});
        let status = child.wait().unwrap();
        drain.join().unwrap();
        assert_eq!(status.code(), Some(130), "interrupted");
    });
    let session = f.session();
    assert!(
        provisioner::lock::read(&session.aws, &session.stack)
            .await
            .unwrap()
            .is_none(),
        "Ctrl-C released the stack lock"
    );
    // And the next apply converges at once, without waiting for a lease.
    let out = tokio::task::block_in_place(|| {
        f.cli(&[
            "apply",
            "--yes",
            "--approve-broadening",
            "--lock-timeout",
            "0",
        ])
    });
    assert_ok(&out);
    assert_eq!(f.inventory().await, DEPLOYED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_images_bucket_a_stack_can_still_be_destroyed() {
    let f = Fixture::new("t-locknob-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let session = f.session();
    // What apply leaves in the bucket: the functions' health-check proofs (no lock).
    let s3 = &session.aws.s3;
    let listed = s3
        .list_objects_v2()
        .bucket(&session.stack.images.bucket)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        assert!(key.contains("/images/_health/"), "{key}");
        s3.delete_object()
            .bucket(&session.stack.images.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    session
        .aws
        .s3
        .delete_bucket()
        .bucket(&session.stack.images.bucket)
        .send()
        .await
        .expect("no lock is left once the apply released it");
    let out = tokio::task::block_in_place(|| f.cli(&["destroy", "--yes"]));
    assert_ok(&out);
    assert!(
        stderr(&out)
            .contains("does not exist, so the stack lock cannot be taken; going on without it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(f.inventory().await, Inventory::default());
}

/// A holder whose lock another run took over stops at once (as on Ctrl-C):
/// it makes no further change, says why, and leaves the other run's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lock_was_taken_over_stops() {
    // Every call 150 ms late: the apply is still running when it next renews.
    let slow = testkit::proxy::start(testkit::moto_endpoint(), Duration::from_millis(150)).await;
    let f = Fixture::with_endpoint("t-locklost-", &slow).await;
    let session = f.session();
    let (child, lines) = tokio::task::block_in_place(|| apply_until_it_changes_something(&f));
    // Another run's lock, written over this one's (as a takeover would).
    let other = serde_json::json!({"stack": f.name, "verb": "apply", "who": "arn:aws:iam::123456789012:user/other",
        "host": "elsewhere", "pid": 7, "started": 0, "lease_seconds": 600, "token": "the-other-run"});
    session
        .aws
        .s3
        .put_object()
        .bucket(&session.stack.images.bucket)
        .key(provisioner::lock::key(&session.stack))
        .body(other.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let (status, said, err) = tokio::task::block_in_place(|| {
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let out = child.wait_with_output().unwrap();
        (
            out.status,
            rest.join("\n"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    });
    assert_eq!(status.code(), Some(1), "{said}\n{err}");
    assert!(
        err.contains("stopped: another run took over the stack lock"),
        "{err}"
    );
    assert!(
        !said.contains("Apply complete"),
        "it stopped before the end: {said}"
    );
    let left = provisioner::lock::read(&session.aws, &session.stack)
        .await
        .unwrap()
        .expect("the other run's lock stays");
    assert_eq!(left.holder.token, "the-other-run");
}
