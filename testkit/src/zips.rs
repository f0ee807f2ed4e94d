//! Stand-ins for the cargo-lambda zips: tiny, valid (empty) zip archives whose
//! bytes, and so `CodeSha256`, differ by a comment. The emulator never runs
//! the code; the provisioner only hashes and uploads it.

use std::path::{Path, PathBuf};

/// An empty zip archive carrying `comment` (an end-of-central-directory record only).
pub fn empty_zip(comment: &str) -> Vec<u8> {
    let mut z = b"PK\x05\x06".to_vec();
    z.extend_from_slice(&[0; 16]);
    let len = u16::try_from(comment.len()).expect("a zip comment is at most 65535 bytes");
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(comment.as_bytes());
    z
}

/// Writes `{dir}/image-worker/bootstrap.zip` and `{dir}/image-http/bootstrap.zip`
/// (contents depend on `version`); returns `dir`.
pub fn write_function_zips(dir: &Path, version: &str) -> PathBuf {
    for package in ["image-worker", "image-http"] {
        write_function_zip(dir, package, version);
    }
    dir.to_path_buf()
}

/// Writes one function's zip, e.g. to change only its code.
pub fn write_function_zip(dir: &Path, package: &str, version: &str) {
    let d = dir.join(package);
    std::fs::create_dir_all(&d).expect("create the artifacts folder");
    std::fs::write(
        d.join("bootstrap.zip"),
        empty_zip(&format!("{package} {version}")),
    )
    .expect("write a zip");
}
