//! What the stack owns and what it does not: drift by another client is
//! shown and corrected, a same-named foreign resource is refused until
//! adopted, `--name` makes a separate stack from the same file. Belongs
//! here: ownership tags, adoption, drift.

use super::*;

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
