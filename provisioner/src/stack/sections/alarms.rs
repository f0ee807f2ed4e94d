//! `alarms:` — the loss-and-failure alarms' thresholds and period.
use super::{Converting, Section, check_period};
use crate::stack::{Alarms, Stack};

/// As written in the file: the section's typed form itself.
pub type Raw = Alarms;

/// Read as written: the typed section is its own raw form.
impl Section for Alarms {
    type Typed = Alarms;
    fn placeholder() -> Alarms {
        Alarms::default()
    }
    fn typed(self, _: &mut Converting<'_>) -> Alarms {
        self
    }
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    check_period(out, "alarms.period_seconds", s.alarms.period_seconds);
    if s.alarms.failed_images == 0 {
        out.push((
            "alarms.failed_images".into(),
            "must be at least 1: a single failed attempt (a throttled call the worker retries) is not a lost image; the DLQ alarm reports those".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::stack::validate::tests::*;

    #[test]
    fn loss_alarms_period_and_failed_images() {
        one_problem(
            "alarms:",
            "alarms: { period_seconds: 45 }",
            "alarms.period_seconds",
            "multiple of 60",
        );
        one_problem(
            "alarms:",
            "alarms: { failed_images: 0 }",
            "alarms.failed_images",
            "at least 1",
        );
        one_problem(
            "alarms:",
            "alarms: { dlq_messages: -1 }",
            "alarms.dlq_messages",
            "expected u32",
        );
    }
}
