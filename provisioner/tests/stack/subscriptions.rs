//! The alert e-mail: a changed address replaces the subscription, and
//! pending confirmations are neither duplicated nor fatal.

use super::*;

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
