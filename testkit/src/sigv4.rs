//! Checks an AWS Signature Version 4 on a request a test server received,
//! computed independently of the SDK's signer from AWS's documented
//! algorithm (IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
//! canonical request, string to sign, the derived signing key, HMAC-SHA256.
//! What API Gateway does for an `AWS_IAM` route, for tests of callers.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::http::Request;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a valid signature said about its signer.
#[derive(Debug, Clone, PartialEq)]
pub struct Signed {
    pub access_key: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub session_token: Option<String>,
}

/// `Ok` when `req` carries a valid SigV4 `Authorization` header made with
/// `secret`; otherwise what is wrong.
pub fn verify(req: &Request, secret: &str) -> Result<Signed, String> {
    let auth = req
        .header("authorization")
        .ok_or("no Authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| format!("not a SigV4 Authorization header: {auth}"))?;
    let field = |name: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .ok_or_else(|| format!("Authorization has no {name}"))
    };
    let credential = field("Credential")?;
    let signed_headers: Vec<String> = field("SignedHeaders")?
        .split(';')
        .map(str::to_owned)
        .collect();
    let signature = field("Signature")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(format!("malformed credential scope: {credential}"));
    };
    let amz_date = req.header("x-amz-date").ok_or("no X-Amz-Date header")?;
    if !amz_date.starts_with(date) {
        return Err(format!(
            "X-Amz-Date {amz_date} is not of the scope's day {date}"
        ));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err("the host header is not signed".into());
    }
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort_unstable();
    let mut canonical_headers = String::new();
    for name in &signed_headers {
        let value = req
            .header(name)
            .ok_or_else(|| format!("signed header {name} is not in the request"))?;
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let canonical_request = format!(
        "{}\n{path}\n{}\n{canonical_headers}\n{}\n{}",
        req.method,
        pairs.join("&"),
        signed_headers.join(";"),
        hex(&Sha256::digest(&req.body))
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [*date, *region, *service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
            hmac(&key, part)
        });
    let expected = hex(&hmac(&key, &string_to_sign));
    if expected != signature {
        return Err(format!(
            "the signature does not match (canonical request:\n{canonical_request})"
        ));
    }
    Ok(Signed {
        access_key: (*access_key).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers,
        session_token: req.header("x-amz-security-token").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (the IAM User Guide's GET ?Action=ListUsers
    /// request signed with the documentation's example keys).
    #[test]
    fn the_documented_example_verifies_and_a_changed_body_does_not() {
        let mut req = Request {
            method: "GET".into(),
            path: "/?Action=ListUsers&Version=2010-05-08".into(),
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                ),
                ("host".into(), "iam.amazonaws.com".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
                (
                    "authorization".into(),
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7".into(),
                ),
            ],
            body: Vec::new(),
        };
        let signed = verify(&req, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").unwrap();
        assert_eq!(signed.access_key, "AKIDEXAMPLE");
        assert_eq!(
            (signed.region.as_str(), signed.service.as_str()),
            ("us-east-1", "iam")
        );
        assert!(verify(&req, "another secret").is_err());
        req.body = b"x".to_vec();
        assert!(verify(&req, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").is_err());
    }
}
