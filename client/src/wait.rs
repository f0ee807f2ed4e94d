//! Waiting for the image the worker writes for a message, and downloading it.

use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(
        "no image at s3://{bucket}/{key} after {seconds} s (still queued, failed into the dead-letter queue, or the worker is not running)"
    )]
    TimedOut {
        bucket: String,
        key: String,
        seconds: u64,
    },
    #[error("checking s3://{bucket}/{key}: {detail}")]
    S3 {
        bucket: String,
        key: String,
        detail: String,
    },
}

/// Polls until `key` exists in `bucket`, calling `progress(elapsed)` after
/// each miss; gives up after `timeout`.
pub async fn until_exists(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    timeout: Duration,
    every: Duration,
    progress: &mut dyn FnMut(Duration),
) -> Result<(), WaitError> {
    let start = Instant::now();
    let s3_error = |detail: String| WaitError::S3 {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        detail,
    };
    loop {
        match s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
            Err(e) => {
                return Err(s3_error(
                    aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                ));
            }
        }
        if start.elapsed() + every > timeout {
            return Err(WaitError::TimedOut {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                seconds: timeout.as_secs(),
            });
        }
        progress(start.elapsed());
        tokio::time::sleep(every).await;
    }
}

/// Where `--download TARGET` saves `key`: TARGET itself, or, when TARGET is a
/// directory (existing, or written with a trailing `/`), the key's file name in it.
pub fn download_path(target: &std::path::Path, key: &str) -> std::path::PathBuf {
    let is_dir = target.is_dir() || target.as_os_str().to_string_lossy().ends_with('/');
    if !is_dir {
        return target.to_path_buf();
    }
    let name = key.rsplit('/').next().unwrap_or(key);
    target.join(name)
}

/// Downloads `key` to `file`; returns the number of bytes.
pub async fn download(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    file: &std::path::Path,
) -> anyhow::Result<usize> {
    use anyhow::Context;
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("downloading s3://{bucket}/{key}"))?;
    let bytes = out
        .body
        .collect()
        .await
        .with_context(|| format!("reading s3://{bucket}/{key}"))?
        .into_bytes();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(file, &bytes).with_context(|| format!("writing {}", file.display()))?;
    Ok(bytes.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn download_into_a_directory_uses_the_keys_file_name() {
        use std::path::Path;
        let key = "11/images/abc-123.png";
        assert_eq!(
            super::download_path(Path::new("out.png"), key),
            Path::new("out.png")
        );
        assert_eq!(
            super::download_path(Path::new("target/images/"), key),
            Path::new("target/images/abc-123.png")
        );
        let dir = std::env::temp_dir();
        assert_eq!(super::download_path(&dir, key), dir.join("abc-123.png"));
    }
}
