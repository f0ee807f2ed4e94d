//! Destroy removes the function side, dependents first.

use super::*;

#[tokio::test]
async fn destroy_removes_functions_api_roles_and_logs_dependents_first() {
    let f = Fixture::new("t-fndestroy-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let other = Fixture::new("t-fnother-").await;
    other.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let s = f.stack();

    let text = f.run_ok(&["destroy", "--yes"]);
    let at = |address: &str| {
        text.find(&format!("{address}: Destruction complete"))
            .unwrap_or_else(|| panic!("{address} not destroyed:\n{text}"))
    };
    assert!(at(declare::TRIGGER) < at(declare::WORKER));
    assert!(at(declare::API_PERMISSION) < at(declare::API));
    assert!(at(declare::API) < at(declare::HTTP));
    assert!(at(declare::WORKER) < at(declare::WORKER_ROLE));
    assert!(at(declare::WORKER) < at(declare::WORKER_LOGS));
    assert!(at(declare::HTTP) < at(declare::HTTP_ROLE));

    let lambda = f.lambda();
    for name in [s.worker_name(), s.http_name()] {
        assert!(
            lambda
                .get_function()
                .function_name(&name)
                .send()
                .await
                .is_err()
        );
        assert!(f.iam().get_role().role_name(&name).send().await.is_err());
    }
    let groups = f
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{}", f.name))
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty());
    let apis = f.apigw().get_apis().send().await.unwrap();
    assert!(
        !apis
            .items()
            .iter()
            .any(|a| a.name() == Some(s.api_name().as_str()))
    );
    // The other stack is intact.
    assert!(!other.plan().await.has_changes());
}
