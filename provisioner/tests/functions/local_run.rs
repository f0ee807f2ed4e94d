//! `provisioner local` and the emulator's own mapping: paused while the
//! local trigger runs, restored after.

use super::*;

/// `provisioner local` pauses the emulator's own event source mapping (moto
/// receives every sent message for it, which counts toward maxReceiveCount)
/// and enables it again on exit: the plan shows exactly that while paused and
/// nothing after.
#[tokio::test]
async fn the_local_run_pauses_the_emulators_mapping_and_restores_it() {
    use aws_sdk_sqs::types::MessageSystemAttributeName as Attr;
    use provisioner::local::trigger::{pause_emulator_mappings, resume_emulator_mappings};
    let f = Fixture::new("t-local-esm-").await;
    f.run_ok(&["apply", "--yes", "--approve-broadening"]);
    let stack = f.stack();
    let (lambda, sqs) = (f.lambda(), f.sqs());
    let url = f.queue_url(&stack.queue_name()).await;
    let arn = f
        .queue_attr(
            &stack.queue_name(),
            aws_sdk_sqs::types::QueueAttributeName::QueueArn,
        )
        .await;
    let receive_count = |body: &'static str| {
        let (sqs, url) = (sqs.clone(), url.clone());
        async move {
            sqs.send_message()
                .queue_url(&url)
                .message_body(body)
                .send()
                .await
                .unwrap();
            let got = sqs
                .receive_message()
                .queue_url(&url)
                .message_system_attribute_names(Attr::ApproximateReceiveCount)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let m = &got.messages()[0];
            assert_eq!(m.body(), Some(body));
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            m.attributes().unwrap()[&Attr::ApproximateReceiveCount].clone()
        }
    };
    // Enabled: moto already received the message once when it was sent.
    assert_eq!(receive_count("before").await, "2");
    let paused = pause_emulator_mappings(&lambda, &stack.worker_name(), &arn)
        .await
        .unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(
        receive_count("paused").await,
        "1",
        "only our receive counts"
    );
    let (address, action, fields) = f.only_change().await;
    assert_eq!(
        (address.as_str(), action, fields),
        (declare::TRIGGER, Action::Update, vec!["enabled".to_owned()])
    );
    resume_emulator_mappings(&lambda, &paused).await.unwrap();
    assert!(changing(&f.plan().await).is_empty());
    // Pausing what is already paused changes nothing and is not resumed twice.
    let again = pause_emulator_mappings(&lambda, &stack.worker_name(), &arn)
        .await
        .unwrap();
    assert_eq!(
        pause_emulator_mappings(&lambda, &stack.worker_name(), &arn)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    resume_emulator_mappings(&lambda, &again).await.unwrap();
}
