//! Queues in the emulator for tests that play the SQS trigger.

use aws_sdk_sqs::types::QueueAttributeName;

use crate::moto::{moto_endpoint, sdk_config, unique};

/// A queue with its dead-letter queue, in eu-west-1.
pub struct QueueWithDlq {
    pub sqs: aws_sdk_sqs::Client,
    pub name: String,
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

async fn arn_of(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("QueueArn")
}

/// A new queue named `prefix` + a unique suffix whose messages move to
/// `{name}-dlq` after `max_receive_count` receives.
pub async fn queue_with_dlq(
    prefix: &str,
    max_receive_count: u32,
    visibility_timeout_seconds: u32,
) -> QueueWithDlq {
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(moto_endpoint(), "eu-west-1"));
    let name = unique(prefix);
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("CreateQueue (DLQ)")
        .queue_url
        .expect("DLQ URL");
    let dlq_arn = arn_of(&sqs, &dlq_url).await;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive_count,
    });
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_seconds.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("queue URL");
    let arn = arn_of(&sqs, &url).await;
    QueueWithDlq {
        sqs,
        name,
        url,
        arn,
        dlq_url,
        dlq_arn,
    }
}

/// Messages in a queue, visible or in flight.
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|k| attrs.get(k).and_then(|v| v.parse::<usize>().ok()))
    .sum()
}

/// One message taken off a dead-letter queue: its body, message id and
/// string message attributes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeadLetter {
    pub body: String,
    pub message_id: String,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// Every message of `url` (received until none is left, each hidden for 10
/// minutes so none is read twice), with its message attributes; sorted.
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<DeadLetter> {
    let mut got = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .visibility_timeout(600)
            .send()
            .await
            .expect("ReceiveMessage");
        if out.messages().is_empty() {
            break;
        }
        for m in out.messages() {
            got.push(DeadLetter {
                body: m.body().unwrap_or_default().to_owned(),
                message_id: m.message_id().unwrap_or_default().to_owned(),
                attributes: m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned())))
                    .collect(),
            });
        }
    }
    got.sort();
    got
}

/// Sends each body as one message.
pub async fn send_all(sqs: &aws_sdk_sqs::Client, url: &str, bodies: &[&str]) {
    for body in bodies {
        sqs.send_message()
            .queue_url(url)
            .message_body(*body)
            .send()
            .await
            .expect("SendMessage");
    }
}
