//! `alarms:` — the loss-and-failure alarms' thresholds and period.
use serde::Deserialize;

use super::check_period;
use crate::stack::{Alarms, Stack};

/// As written in the file; absent keys take their defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Raw {
    pub period_seconds: u32,
    pub dlq_messages: u32,
    pub failed_images: u32,
    pub function_errors: u32,
    pub function_throttles: u32,
    pub api_5xx: u32,
    pub model_throttles: u32,
}

impl Default for Raw {
    fn default() -> Self {
        let d = Alarms::default();
        Raw {
            period_seconds: d.period_seconds,
            dlq_messages: d.dlq_messages,
            failed_images: d.failed_images,
            function_errors: d.function_errors,
            function_throttles: d.function_throttles,
            api_5xx: d.api_5xx,
            model_throttles: d.model_throttles,
        }
    }
}

impl Raw {
    pub fn typed(self) -> Alarms {
        Alarms {
            period_seconds: self.period_seconds,
            dlq_messages: self.dlq_messages,
            failed_images: self.failed_images,
            function_errors: self.function_errors,
            function_throttles: self.function_throttles,
            api_5xx: self.api_5xx,
            model_throttles: self.model_throttles,
        }
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
