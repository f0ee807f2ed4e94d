//! The kind contract: what every resource kind (the provisioner's `aws/`) says about itself.
//! The engine drives it through [`Resource`](crate::Resource); outside
//! the engine, a kind also says how it reads as CloudFormation ([`Export`],
//! `export.rs`) and what IAM access its SDK calls take ([`Access`],
//! `access.rs`). `aws/` implements these; `cloudformation/` and `bootstrap/`
//! only consume them, so imports run one way: consumers → `aws` → `kind` →
//! `engine`.

pub mod access;
pub mod export;

pub use access::{ACCOUNT, Access, Document, DocumentType, Grant, account_arn, own};
pub use export::{CodeLocation, Export, Part, Suppression, Upload};

/// The attribute names kinds export and references name.
pub const ARN: &str = "arn";
pub const NAME: &str = "name";
pub const URL: &str = "url";
pub const ID: &str = "id";

use crate::{Handle, Ref};

/// A kind whose handle exports an ARN (`handle.arn()`).
pub trait HasArn {}
/// A kind whose handle exports its name (`handle.name()`).
pub trait HasName {}
/// A kind whose handle exports a URL (`handle.url()`).
pub trait HasUrl {}
/// A kind whose handle exports an id AWS chose (`handle.id()`).
pub trait HasId {}

impl<K: HasArn> Handle<K> {
    pub fn arn(&self) -> Ref {
        self.attr(ARN)
    }
}
impl<K: HasName> Handle<K> {
    pub fn name(&self) -> Ref {
        self.attr(NAME)
    }
}
impl<K: HasUrl> Handle<K> {
    pub fn url(&self) -> Ref {
        self.attr(URL)
    }
}
impl<K: HasId> Handle<K> {
    pub fn id(&self) -> Ref {
        self.attr(ID)
    }
}

/// A resource kind: what the engine drives, how it reads as CloudFormation
/// ([`Export`]) and what IAM access it takes ([`Access`]).
pub trait Kind: Export + Access {}
impl<K: Export + Access> Kind for K {}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_engine_knows_no_kind() {
        // The engine's own modules never name the kind contract built on it.
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if !code.starts_with("//") && code.contains("crate::kind") {
                    found.push(format!("{}:{}: {line}", path.display(), n + 1));
                }
            }
        }
        assert!(
            found.is_empty(),
            "the engine imports a kind:\n{}",
            found.join("\n")
        );
    }
}
