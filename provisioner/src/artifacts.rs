//! The functions' code: the reproducible zips `scripts/build-functions` makes
//! (`target/lambda/{package}/bootstrap.zip`). Only their hashes enter the
//! declaration; the bytes are read when a function is created or updated.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// What builds the zips; named in every "not built" message.
pub const BUILD_COMMAND: &str = "scripts/build-functions";
/// The worker's cargo package (and binary, and cargo-lambda function name).
pub const WORKER_PACKAGE: &str = "image-worker";
/// The HTTP function's cargo package.
pub const HTTP_PACKAGE: &str = "image-http";
/// Where cargo-lambda puts them, relative to the repository.
pub const DEFAULT_DIR: &str = "target/lambda";

/// Lambda's `CodeSha256`: base64 of the zip's SHA-256.
pub fn code_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// How a plan shows a `CodeSha256`: its first 12 characters (72 bits).
pub fn short(code_sha256: &str) -> String {
    code_sha256.chars().take(12).collect()
}

/// One function's zip.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// The cargo package, e.g. `image-worker`.
    pub package: &'static str,
    pub path: PathBuf,
    /// `CodeSha256` of the zip, or why there is none.
    pub code_sha256: Result<String, String>,
}

impl Artifact {
    /// Hashes `{dir}/{package}/bootstrap.zip` if it exists.
    pub fn load(dir: &Path, package: &'static str) -> Artifact {
        let path = dir.join(package).join("bootstrap.zip");
        let code_sha256 = match std::fs::read(&path) {
            Ok(bytes) => Ok(code_sha256(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "{} does not exist: run `{BUILD_COMMAND}` to build it",
                path.display()
            )),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        };
        Artifact {
            package,
            path,
            code_sha256,
        }
    }

    /// The zip's bytes, checked against the hash the plan was made with.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        let planned = self.code_sha256.clone()?;
        let bytes = std::fs::read(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        let now = code_sha256(&bytes);
        if now != planned {
            return Err(format!(
                "{} changed since the plan was made (CodeSha256 {} -> {}); plan again",
                self.path.display(),
                short(&planned),
                short(&now)
            ));
        }
        Ok(bytes)
    }
}

/// Both functions' zips.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifacts {
    pub worker: Artifact,
    pub http: Artifact,
}

impl Artifacts {
    pub fn load(dir: &Path) -> Artifacts {
        Artifacts {
            worker: Artifact::load(dir, WORKER_PACKAGE),
            http: Artifact::load(dir, HTTP_PACKAGE),
        }
    }

    /// Why the code cannot be deployed, if it cannot.
    pub fn missing(&self) -> Option<String> {
        let problems: Vec<String> = [&self.worker, &self.http]
            .into_iter()
            .filter_map(|a| a.code_sha256.as_ref().err().cloned())
            .collect();
        (!problems.is_empty()).then(|| {
            format!(
                "the functions' code is not built:\n  {}",
                problems.join("\n  ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sha256_is_lambdas_base64_sha256() {
        // printf '' | sha256sum -> e3b0c442...; base64 of those bytes:
        assert_eq!(
            code_sha256(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(short(&code_sha256(b"")), "47DEQpj8HBSa");
    }

    #[test]
    fn missing_zips_name_the_build_command_and_changed_zips_are_refused() {
        let dir = std::env::temp_dir().join(format!("couch-artifacts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = Artifacts::load(&dir);
        let why = a.missing().unwrap();
        assert!(
            why.contains("image-worker/bootstrap.zip does not exist"),
            "{why}"
        );
        assert!(why.contains("run `scripts/build-functions`"), "{why}");

        std::fs::create_dir_all(dir.join("image-worker")).unwrap();
        std::fs::write(dir.join("image-worker/bootstrap.zip"), b"one").unwrap();
        let w = Artifact::load(&dir, "image-worker");
        assert_eq!(w.bytes().unwrap(), b"one");
        std::fs::write(dir.join("image-worker/bootstrap.zip"), b"two").unwrap();
        assert!(w.bytes().unwrap_err().contains("changed since the plan"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
