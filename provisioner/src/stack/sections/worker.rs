//! `worker:` — the worker function and its SQS trigger (Lambda limits:
//! memory 128..=10,240 MB, timeout 1..=900 s; event source batch size up to
//! 10,000, maximum concurrency 2..=1,000).
use serde::Deserialize;

use super::range;
use super::{Converting, Section};
use crate::stack::{Stack, Worker};

/// As written in the file; absent keys take their defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Raw {
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub batch_size: u32,
    pub max_concurrency: Option<u32>,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            memory_mb: 512,
            timeout_seconds: 30,
            batch_size: 10,
            max_concurrency: None,
        }
    }
}

impl Section for Raw {
    type Typed = Worker;
    fn placeholder() -> Raw {
        Raw::default()
    }
    fn typed(self, _: &mut Converting<'_>) -> Worker {
        Worker {
            memory_mb: self.memory_mb,
            timeout_seconds: self.timeout_seconds,
            batch_size: self.batch_size,
            max_concurrency: self
                .max_concurrency
                .unwrap_or(crate::stack::DEFAULT_MAX_CONCURRENCY),
            stated_max_concurrency: self.max_concurrency,
        }
    }
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    let w = &s.worker;
    range(
        out,
        "worker.memory_mb",
        w.memory_mb,
        128,
        10_240,
        "Lambda memory",
    );
    range(
        out,
        "worker.timeout_seconds",
        w.timeout_seconds,
        1,
        900,
        "a Lambda timeout",
    );
    range(
        out,
        "worker.batch_size",
        w.batch_size,
        1,
        10_000,
        "an SQS event source batch size",
    );
    range(
        out,
        "worker.max_concurrency",
        w.max_concurrency,
        2,
        1000,
        "an SQS event source maximum concurrency",
    );
}

#[cfg(test)]
mod tests {
    use crate::stack::validate::tests::*;

    #[test]
    fn batch_size_range() {
        one_problem(
            "worker:",
            "worker: { batch_size: 0 }",
            "worker.batch_size",
            "1..=10000",
        );
        one_problem(
            "worker:",
            "worker: { batch_size: 10001 }",
            "worker.batch_size",
            "1..=10000",
        );
        one_problem(
            "worker:",
            "worker: { batch_size: 100 }",
            "worker.batch_size",
            "batching window",
        );
    }

    #[test]
    fn max_concurrency_range() {
        one_problem(
            "worker:",
            "worker: { max_concurrency: 1 }",
            "worker.max_concurrency",
            "2..=1000",
        );
        one_problem(
            "worker:",
            "worker: { max_concurrency: 1001 }",
            "worker.max_concurrency",
            "2..=1000",
        );
    }
}
