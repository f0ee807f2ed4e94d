//! The Couch Explorers provisioner: typed stack declaration, live reads,
//! diff, plan and apply. See ARCHITECTURE.md for the map.

pub mod artifacts;
pub mod aws;
pub mod bootstrap;
pub mod cloudformation;
pub mod commands;
pub mod declare;
/// The engine and the kind contract live in their own crate (`provisioner/engine`),
/// which depends on no SDK and no stack type.
pub use provisioner_engine as engine;
pub use provisioner_engine::kind;
pub mod local;
pub mod lock;
pub mod stack;

#[cfg(test)]
mod layering {
    use std::path::Path;

    /// `(file:line: text)` of every `crate::{module}` a directory's sources name.
    fn naming(dir: &str, modules: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
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
        }
        found
    }

    /// Imports run one way: `commands` → `declare` → `stack` → `aws` →
    /// `engine` (its own crate: the compiler keeps it below everything).
    #[test]
    fn imports_run_one_way() {
        let consumers = [
            "bootstrap",
            "cloudformation",
            "commands",
            "declare",
            "local",
        ];
        let up = naming("aws", &[&consumers[..], &["stack", "lock"]].concat());
        assert!(
            up.is_empty(),
            "aws/ imports above itself:\n{}",
            up.join("\n")
        );
        let up = naming("stack", &consumers);
        assert!(
            up.is_empty(),
            "stack/ imports above itself:\n{}",
            up.join("\n")
        );
    }
}
