//! The image model: the trait every model implements, and the Bedrock call
//! and error classification the families (`families/`) share. Which family
//! serves a model id is decided in `families/`; this module knows none of them.

use async_trait::async_trait;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::error::SdkError;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;

use couch_contract::model::PromptRule;

use crate::error::GenerateError;
use crate::prompt::Prompt;

/// Generates one PNG for a prompt and seed.
#[async_trait]
pub trait ImageModel: Send + Sync {
    fn model_id(&self) -> &str;
    /// The longest prompt this model accepts (callers check before calling).
    fn prompt_rule(&self) -> PromptRule;
    async fn generate(&self, prompt: &Prompt, seed: u32) -> Result<Vec<u8>, GenerateError>;
}

/// `InvokeModel` with a JSON body; the answer's body, or the classified error.
pub(crate) async fn invoke(
    client: &aws_sdk_bedrockruntime::Client,
    model_id: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, GenerateError> {
    let out = client
        .invoke_model()
        .model_id(model_id)
        .content_type("application/json")
        .accept("application/json")
        .body(Blob::new(body))
        .send()
        .await
        .map_err(from_sdk)?;
    Ok(out.body.into_inner())
}

/// Classifies a Bedrock error: content filter, throttling, or a model failure.
pub fn classify(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> GenerateError {
    classify_with(code, message, status, None)
}

/// [`classify`], with the answer's `Retry-After` (seconds) kept on a throttling error.
pub fn classify_with(
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    retry_after: Option<std::time::Duration>,
) -> GenerateError {
    let msg = message.unwrap_or("(no message)").to_owned();
    let text = format!("{}: {msg}", code.unwrap_or("Error"));
    match code {
        Some(
            "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException",
        ) => GenerateError::Throttled(text, retry_after),
        Some("ValidationException")
            if msg.to_ascii_lowercase().contains("content filter")
                || msg.to_ascii_lowercase().contains("blocked by") =>
        {
            GenerateError::ContentFiltered(msg)
        }
        _ if status == Some(429) => GenerateError::Throttled(text, retry_after),
        _ => GenerateError::Model(text),
    }
}

/// A `Retry-After` header in seconds (the HTTP-date form is not used by AWS
/// APIs and is ignored), at most an hour.
pub fn retry_after(header: Option<&str>) -> Option<std::time::Duration> {
    let secs: f64 = header?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| std::time::Duration::from_secs_f64(secs.min(3600.0)))
}

fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> GenerateError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(e) => classify_with(
            e.err().code(),
            e.err().message(),
            Some(e.raw().status().as_u16()),
            retry_after(e.raw().headers().get("retry-after")),
        ),
        _ => GenerateError::Model(DisplayErrorContext(&err).to_string()),
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
            GenerateError::Throttled(..)
        ));
        assert!(matches!(
            classify(Some("ServiceQuotaExceededException"), None, Some(400)),
            GenerateError::Throttled(..)
        ));
        assert!(matches!(
            classify(None, None, Some(429)),
            GenerateError::Throttled(..)
        ));
        assert!(matches!(
            classify(Some("ModelTimeoutException"), None, Some(408)),
            GenerateError::Model(_)
        ));
        let t = classify_with(
            Some("ThrottlingException"),
            None,
            Some(429),
            retry_after(Some("2")),
        );
        assert_eq!(t.retry_after(), Some(std::time::Duration::from_secs(2)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(Some("-1")), None);
        assert_eq!(
            retry_after(Some("99999")),
            Some(std::time::Duration::from_secs(3600))
        );
        assert!(matches!(
            classify(Some("ModelNotReadyException"), None, Some(429)),
            GenerateError::Throttled(..)
        ));
        assert!(matches!(
            classify(Some("AccessDeniedException"), None, Some(403)),
            GenerateError::Model(_)
        ));
    }
}
