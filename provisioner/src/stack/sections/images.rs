//! `images:` — the referenced bucket and the key prefix everything is
//! stored under (S3's bucket naming rules; a prefix IAM can hold the
//! functions to).

use serde::Deserialize;

use super::check_prefix;
use crate::stack::Stack;

/// As written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub bucket: String,
    pub prefix: String,
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    // S3 bucket naming rules (the subset that matters for a typo).
    let b = &s.images.bucket;
    let bucket_ok = (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !bucket_ok {
        out.push((
            "images.bucket".into(),
            format!("{b:?} is not a valid S3 bucket name"),
        ));
    }
    if let Err(why) = check_prefix(&s.images.prefix) {
        out.push(("images.prefix".into(), why));
    }
}
