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

/// The endpoint a queue URL names when it is an emulator's on this machine
/// or a private network (`http://127.0.0.1:4566/000000000000/q`): its
/// scheme, host and port. The SDK sends to the Region's endpoint whatever
/// the queue URL says, so the old client's `docker run -e SQS_QUEUE_URL=...`
/// against an emulator needs this. Any other host names none: signed
/// requests (the access key id, a session token, the prompt) go only to AWS
/// or to a host no one outside this machine or network can be, never to one
/// whose name merely looks like AWS's. The SDK's own settings
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SQS`) win over it (`main.rs`).
pub fn endpoint_of_queue_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') || !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let local = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
            std::net::IpAddr::V6(v6) => v6.is_loopback(),
        });
    local.then(|| format!("{scheme}://{authority}"))
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
        assert_eq!(
            endpoint_of_queue_url("http://10.0.3.7:9324/queue/q").as_deref(),
            Some("http://10.0.3.7:9324")
        );
        assert_eq!(
            endpoint_of_queue_url("http://[::1]:4566/0/q").as_deref(),
            Some("http://[::1]:4566")
        );
        for elsewhere in [
            "https://sqs.eu-west-1.amazonaws.com/123/q",
            "https://eu-north-1.queue.amazonaws.com/123/q",
            "https://sqs.cn-north-1.amazonaws.com.cn/123/q",
            // Looks like AWS, is not: no signed request goes there.
            "https://sqs.eu-west-1.amazonaws.com.evil.example/123/q",
            "http://8.8.8.8/123/q",
            "http://127.0.0.1.evil.example/q",
            "http://user@127.0.0.1:4566/q",
        ] {
            assert_eq!(endpoint_of_queue_url(elsewhere), None, "{elsewhere}");
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
