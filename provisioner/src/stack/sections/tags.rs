//! `tags:` — the stack's own tags on every resource (AWS's tag rules: keys
//! 1..=128 characters, not `aws:`, values up to 256; the ownership tags are
//! the provisioner's).
use std::collections::BTreeMap;

use super::{Converting, Section};
use crate::stack::{MANAGED_BY_KEY, STACK_KEY, Stack};

/// As written: key to value.
pub type Raw = BTreeMap<String, String>;

impl Section for Raw {
    type Typed = Raw;
    fn placeholder() -> Raw {
        Raw::new()
    }
    fn typed(self, _: &mut Converting<'_>) -> Raw {
        self
    }
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    for (k, v) in &s.tags {
        let path = format!("tags.{k}");
        if k.is_empty() || k.len() > 128 {
            out.push((path, "a tag key is 1 to 128 characters".into()));
        } else if k.to_ascii_lowercase().starts_with("aws:") {
            out.push((
                path,
                "tag keys starting with 'aws:' are reserved by AWS".into(),
            ));
        } else if k == MANAGED_BY_KEY || k == STACK_KEY {
            out.push((
                path,
                format!(
                    "'{k}' is set by the provisioner to mark ownership and cannot be overridden"
                ),
            ));
        } else if v.len() > 256 {
            out.push((path, "a tag value is at most 256 characters".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::stack::validate::tests::*;

    #[test]
    fn reserved_tags() {
        one_problem(
            "tags:",
            "tags:   { stack: other }",
            "tags.stack",
            "ownership",
        );
        one_problem(
            "tags:",
            "tags:   { \"aws:x\": y }",
            "tags.aws:x",
            "reserved",
        );
    }
}
