//! The waits AWS needs (IAM propagation, `Pending` functions, updates in
//! progress), made to happen by a proxy that answers as AWS does.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_iam_propagation_pending_functions_and_updates_in_progress() {
    let aws_like = testkit::proxy::LambdaLikeAws::new(2, 2);
    let (intercept, rewrite) = aws_like.hooks();
    let endpoint =
        testkit::proxy::start_with(testkit::moto_endpoint(), Duration::ZERO, intercept, rewrite)
            .await;
    let f = Fixture::with_endpoint("t-waits-", &endpoint).await;
    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    let counts = &aws_like.counts;
    assert_eq!(counts.role_not_assumable.load(SeqCst), 2);
    // The engine's retry says what it waits out, on the function's
    // progress line.
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("function.")
            && l.contains(": Still creating... [")
            && l.ends_with("(InvalidParameterValueException, retrying)")),
        "{}",
        stdout(&out)
    );
    // Both new functions were Pending twice before the trigger, permission and
    // integration used them.
    assert_eq!(counts.pending.load(SeqCst), 4);
    assert!(!f.plan().await.has_changes());

    // Configuration, then code: each waits for the other, conflicts are retried.
    f.append_yaml("worker: { memory_mb: 1024 }");
    testkit::zips::write_function_zip(&f.artifacts, "image-worker", "v2");
    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_ok(&out);
    assert_eq!(
        counts.conflicts.load(SeqCst),
        2,
        "configuration and code each conflicted once"
    );
    assert!(counts.in_progress.load(SeqCst) >= 2);
    assert!(!f.plan().await.has_changes());
}
