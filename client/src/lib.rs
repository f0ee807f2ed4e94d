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

/// The endpoint a queue URL names when it is not AWS's (an emulator's,
/// `http://127.0.0.1:4566/000000000000/q`): its scheme, host and port. The
/// SDK sends to the Region's endpoint whatever the queue URL says, so the
/// old client's `docker run -e SQS_QUEUE_URL=...` against an emulator needs
/// this; an AWS queue URL (`*.amazonaws.com`, `*.amazonaws.com.cn`) names
/// none, and `AWS_ENDPOINT_URL` (the SDK's own setting) wins over it.
pub fn endpoint_of_queue_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_ascii_lowercase();
    let aws = [".amazonaws.com", ".amazonaws.com.cn"]
        .iter()
        .any(|d| host.ends_with(d));
    if aws || host.is_empty() || !matches!(scheme, "http" | "https") {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_queue_url_off_aws_names_an_endpoint() {
        assert_eq!(
            endpoint_of_queue_url("http://127.0.0.1:5000/123456789012/q").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            endpoint_of_queue_url("https://localhost:4566/000000000000/q").as_deref(),
            Some("https://localhost:4566")
        );
        for aws in [
            "https://sqs.eu-west-1.amazonaws.com/123/q",
            "https://eu-north-1.queue.amazonaws.com/123/q",
            "https://sqs.cn-north-1.amazonaws.com.cn/123/q",
            "https://SQS.EU-WEST-1.AMAZONAWS.COM/123/q",
        ] {
            assert_eq!(endpoint_of_queue_url(aws), None, "{aws}");
        }
        assert_eq!(endpoint_of_queue_url("ftp://example.com/q"), None);
        assert_eq!(endpoint_of_queue_url("not a url"), None);
    }

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
