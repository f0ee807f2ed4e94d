//! `couch-client`: the library behind the binary.
//!
//! - [`prompts`]: prompts read one per line, checked by the functions' own rule;
//! - [`send`]: one prompt with `SendMessage`, many with `SendMessageBatch`;
//! - [`wait`]: polling S3 for the image the worker writes, and downloading it;
//! - [`http`]: the synchronous path, a POST to the HTTP API;
//! - [`outputs`]: the stack's outputs (`--stack`), for defaults and the model's prompt rule.

pub mod http;
pub mod outputs;
pub mod prompts;
pub mod send;
pub mod wait;

pub use couch_contract::image_key;

/// The region in an SQS queue URL (`https://sqs.{region}.amazonaws.com/...`),
/// so the old client's `SQS_QUEUE_URL` alone is enough.
pub fn region_of_queue_url(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    match (parts.next(), parts.next()) {
        (Some("sqs"), Some(region)) if region.contains('-') => Some(region.to_owned()),
        // Legacy form: {region}.queue.amazonaws.com
        (Some(region), Some("queue")) if region.contains('-') => Some(region.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_queue_url() {
        assert_eq!(
            region_of_queue_url("https://sqs.eu-west-1.amazonaws.com/123/q").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_queue_url("https://eu-north-1.queue.amazonaws.com/123/q").as_deref(),
            Some("eu-north-1")
        );
        assert_eq!(region_of_queue_url("http://127.0.0.1:5000/123/q"), None);
    }
}
