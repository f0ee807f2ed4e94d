//! The image model: a trait, and its Bedrock implementation.

use async_trait::async_trait;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::error::SdkError;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::error::GenerateError;
use crate::prompt::Prompt;
use crate::titan;

/// Generates one PNG for a prompt and seed.
#[async_trait]
pub trait ImageModel: Send + Sync {
    fn model_id(&self) -> &str;
    async fn generate(&self, prompt: &Prompt, seed: u32) -> Result<Vec<u8>, GenerateError>;
}

/// Amazon Bedrock `InvokeModel` with the Titan request shape.
pub struct BedrockModel {
    client: aws_sdk_bedrockruntime::Client,
    model_id: String,
}

impl BedrockModel {
    pub fn new(client: aws_sdk_bedrockruntime::Client, model_id: impl Into<String>) -> Self {
        BedrockModel {
            client,
            model_id: model_id.into(),
        }
    }
}

/// Classifies a Bedrock error: content filter, throttling, or a model failure.
pub fn classify(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> GenerateError {
    let msg = message.unwrap_or("(no message)").to_owned();
    let text = format!("{}: {msg}", code.unwrap_or("Error"));
    match code {
        Some(
            "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException",
        ) => GenerateError::Throttled(text),
        Some("ValidationException")
            if msg.to_ascii_lowercase().contains("content filter")
                || msg.to_ascii_lowercase().contains("blocked by") =>
        {
            GenerateError::ContentFiltered(msg)
        }
        _ if status == Some(429) => GenerateError::Throttled(text),
        _ => GenerateError::Model(text),
    }
}

fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> GenerateError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(e) => classify(
            e.err().code(),
            e.err().message(),
            Some(e.raw().status().as_u16()),
        ),
        _ => GenerateError::Model(DisplayErrorContext(&err).to_string()),
    }
}

#[async_trait]
impl ImageModel for BedrockModel {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn generate(&self, prompt: &Prompt, seed: u32) -> Result<Vec<u8>, GenerateError> {
        let body = serde_json::to_vec(&titan::Request::text_to_image(prompt, seed))
            .map_err(|e| GenerateError::Model(format!("cannot encode the request: {e}")))?;
        let out = self
            .client
            .invoke_model()
            .model_id(&self.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body))
            .send()
            .await
            .map_err(from_sdk)?;
        titan::decode_response(out.body().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let filtered = classify(
            Some("ValidationException"),
            Some("This request has been blocked by our content filters."),
            Some(400),
        );
        assert!(matches!(filtered, GenerateError::ContentFiltered(_)));
        let invalid = classify(
            Some("ValidationException"),
            Some("Malformed input request"),
            Some(400),
        );
        assert!(matches!(invalid, GenerateError::Model(_)));
        assert!(matches!(
            classify(Some("ThrottlingException"), None, Some(429)),
            GenerateError::Throttled(_)
        ));
        assert!(matches!(
            classify(Some("ServiceQuotaExceededException"), None, Some(400)),
            GenerateError::Throttled(_)
        ));
        assert!(matches!(
            classify(None, None, Some(429)),
            GenerateError::Throttled(_)
        ));
        assert!(matches!(
            classify(Some("ModelTimeoutException"), None, Some(408)),
            GenerateError::Model(_)
        ));
        assert!(matches!(
            classify(Some("AccessDeniedException"), None, Some(403)),
            GenerateError::Model(_)
        ));
    }
}
