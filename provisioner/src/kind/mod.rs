//! The kind contract: what every resource kind under `aws/` says about itself.
//! The engine drives it through [`Resource`](crate::engine::Resource); outside
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

/// A resource kind: what the engine drives, how it reads as CloudFormation
/// ([`Export`]) and what IAM access it takes ([`Access`]).
pub trait Kind: Export + Access {}
impl<K: Export + Access> Kind for K {}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// `(file, line)` of every `crate::{module}` a directory's sources name.
    fn naming(dir: &str, modules: &[&str]) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for m in modules {
                    if line.contains(&format!("crate::{m}")) {
                        found.push(format!("{}:{}: {line}", path.display(), n + 1));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn imports_run_one_way() {
        // Kinds implement the contract; they never reach up to its consumers.
        let up = naming(
            "aws",
            &["bootstrap", "cloudformation", "commands", "declare"],
        );
        assert!(up.is_empty(), "aws/ imports a consumer:\n{}", up.join("\n"));
        // The contract knows only the engine.
        let up = naming(
            "kind",
            &["aws", "bootstrap", "cloudformation", "commands", "declare"],
        );
        assert!(
            up.is_empty(),
            "kind/ imports above itself:\n{}",
            up.join("\n")
        );
        // The engine knows no kind.
        let up = naming(
            "engine",
            &[
                "aws",
                "kind",
                "bootstrap",
                "cloudformation",
                "commands",
                "declare",
            ],
        );
        assert!(up.is_empty(), "engine/ imports a kind:\n{}", up.join("\n"));
    }
}
