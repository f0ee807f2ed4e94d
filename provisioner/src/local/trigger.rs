//! The SQS trigger, played locally: what Lambda's event source mapping does
//! for the worker, with the batch size and partial-failure rules the stack
//! declares. Long-poll the queue, invoke the worker with a real SQS event of
//! up to `batch_size` records (system and message attributes as Lambda
//! passes them), delete exactly the records the worker did not report in
//! `batchItemFailures`, and leave the failed ones: they come back after the
//! visibility timeout, or after the delay the worker set on them with
//! `ChangeMessageVisibility` (SQS itself keeps it), and, after the redrive
//! policy's `maxReceiveCount` receives, SQS moves them to the dead-letter
//! queue. A failed invocation fails the whole batch, as on AWS. At most the
//! mapping's maximum concurrency of invocations run at once ([`Trigger::run`]).
//!
//! Differences from AWS (docs/guide/try-it-locally.md): Lambda's pollers scale
//! up and down with the queue's depth (AWS documents five at first, then
//! up to the maximum concurrency); here the maximum polls from the start.
//! Lambda backs off by itself when invocations are throttled; here an
//! invocation is never throttled.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{Value, json};

/// Invokes the worker with an event; returns its answer.
#[async_trait]
pub trait Invoke: Send + Sync {
    async fn invoke(&self, event: Value) -> Result<Value, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// An SQS or Lambda call failed (the text names the call and the AWS error).
    #[error("{0}")]
    Aws(String),
}

/// Where the trigger reads and how much at a time.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    /// Records per invocation (SQS returns at most 10 per receive).
    pub batch_size: u32,
    /// Long-poll wait per receive, 0..=20 s.
    pub wait_seconds: i32,
    /// The worker's timeout: an invocation that takes longer fails the batch.
    pub timeout: Duration,
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub received: usize,
    pub deleted: BTreeSet<String>,
    pub failed: BTreeSet<String>,
    /// Why the whole batch failed (the invocation itself), if it did.
    pub invoke_error: Option<String>,
}

impl Batch {
    /// The one line logged per batch.
    pub fn line(&self) -> String {
        match &self.invoke_error {
            Some(e) => format!(
                "batch of {}: the invocation failed ({e}); all {} will be redelivered",
                self.received, self.received
            ),
            None => format!(
                "batch of {}: {} done and deleted, {} failed (left for redelivery, then the dead-letter queue)",
                self.received,
                self.deleted.len(),
                self.failed.len()
            ),
        }
    }
}

/// A failed SQS or Lambda call, rendered like every other AWS error here.
fn call_error<E, R>(
    what: &str,
    e: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> TriggerError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    TriggerError::Aws(crate::aws::aws_error(what, e).to_string())
}

impl Trigger {
    /// The SQS event Lambda would send for `messages`.
    pub fn event(&self, messages: &[Message]) -> Value {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attrs: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_owned(), Value::from(v.as_str())))
                            .collect()
                    })
                    .unwrap_or_default();
                // Lambda's shape of a message attribute.
                let message_attrs: serde_json::Map<String, Value> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    json!({
                                        "stringValue": v.string_value(),
                                        "stringListValues": [],
                                        "binaryListValues": [],
                                        "dataType": v.data_type(),
                                    }),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attrs,
                    "messageAttributes": message_attrs,
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.region,
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// One receive, one invocation, one delete of what succeeded.
    pub async fn poll_once(
        &self,
        sqs: &aws_sdk_sqs::Client,
        worker: &dyn Invoke,
    ) -> Result<Batch, TriggerError> {
        let received = sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(self.batch_size.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(self.wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| call_error("sqs:ReceiveMessage", e))?;
        let messages = received.messages();
        let mut batch = Batch {
            received: messages.len(),
            ..Batch::default()
        };
        if messages.is_empty() {
            return Ok(batch);
        }
        let ids: BTreeSet<String> = messages
            .iter()
            .filter_map(|m| m.message_id().map(str::to_owned))
            .collect();
        let answer =
            match tokio::time::timeout(self.timeout, worker.invoke(self.event(messages))).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("timed out after {} s", self.timeout.as_secs())),
            };
        match answer {
            Err(e) => {
                batch.invoke_error = Some(e);
                batch.failed = ids;
                return Ok(batch);
            }
            Ok(answer) => {
                batch.failed = answer["batchItemFailures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                    .filter(|id| ids.contains(id))
                    .collect();
            }
        }
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| m.message_id().is_some_and(|id| !batch.failed.contains(id)))
            .collect();
        if !done.is_empty() {
            self.delete_done(sqs, &done, &mut batch).await?;
        }
        Ok(batch)
    }

    /// Deletes the messages the worker succeeded with, as Lambda's poller
    /// does: each is `deleted` in the batch, or `failed` when SQS did not
    /// delete it (it comes back after its visibility timeout).
    async fn delete_done(
        &self,
        sqs: &aws_sdk_sqs::Client,
        done: &[&Message],
        batch: &mut Batch,
    ) -> Result<(), TriggerError> {
        let entries = done
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .map_err(|e| TriggerError::Aws(format!("sqs:DeleteMessageBatch: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| call_error("sqs:DeleteMessageBatch", e))?;
        let not_deleted: BTreeSet<usize> = out
            .failed()
            .iter()
            .filter_map(|f| f.id().parse().ok())
            .collect();
        for (i, m) in done.iter().enumerate() {
            if let Some(id) = m.message_id() {
                if not_deleted.contains(&i) {
                    batch.failed.insert(id.to_owned());
                } else {
                    batch.deleted.insert(id.to_owned());
                }
            }
        }
        Ok(())
    }
}

impl Trigger {
    /// Polls until dropped, `concurrency` pollers at a time (Lambda's maximum
    /// concurrency for the mapping), one line on stdout per non-empty batch.
    pub async fn run(&self, sqs: &aws_sdk_sqs::Client, worker: &dyn Invoke, concurrency: u32) {
        let pollers = (0..concurrency.max(1)).map(|_| async {
            loop {
                match self.poll_once(sqs, worker).await {
                    Ok(batch) if batch.received > 0 => println!("worker: {}", batch.line()),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "polling the queue failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        futures::future::join_all(pollers).await;
    }
}

/// The emulator's own event source mappings from `queue_arn` to `function`:
/// moto acts on them at every SendMessage (it receives the messages and tries
/// to run the function in Docker, which counts toward `maxReceiveCount`), so
/// they are disabled while the local trigger plays them. Returns the ids it
/// disabled, for [`resume_emulator_mappings`].
pub async fn pause_emulator_mappings(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    queue_arn: &str,
) -> Result<Vec<String>, TriggerError> {
    // The `live` alias's mappings, and any left on the unqualified function.
    let mut mappings = Vec::new();
    for name in [
        format!("{function}:{}", crate::aws::aliases::LIVE),
        function.to_owned(),
    ] {
        let mut pages = lambda
            .list_event_source_mappings()
            .function_name(name)
            .event_source_arn(queue_arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_error("lambda:ListEventSourceMappings", e))?;
            mappings.extend(page.event_source_mappings.unwrap_or_default());
        }
    }
    let mut paused = Vec::new();
    for m in &mappings {
        let Some(uuid) = m.uuid() else { continue };
        if m.state() == Some("Disabled") {
            continue;
        }
        lambda
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(false)
            .send()
            .await
            .map_err(|e| call_error("lambda:UpdateEventSourceMapping", e))?;
        paused.push(uuid.to_owned());
    }
    Ok(paused)
}

/// Enables again what [`pause_emulator_mappings`] disabled, so the deployed
/// state matches the stack again.
pub async fn resume_emulator_mappings(
    lambda: &aws_sdk_lambda::Client,
    paused: &[String],
) -> Result<(), TriggerError> {
    for uuid in paused {
        lambda
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(true)
            .send()
            .await
            .map_err(|e| call_error("lambda:UpdateEventSourceMapping", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_has_lambdas_sqs_shape() {
        let t = Trigger {
            queue_url: "u".into(),
            queue_arn: "arn:aws:sqs:eu-west-1:1:q".into(),
            region: "eu-west-1".into(),
            batch_size: 10,
            wait_seconds: 0,
            timeout: Duration::from_secs(1),
        };
        let m = Message::builder()
            .message_id("m1")
            .receipt_handle("r1")
            .body("a café")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build();
        let e = t.event(&[m]);
        let r = &e["Records"][0];
        assert_eq!(r["messageId"], "m1");
        assert_eq!(r["body"], "a café");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:eu-west-1:1:q");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(r["messageAttributes"], json!({}));
        // The worker's own event type parses it.
        let parsed: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.records[0].message_id.as_deref(), Some("m1"));
        // Message attributes in Lambda's shape: a redriven prompt's request id.
        let m = Message::builder()
            .message_id("m2")
            .body("b")
            .message_attributes(
                "couch-request-id",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("6a96454d-ef25-4788-a79c-000000000001")
                    .build()
                    .unwrap(),
            )
            .build();
        let e = t.event(&[m]);
        let parsed: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(e).unwrap();
        assert_eq!(
            parsed.records[0].message_attributes["couch-request-id"]
                .string_value
                .as_deref(),
            Some("6a96454d-ef25-4788-a79c-000000000001")
        );
    }
}
