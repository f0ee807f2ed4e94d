//! `GET /`: one small page to try the asynchronous path in a browser: a
//! prompt box (and, when the API takes a JWT, a token field), the request's
//! state as `GET /images/{id}` reports it, and the picture when it is done.
//! No build step and nothing fetched at run time: the page, its style and
//! its script are compiled into the function.
//!
//! The page asks the API which credential it takes rather than being told:
//! at load, a `POST images` with no body and no credential is answered 400 by
//! this function (no authorization: nothing is queued, no AWS call), 401 by
//! API Gateway's JWT authorizer, or 403 by its IAM authorization. So the page
//! is the same for every stack, and changing `http.auth` redeploys nothing.
//!
//! Its Content-Security-Policy allows exactly this page's style and script
//! (by their SHA-256), calls to its own origin, and pictures from HTTPS (the
//! presigned S3 link), loopback (`provisioner local`'s emulator) or `data:`
//! (the page's empty icon: no request for `/favicon.ico`, a route the API
//! does not have); no frames, no forms posted elsewhere, no other script.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

const HTML: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// The page as served: HTML and its headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub html: String,
    pub headers: Vec<(&'static str, String)>,
}

fn sha256(text: &str) -> String {
    format!("'sha256-{}'", B64.encode(Sha256::digest(text.as_bytes())))
}

/// The policy, computed once per cold start.
static POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         img-src https: http://127.0.0.1:* http://localhost:* data:; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'",
        sha256(SCRIPT),
        sha256(STYLE)
    )
});

/// The page, computed once per cold start.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    HTML.replace("{{STYLE}}", STYLE)
        .replace("{{SCRIPT}}", SCRIPT)
});

/// The page and its headers.
pub fn page() -> Page {
    Page {
        html: PAGE.clone(),
        headers: vec![
            ("content-type", "text/html; charset=utf-8".into()),
            ("content-security-policy", POLICY.clone()),
            ("x-content-type-options", "nosniff".into()),
            ("referrer-policy", "no-referrer".into()),
            ("cache-control", "no-cache".into()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(p: &'a Page, name: &str) -> &'a str {
        p.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn the_policy_allows_exactly_the_pages_own_script_and_style() {
        let p = page();
        let csp = header(&p, "content-security-policy");
        let inline = |tag: &str| {
            let open = format!("<{tag}>");
            let start = p.html.find(&open).unwrap() + open.len();
            let end = p.html[start..].find(&format!("</{tag}>")).unwrap();
            p.html[start..start + end].to_owned()
        };
        assert!(csp.contains(&format!("script-src {};", sha256(&inline("script")))));
        assert!(csp.contains(&format!("style-src {};", sha256(&inline("style")))));
        assert!(csp.starts_with("default-src 'none'"));
        assert!(!csp.contains("unsafe"));
        assert_eq!(p.html.matches("<script").count(), 1, "one script, inline");
        assert!(!p.html.contains("{{"), "every placeholder filled");
    }

    #[test]
    fn the_page_is_html_that_asks_the_api_for_its_authorization() {
        assert_eq!(header(&page(), "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&page(), "x-content-type-options"), "nosniff");
        // The probe and what each answer means (page.js), in its code.
        for line in [
            r#"if (r.status === 401) needs("jwt");"#,
            r#"else if (r.status === 403) needs("iam");"#,
            r#"else if (r.status === 400) needs("none");"#,
        ] {
            assert!(SCRIPT.contains(line), "{line}");
        }
    }

    #[test]
    fn the_script_only_writes_text_into_the_page() {
        // What the API answers (a reason, an id) is shown as text, never as markup.
        assert!(!SCRIPT.contains("innerHTML"));
        assert!(!SCRIPT.contains("document.write"));
        assert!(!SCRIPT.contains("eval("));
    }
}
