//! Changes made outside the provisioner are shown and corrected (trigger,
//! stage, a grant added by hand); a same-named foreign role is refused
//! untouched until adopted.

use super::*;

#[tokio::test]
async fn trigger_drift_is_shown_and_corrected() {
    let f = Fixture::new("t-esm-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let lambda = f.lambda();
    let worker = f.stack().worker_name();
    let uuid = lambda
        .list_event_source_mappings()
        .function_name(format!("{worker}:live"))
        .send()
        .await
        .unwrap()
        .event_source_mappings()[0]
        .uuid()
        .unwrap()
        .to_owned();
    lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .batch_size(3)
        .send()
        .await
        .unwrap();
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (
            declare::TRIGGER,
            Action::Update,
            vec!["batch_size".to_owned()]
        )
    );
    let text = f.run_ok(&["plan"]);
    assert!(text.contains("~ batch_size: 3 -> 10"), "{text}");
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let m = lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .unwrap();
    assert_eq!(m.batch_size(), Some(10), "corrected in place, same mapping");
    assert!(!f.plan().await.has_changes());
}

/// The `$default` stage changed by hand is put back in place with
/// UpdateStage (served by the moto launcher): same stage, same creation date.
#[tokio::test]
async fn stage_drift_is_corrected_in_place() {
    let f = Fixture::new("t-stage-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let api_id = f.live_attr(declare::API, "id").await;
    let apigw = f.apigw();
    let stage = |apigw: aws_sdk_apigatewayv2::Client, api_id: String| async move {
        apigw
            .get_stage()
            .api_id(api_id)
            .stage_name("$default")
            .send()
            .await
            .unwrap()
    };
    let created = stage(apigw.clone(), api_id.clone())
        .await
        .created_date()
        .cloned();
    apigw
        .update_stage()
        .api_id(&api_id)
        .stage_name("$default")
        .auto_deploy(false)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stage(apigw.clone(), api_id.clone()).await.auto_deploy(),
        Some(false)
    );
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (
            declare::API,
            Action::Update,
            vec!["stage.auto_deploy".to_owned()]
        )
    );
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let after = stage(apigw, api_id).await;
    assert_eq!(after.auto_deploy(), Some(true));
    assert_eq!(
        after.created_date().cloned(),
        created,
        "updated in place, not recreated"
    );
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn a_foreign_role_with_the_stacks_name_is_refused_untouched_and_adoptable() {
    let f = Fixture::new("t-role-").await;
    let s = f.stack();
    let foreign_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    f.iam()
        .create_role()
        .role_name(s.worker_name())
        .assume_role_policy_document(foreign_trust)
        .send()
        .await
        .unwrap();

    let out = f.cli(&["apply", "--yes", "--approve-broadening"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!(
            "iam-role {:?} (role.worker) exists but is not owned",
            s.worker_name()
        )),
        "{}",
        stdout(&out)
    );
    let got = f
        .iam()
        .get_role()
        .role_name(s.worker_name())
        .send()
        .await
        .unwrap();
    assert!(
        parse_document(got.role().unwrap().assume_role_policy_document().unwrap())
            .to_string()
            .contains("ec2.amazonaws.com"),
        "untouched"
    );
    assert!(f.queues().await.is_empty(), "nothing else was created");

    let out = f.cli(&["apply", "--yes", "--approve-broadening", "--adopt"]);
    assert_ok(&out);
    let got = f
        .iam()
        .get_role()
        .role_name(s.worker_name())
        .send()
        .await
        .unwrap();
    let trust = parse_document(got.role().unwrap().assume_role_policy_document().unwrap());
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        json!(["lambda.amazonaws.com"])
    );
    assert!(!f.plan().await.has_changes());
}

#[tokio::test]
async fn a_grant_added_by_hand_is_shown_and_removed() {
    let f = Fixture::new("t-extra-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let role = f.stack().http_name();
    f.iam()
        .put_role_policy()
        .role_name(&role)
        .policy_name("debug-everything")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let admin = f
        .iam()
        .create_policy()
        .policy_name(format!("{}-admin", f.name))
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    f.iam()
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(admin.policy().unwrap().arn().unwrap())
        .send()
        .await
        .unwrap();
    let (address, _, fields) = f.only_change().await;
    assert_eq!(address, declare::HTTP_ROLE);
    assert_eq!(fields, ["managed_policies", "other_inline_policies"]);
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let inline = f
        .iam()
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert_eq!(inline.policy_names(), [POLICY_NAME]);
    assert!(!f.plan().await.has_changes());
}
