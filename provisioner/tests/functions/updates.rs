//! Changes to the functions: new code is exactly one code update (a rebuilt
//! identical zip is none), one setting one field; missing zips stop plan and
//! apply before any AWS call.

use super::*;

#[tokio::test]
async fn code_changes_are_exactly_one_update_and_rebuilt_identical_zips_nothing() {
    let f = Fixture::new("t-code-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);

    // Rebuilt from unchanged source: the same bytes, a new file.
    testkit::zips::write_function_zips(&f.artifacts, "v1");
    let out = f.cli(&["plan", "--detailed-exitcode"]);
    assert_ok(&out);

    // A different worker zip: one code update, shown as two short hashes.
    let before = provisioner::artifacts::Artifacts::load(&f.artifacts);
    testkit::zips::write_function_zip(&f.artifacts, "image-worker", "v2");
    let after = provisioner::artifacts::Artifacts::load(&f.artifacts);
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (
            declare::WORKER,
            Action::Update,
            vec!["code_sha256".to_owned()]
        )
    );
    let short = |a: &provisioner::artifacts::Artifact| {
        provisioner::artifacts::short(a.code_sha256.as_ref().unwrap())
    };
    let text = f.run_ok(&["plan"]);
    assert!(
        text.contains(&format!(
            "~ code_sha256: {:?} -> {:?}",
            short(&before.worker),
            short(&after.worker)
        )),
        "{text}"
    );
    assert!(!text.contains("PK\u{5}\u{6}"), "never zip bytes: {text}");
    // The alias moves to the version the update publishes.
    assert!(
        text.contains("alias.worker") && text.contains("function_version"),
        "{text}"
    );
    let serving = |f: &Fixture| {
        let (lambda, name) = (f.lambda(), f.stack().worker_name());
        async move {
            lambda
                .get_alias()
                .function_name(name)
                .name("live")
                .send()
                .await
                .unwrap()
                .function_version()
                .unwrap()
                .to_owned()
        }
    };
    let old_version = serving(&f).await;
    let text = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(text.contains("0 added, 2 changed, 0 destroyed"), "{text}");
    let live = worker_configuration(&f).await;
    assert_eq!(live.code_sha256(), after.worker.code_sha256.as_deref().ok());
    let new_version = serving(&f).await;
    assert_ne!(new_version, old_version);
    let published = f
        .lambda()
        .get_function_configuration()
        .function_name(f.stack().worker_name())
        .qualifier(&new_version)
        .send()
        .await
        .unwrap();
    assert_eq!(
        published.code_sha256(),
        after.worker.code_sha256.as_deref().ok(),
        "the alias serves the new code"
    );
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn worker_memory_is_exactly_one_field_update() {
    let f = Fixture::new("t-mem-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    f.append_yaml("worker: { memory_mb: 1024 }");
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (
            declare::WORKER,
            Action::Update,
            vec!["memory_size".to_owned()]
        )
    );
    // The function and its alias (moved to the version published with it).
    let text = f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    assert!(text.contains("0 added, 2 changed, 0 destroyed"), "{text}");
    let live = worker_configuration(&f).await;
    assert_eq!(live.memory_size(), Some(1024));
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn missing_zips_stop_plan_and_apply_before_any_call_but_not_validate_or_offline() {
    let f = Fixture::new("t-nozip-").await;
    std::fs::remove_dir_all(&f.artifacts).unwrap();
    for verb in [&["plan"][..], &["apply", "--yes", "--approve-broadening"]] {
        // A closed port: any AWS call would fail differently.
        let out = f
            .command(verb)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("image-worker/bootstrap.zip does not exist"),
            "{err}"
        );
        assert!(err.contains("run `scripts/build-functions`"), "{err}");
        assert!(err.contains("nothing was read or changed"), "{err}");
    }
    let out = f.cli(&["plan", "--offline"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("(not built: run scripts/build-functions)"),
        "{}",
        stdout(&out)
    );
    let out = f.cli(&["validate"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("code image-worker: not built"),
        "{}",
        stdout(&out)
    );
}
