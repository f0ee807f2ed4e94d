//! Where `POST /images` puts a prompt: the stack's prompts queue, behind a
//! trait ([`PromptQueue`]) so the submit is tested without AWS.

use async_trait::async_trait;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::error::GenerateError;

#[async_trait]
pub trait PromptQueue: Send + Sync {
    /// Sends one message; its id (what the worker names the image by).
    async fn send(&self, body: &str) -> Result<String, GenerateError>;
}

/// The prompts queue (its URL from `QUEUE_ARN`).
pub struct SqsPrompts {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsPrompts {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        SqsPrompts {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl PromptQueue for SqsPrompts {
    async fn send(&self, body: &str) -> Result<String, GenerateError> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                GenerateError::Queue(format!("sqs:SendMessage: {}", DisplayErrorContext(&e)))
            })?;
        out.message_id
            .ok_or_else(|| GenerateError::Queue("sqs:SendMessage answered no message id".into()))
    }
}
