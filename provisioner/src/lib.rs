//! The Couch Explorers provisioner: typed stack declaration, live reads,
//! diff, plan and apply. See ARCHITECTURE.md for the map.

pub mod artifacts;
pub mod aws;
pub mod bootstrap;
pub mod cli;
pub mod cloudformation;
pub mod commands;
pub mod declare;
#[cfg(test)]
mod docs;
/// The engine and the kind contract live in their own crate (`provisioner/engine`),
/// which depends on no SDK and no stack type.
pub use provisioner_engine as engine;
pub use provisioner_engine::kind;
pub mod local;
pub mod lock;
pub mod stack;

#[cfg(test)]
mod layering {
    use std::collections::{BTreeMap, BTreeSet};
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
            "cli",
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

    /// A crate's top-level modules (files and folders under `src`) and the
    /// others each names (`crate::x`, `crate::{x, y}`), outside its tests.
    fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(src).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let name = name.trim_end_matches(".rs").to_owned();
            if name != "lib" && name != "main" {
                names.insert(name);
            }
        }
        let mut graph = BTreeMap::new();
        for module in &names {
            let mut files = vec![src.join(format!("{module}.rs"))];
            let mut dirs = vec![src.join(module)];
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(&dir).into_iter().flatten() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        dirs.push(path);
                    } else {
                        files.push(path);
                    }
                }
            }
            let mut named = BTreeSet::new();
            for file in files.iter().filter(|f| f.is_file()) {
                let text = std::fs::read_to_string(file).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                    for part in line.split("crate::").skip(1) {
                        let words = match part.strip_prefix('{') {
                            Some(group) => group.split('}').next().unwrap_or_default(),
                            None => part,
                        };
                        let mut words = words
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .filter(|w| !w.is_empty());
                        let first: Vec<&str> = if part.starts_with('{') {
                            words.collect()
                        } else {
                            words.next().into_iter().collect()
                        };
                        for w in first {
                            if names.contains(w) && w != module {
                                named.insert(w.to_owned());
                            }
                        }
                    }
                }
            }
            graph.insert(module.clone(), named);
        }
        graph
    }

    /// Pairs `(a, b)` where `a` names `b` and `b` reaches back to `a`.
    fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (a, named) in graph {
            for b in named {
                let mut seen = BTreeSet::new();
                let mut next = vec![b.clone()];
                while let Some(m) = next.pop() {
                    if &m == a {
                        found.push((a.clone(), b.clone()));
                        break;
                    }
                    if seen.insert(m.clone()) {
                        next.extend(graph.get(&m).into_iter().flatten().cloned());
                    }
                }
            }
        }
        found
    }

    /// No crate of the workspace has modules that import each other, directly
    /// or around a loop: each crate's modules form layers a reader can take
    /// from the bottom up.
    #[test]
    fn no_crate_has_an_import_cycle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let crates = [
            "provisioner/src",
            "provisioner/engine/src",
            "functions/contract/src",
            "functions/https/src",
            "functions/imagegen/src",
            "functions/http/src",
            "functions/worker/src",
            "functions/echo/src",
            "client/src",
            "testkit/src",
        ];
        for dir in crates {
            let found = cycles(&module_graph(&root.join(dir)));
            assert!(
                found.is_empty(),
                "{dir}: modules import each other: {found:?}"
            );
        }
        // The check finds a cycle where there is one.
        let planted = BTreeMap::from([
            ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
            ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
            ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ]);
        assert_eq!(cycles(&planted).len(), 3);
    }
}
