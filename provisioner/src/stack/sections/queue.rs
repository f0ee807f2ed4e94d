//! `queue:` — the prompts queue (SQS): its raw form and defaults, and its
//! limits (SQS API reference: visibility timeout 0..=43,200 s, retention
//! 60..=1,209,600 s, maxReceiveCount up to 1,000).
use super::{Converting, Section, range};
use crate::stack::{Queue, Stack};

/// As written in the file: the section's typed form itself.
pub type Raw = Queue;

/// The section's defaults.
impl Default for Queue {
    fn default() -> Self {
        Queue {
            visibility_timeout_seconds: 180,
            message_retention_seconds: 345_600,
            max_receive_count: 3,
            burst: crate::stack::capacity::DEFAULT_BURST,
        }
    }
}

/// Read as written: the typed section is its own raw form.
impl Section for Queue {
    type Typed = Queue;
    fn placeholder() -> Queue {
        Queue::default()
    }
    fn typed(self, _: &mut Converting<'_>) -> Queue {
        self
    }
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    let q = &s.queue;
    range(
        out,
        "queue.visibility_timeout_seconds",
        q.visibility_timeout_seconds,
        0,
        43_200,
        "an SQS visibility timeout",
    );
    range(
        out,
        "queue.message_retention_seconds",
        q.message_retention_seconds,
        60,
        1_209_600,
        "an SQS retention period",
    );
    range(
        out,
        "queue.max_receive_count",
        q.max_receive_count,
        1,
        1000 - couch_contract::queues::THROTTLED_RECEIVES,
        "the receives for failures other than throttling (SQS's maxReceiveCount, at most 1000, adds the worker's throttled receives)",
    );
    if q.burst == 0 {
        out.push((
            "queue.burst".into(),
            "0 is out of range: the burst of prompts the stack is sized for must be 1 or more"
                .into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::stack::validate::tests::*;

    #[test]
    fn visibility_timeout_range() {
        one_problem(
            "queue:",
            "queue:  { visibility_timeout_seconds: 43201 }",
            "queue.visibility_timeout_seconds",
            "0..=43200",
        );
    }

    #[test]
    fn retention_range() {
        one_problem(
            "queue:",
            "queue:  { message_retention_seconds: 59 }",
            "queue.message_retention_seconds",
            "60..=1209600",
        );
        one_problem(
            "queue:",
            "queue:  { message_retention_seconds: 1209601 }",
            "queue.message_retention_seconds",
            "60..=1209600",
        );
    }

    #[test]
    fn max_receive_count_range() {
        one_problem(
            "queue:",
            "queue:  { max_receive_count: 0 }",
            "queue.max_receive_count",
            "1..=950",
        );
        // SQS's maxReceiveCount (1000 at most) also holds the 50 throttled receives.
        one_problem(
            "queue:",
            "queue:  { max_receive_count: 951 }",
            "queue.max_receive_count",
            "1..=950",
        );
    }
}
