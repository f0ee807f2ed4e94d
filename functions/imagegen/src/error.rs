//! Errors of generating and storing an image, classified by whose fault they are.

use crate::prompt::PromptError;

/// Who should act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input is wrong (bad prompt): do not retry.
    BadRequest,
    /// The model's content filter refused the prompt: do not retry.
    Refused,
    /// The model is throttling: retry later.
    Throttled,
    /// The model or S3 failed: retry may help; not the caller's fault.
    Upstream,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid prompt: {0}")]
    InvalidPrompt(#[from] PromptError),
    #[error("the model's content filter refused the prompt: {0}")]
    ContentFiltered(String),
    /// The model (or S3, with `SlowDown`) asks for fewer requests; the
    /// duration is the answer's `Retry-After`, when it has one.
    #[error("the model is throttling requests: {0}")]
    Throttled(String, Option<std::time::Duration>),
    #[error("the model failed: {0}")]
    Model(String),
    #[error("the model's answer is not usable: {0}")]
    BadModelResponse(String),
    #[error("storing the image failed: {0}")]
    Storage(String),
    #[error("queueing the prompt failed: {0}")]
    Queue(String),
}

impl GenerateError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            GenerateError::InvalidPrompt(_) => ErrorKind::BadRequest,
            GenerateError::ContentFiltered(_) => ErrorKind::Refused,
            GenerateError::Throttled(..) => ErrorKind::Throttled,
            GenerateError::Model(_)
            | GenerateError::BadModelResponse(_)
            | GenerateError::Storage(_)
            | GenerateError::Queue(_) => ErrorKind::Upstream,
        }
    }

    /// Whether trying the same request again could succeed.
    pub fn retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Throttled | ErrorKind::Upstream)
    }

    /// How long the answer asked to wait before the next request
    /// (`Retry-After`), for a throttling error that said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            GenerateError::Throttled(_, after) => *after,
            _ => None,
        }
    }
}
