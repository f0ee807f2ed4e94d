//! What stops a run before any change: a missing bucket, an invalid stack
//! file (with file and line), a terminal answer other than yes; and what
//! makes no AWS call at all (`plan --offline`, `validate`).

use super::*;

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
