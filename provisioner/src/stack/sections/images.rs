//! `images:` — the referenced bucket and the key prefix everything is
//! stored under (S3's bucket naming rules; a prefix IAM can hold the
//! functions to).

use serde::Deserialize;

use super::{Converting, Section, check_prefix};
use crate::stack::{Images, Stack, preview_prefix};

/// As written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub bucket: String,
    pub prefix: String,
}

impl Section for Raw {
    type Typed = Images;
    fn placeholder() -> Raw {
        Raw {
            bucket: "placeholder".into(),
            prefix: "placeholder".into(),
        }
    }
    /// A preview keeps its pictures apart from the file's stack ([`preview_prefix`]).
    fn typed(self, c: &mut Converting<'_>) -> Images {
        Images {
            prefix: if c.preview {
                preview_prefix(&self.prefix, c.name)
            } else {
                self.prefix
            },
            bucket: self.bucket,
        }
    }
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

#[cfg(test)]
mod tests {
    use crate::stack::validate::check_prefix;
    use crate::stack::validate::tests::*;

    #[test]
    fn bad_bucket_and_prefix() {
        one_problem(
            "images:",
            "images: { bucket: Bad_Bucket, prefix: \"11\" }",
            "images.bucket",
            "bucket",
        );
        one_problem(
            "images:",
            "images: { bucket: good-bucket, prefix: \"/11/\" }",
            "images.prefix",
            "prefix",
        );
        for bad in [
            "11/*", "1?", "a/../b", "..", "a//b", "a/", "a b", "a/./b", "a\\\\b",
        ] {
            one_problem(
                "images:",
                &format!("images: {{ bucket: good-bucket, prefix: \"{bad}\" }}"),
                "images.prefix",
                "not a usable key prefix",
            );
        }
        for good in ["11", "team-a/v1.2/images_x", "A.b"] {
            assert!(check_prefix(good).is_ok(), "{good}");
        }
    }
}
