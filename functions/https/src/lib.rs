//! The HTTPS client of every AWS SDK client in this workspace.
//!
//! The SDK's `default-https-client` feature builds hyper 1 + rustls with
//! aws-lc as rustls's crypto provider, and aws-lc-sys compiles AWS-LC's C
//! sources in a build script: measured at 71 s of CPU in the arm64 zip build
//! alone, the longest single step of the project's builds (docs/benchmarks.md,
//! "Time to a first plan"). The host tools already carry ring (ureq's rustls).
//! This is the same client the SDK builds by default at the latest behavior
//! version (aws-smithy-runtime's `default_https_client`: hyper 1, rustls, the
//! connector settings and sleep of the SDK client that uses it, the proxy
//! from the environment), with `CryptoMode::Ring`, a configuration
//! aws-smithy-http-client supports and documents (its `rustls-ring` feature
//! and `examples/client-ring.rs`). What ring does not offer is the hybrid
//! post-quantum key exchange (X25519MLKEM768) that rustls prefers with
//! aws-lc: connections use classical X25519/ECDHE, as TLS 1.3 clients did
//! until 2025 (docs/reference/provisioner.md, TLS).
//!
//! Every `SdkConfig` must be given it (`aws_config::defaults(..)
//! .http_client(couch_https::client())`, `SdkConfig::builder().http_client(..)`):
//! without `default-https-client` the SDK has no client of its own, and a
//! request fails with "no HTTP client was available".

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// A new HTTPS client: hyper 1 and rustls with ring, trusting the platform's
/// roots as the SDK's default does, proxied as `HTTPS_PROXY` / `NO_PROXY` say.
pub fn client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};

    fn sts(endpoint: &str, with_client: bool) -> aws_sdk_sts::Client {
        let mut conf = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKID", "SECRET", None, None, "test",
            )))
            .behavior_version(aws_config::BehaviorVersion::latest());
        if with_client {
            conf = conf.http_client(super::client());
        }
        aws_sdk_sts::Client::new(&conf.build())
    }

    /// A real SDK client with this HTTP client reaches a server and reads its
    /// answer (plain HTTP on 127.0.0.1; TLS is rustls's own code).
    #[tokio::test]
    async fn an_sdk_client_with_it_makes_a_request() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = vec![0u8; 65536];
            let n = stream.read(&mut request).expect("read");
            let body = "<GetCallerIdentityResponse><GetCallerIdentityResult>\
                <Arn>arn:aws:iam::123456789012:user/test</Arn><UserId>AIDA</UserId>\
                <Account>123456789012</Account></GetCallerIdentityResult>\
                </GetCallerIdentityResponse>";
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .expect("write");
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let answer = sts(&format!("http://127.0.0.1:{port}"), true)
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity through couch_https::client()");
        assert_eq!(answer.account(), Some("123456789012"));
        let request = server.join().expect("server thread");
        assert!(request.starts_with("POST / HTTP/1.1"), "{request}");
        assert!(request.contains("Action=GetCallerIdentity"), "{request}");
    }

    /// Without it, the SDK as this workspace builds it has no client of its
    /// own: the reason every configuration is given one.
    #[tokio::test]
    async fn without_it_the_sdk_has_no_http_client() {
        let err = sts("http://127.0.0.1:9", false)
            .get_caller_identity()
            .send()
            .await
            .expect_err("no HTTP client");
        let mut chain = vec![err.to_string()];
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        let text = chain.join(": ").to_lowercase();
        assert!(text.contains("http client"), "{text}");
    }
}
