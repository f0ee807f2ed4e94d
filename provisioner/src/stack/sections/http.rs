//! `http:` — the HTTP function and its door: memory, timeout (under API
//! Gateway's 29 s), throttling (API Gateway's account limits), reserved
//! concurrency and authorization (`none`, `iam`, `jwt` with its issuer,
//! audience and scopes).

use serde::Deserialize;

use super::{Converting, Section, range};
use crate::stack::{Auth, Http, Jwt, MAX_BURST, MAX_RATE_PER_SECOND, Stack};

/// As written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Raw {
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub rate_per_second: f64,
    pub burst: u32,
    pub reserved_concurrency: Option<u32>,
    pub auth: String,
    pub jwt: Option<RawJwt>,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            memory_mb: 512,
            timeout_seconds: 29,
            rate_per_second: crate::stack::DEFAULT_RATE_PER_SECOND,
            burst: crate::stack::DEFAULT_BURST,
            reserved_concurrency: None,
            auth: "none".into(),
            jwt: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    pub issuer: String,
    pub audience: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Section for Raw {
    type Typed = Http;
    fn placeholder() -> Raw {
        Raw::default()
    }
    /// The typed section; an authorization no word names, or `jwt:` beside
    /// another, is a problem. A preview reserves none of the account's
    /// concurrency (it would be taken from production's: [`crate::stack::Stack::preview`]).
    fn typed(self, c: &mut Converting<'_>) -> Http {
        let words = &mut *c.problems;
        let auth = match (self.auth.as_str(), self.jwt) {
            ("jwt", jwt) => {
                let jwt = jwt.unwrap_or(RawJwt {
                    issuer: String::new(),
                    audience: Vec::new(),
                    scopes: Vec::new(),
                });
                Auth::Jwt(Jwt {
                    issuer: jwt.issuer,
                    audience: jwt.audience,
                    scopes: jwt.scopes,
                })
            }
            (word @ ("iam" | "none"), jwt) => {
                if jwt.is_some() {
                    words.push((
                        "http.jwt".into(),
                        format!("is only read with `auth: jwt` (this route's auth is {word})"),
                    ));
                }
                if word == "iam" { Auth::Iam } else { Auth::None }
            }
            (other, _) => {
                words.push((
                    "http.auth".into(),
                    format!(
                        "{other:?} is not an authorization this stack knows; one of: {}",
                        crate::stack::AUTH_WORDS.join(", ")
                    ),
                ));
                Auth::None
            }
        };
        Http {
            memory_mb: self.memory_mb,
            timeout_seconds: self.timeout_seconds,
            rate_per_second: self.rate_per_second,
            burst: self.burst,
            reserved_concurrency: self.reserved_concurrency.filter(|_| !c.preview),
            auth,
        }
    }
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    let h = &s.http;
    range(
        out,
        "http.memory_mb",
        h.memory_mb,
        128,
        10_240,
        "Lambda memory",
    );
    range(
        out,
        "http.timeout_seconds",
        h.timeout_seconds,
        1,
        900,
        "a Lambda timeout",
    );
    if (1..=900).contains(&h.timeout_seconds) && h.timeout_seconds > 29 {
        out.push((
            "http.timeout_seconds".into(),
            format!("{} is longer than API Gateway's 29 s integration timeout: callers would get 503 before the function ends", h.timeout_seconds),
        ));
    }
    out.extend(door(s));
}

/// The door: throttling, the concurrency cap, authorization.
pub fn door(s: &Stack) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let h = &s.http;
    // API Gateway's account throttle per Region caps every stage
    // (apigateway/latest/developerguide/limits.html: 10,000 RPS, a bucket of 5,000).
    if !h.rate_per_second.is_finite()
        || h.rate_per_second <= 0.0
        || h.rate_per_second > MAX_RATE_PER_SECOND
    {
        out.push((
            "http.rate_per_second".into(),
            format!(
                "{} is out of range: requests per second must be above 0 and at most {MAX_RATE_PER_SECOND} (API Gateway's default account throttle per Region; a stage cannot exceed it)",
                h.rate_per_second
            ),
        ));
    }
    if h.burst == 0 {
        out.push((
            "http.burst".into(),
            "0 throttles every request (429 for all callers): use 1 or more".into(),
        ));
    } else if h.burst > MAX_BURST {
        out.push((
            "http.burst".into(),
            format!(
                "{} is above API Gateway's account bucket of {MAX_BURST} requests per Region, which caps every stage",
                h.burst
            ),
        ));
    }
    if h.reserved_concurrency == Some(0) {
        out.push((
            "http.reserved_concurrency".into(),
            "0 stops the function: every request would be throttled; use 1 or more, or leave it out for no cap".into(),
        ));
    }
    if let Auth::Jwt(jwt) = &h.auth {
        if jwt.issuer.is_empty() && jwt.audience.is_empty() {
            out.push((
                "http.jwt".into(),
                "is required with `auth: jwt`: { issuer: https://..., audience: [...], scopes: [...] }".into(),
            ));
        } else {
            let host = jwt.issuer.strip_prefix("https://").unwrap_or_default();
            if host.is_empty()
                || jwt.issuer.len() > 2048
                || jwt.issuer.contains(char::is_whitespace)
            {
                out.push((
                    "http.jwt.issuer".into(),
                    format!(
                        "{:?} is not an issuer API Gateway accepts: the identity provider's https:// base URL (e.g. https://cognito-idp.eu-west-1.amazonaws.com/POOL_ID), at most 2048 characters",
                        jwt.issuer
                    ),
                ));
            }
            if jwt.audience.is_empty() || jwt.audience.iter().any(String::is_empty) {
                out.push((
                    "http.jwt.audience".into(),
                    "needs at least one non-empty audience: a token's aud (or client_id) must match one".into(),
                ));
            }
        }
        if let Some(bad) = jwt
            .scopes
            .iter()
            .find(|sc| sc.is_empty() || sc.contains(char::is_whitespace))
        {
            out.push((
                "http.jwt.scopes".into(),
                format!("{bad:?} is not a scope: one word each (e.g. images/write)"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::stack::parse;
    use crate::stack::validate::tests::*;
    use std::path::Path;

    #[test]
    fn the_door_defaults_to_a_low_throttle_an_open_route_and_no_client() {
        let s = parse(Path::new("stacks/t.yaml"), GOOD).unwrap();
        assert_eq!(
            s.http.rate_per_second,
            crate::stack::DEFAULT_RATE_PER_SECOND
        );
        assert_eq!(s.http.burst, crate::stack::DEFAULT_BURST);
        assert_eq!(s.http.reserved_concurrency, None);
        assert_eq!(s.http.auth, crate::stack::Auth::None);
        assert_eq!(s.client, None);
        // burst + rate x 3600: 3 + 360.
        assert_eq!(s.http.images_per_hour(), 363);
    }

    #[test]
    fn throttling_is_held_to_api_gateways_account_limits() {
        let http =
            |rest: &str| format!("http:   {{ memory_mb: 512, timeout_seconds: 29, {rest} }}");
        for (rest, path, needle) in [
            ("rate_per_second: 0", "http.rate_per_second", "above 0"),
            ("rate_per_second: -1", "http.rate_per_second", "above 0"),
            (
                "rate_per_second: 10001",
                "http.rate_per_second",
                "at most 10000",
            ),
            ("burst: 0", "http.burst", "throttles every request"),
            ("burst: 5001", "http.burst", "bucket of 5000"),
            (
                "reserved_concurrency: 0",
                "http.reserved_concurrency",
                "stops the function",
            ),
        ] {
            one_problem("http:", &http(rest), path, needle);
        }
        let s = parse(
            Path::new("stacks/t.yaml"),
            &GOOD.replace(
                "http:   { memory_mb: 512, timeout_seconds: 29 }",
                "http:   { memory_mb: 512, timeout_seconds: 29, rate_per_second: 0.5, burst: 10, reserved_concurrency: 4 }",
            ),
        )
        .unwrap();
        assert_eq!((s.http.rate_per_second, s.http.burst), (0.5, 10));
        assert_eq!(s.http.reserved_concurrency, Some(4));
        assert_eq!(s.http.images_per_hour(), 10 + 1800);
    }

    #[test]
    fn authorization_is_one_of_three_and_jwt_says_who_issues_for_whom() {
        let http = |rest: &str| format!("http:   {{ memory_mb: 512, {rest} }}");
        one_problem(
            "http:",
            &http("auth: cognito"),
            "http.auth",
            "one of: none, iam, jwt",
        );
        one_problem(
            "http:",
            &http("auth: jwt"),
            "http.jwt",
            "is required with `auth: jwt`",
        );
        one_problem(
            "http:",
            &http("auth: jwt, jwt: { issuer: http://idp.example, audience: [app] }"),
            "http.jwt.issuer",
            "https:// base URL",
        );
        one_problem(
            "http:",
            &http("auth: jwt, jwt: { issuer: https://idp.example, audience: [] }"),
            "http.jwt.audience",
            "at least one",
        );
        one_problem(
            "http:",
            &http(
                "auth: jwt, jwt: { issuer: https://idp.example, audience: [app], scopes: [\"a b\"] }",
            ),
            "http.jwt.scopes",
            "not a scope",
        );
        one_problem(
            "http:",
            &http("auth: iam, jwt: { issuer: https://idp.example, audience: [app] }"),
            "http.jwt",
            "only read with `auth: jwt`",
        );
        one_problem(
            "http:",
            &http("auth: jwt, jwt: { issuer: https://idp.example, audience: [app], groups: [x] }"),
            "http.jwt.groups",
            "unknown field",
        );
        let s = parse(
            Path::new("stacks/t.yaml"),
            &GOOD.replace(
                "http:   { memory_mb: 512, timeout_seconds: 29 }",
                "http:   { auth: jwt, jwt: { issuer: \"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc\", audience: [app], scopes: [images/write] } }",
            ),
        )
        .unwrap();
        assert_eq!(
            s.http.auth,
            crate::stack::Auth::Jwt(crate::stack::Jwt {
                issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc".into(),
                audience: vec!["app".into()],
                scopes: vec!["images/write".into()],
            })
        );
        let iam = parse(
            Path::new("stacks/t.yaml"),
            &GOOD.replace(
                "http:   { memory_mb: 512, timeout_seconds: 29 }",
                "http:   { auth: iam }",
            ),
        )
        .unwrap();
        assert_eq!(iam.http.auth, crate::stack::Auth::Iam);
    }
}
