//! `alarm:` — the prompt-age alarm and who it e-mails (CloudWatch's
//! period rule, its 7-day evaluation range; a valid address).
use serde::Deserialize;

use super::{Converting, Section, check_period, is_email};
use crate::stack::{Alarm, Stack};

/// As written in the file; absent keys take their defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default = "default_threshold")]
    pub threshold_seconds: u32,
    #[serde(default = "default_period")]
    pub period_seconds: u32,
    #[serde(default = "default_evaluation_periods")]
    pub evaluation_periods: u32,
    pub email: String,
}

fn default_threshold() -> u32 {
    120
}
fn default_period() -> u32 {
    60
}
fn default_evaluation_periods() -> u32 {
    2
}

impl Section for Raw {
    type Typed = Alarm;
    /// What stands in for a wrong section, so the others are still checked.
    fn placeholder() -> Raw {
        Raw {
            threshold_seconds: default_threshold(),
            period_seconds: default_period(),
            evaluation_periods: default_evaluation_periods(),
            email: "placeholder@example.com".into(),
        }
    }
    fn typed(self, _: &mut Converting<'_>) -> Alarm {
        Alarm {
            threshold_seconds: self.threshold_seconds,
            period_seconds: self.period_seconds,
            evaluation_periods: self.evaluation_periods,
            email: self.email,
        }
    }
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    let a = &s.alarm;
    check_period(out, "alarm.period_seconds", a.period_seconds);
    if a.evaluation_periods == 0 {
        out.push((
            "alarm.evaluation_periods".into(),
            "must be at least 1".into(),
        ));
    } else if u64::from(a.evaluation_periods) * u64::from(a.period_seconds) > 86_400 * 7 {
        out.push((
            "alarm.evaluation_periods".into(),
            format!(
                "{} x {} s is more than CloudWatch's 7-day evaluation range",
                a.evaluation_periods, a.period_seconds
            ),
        ));
    }
    if a.threshold_seconds == 0 {
        out.push((
            "alarm.threshold_seconds".into(),
            "must be at least 1 (0 would alarm on every message)".into(),
        ));
    }
    if !is_email(&a.email) {
        out.push((
            "alarm.email".into(),
            format!("{:?} is not a valid e-mail address", a.email),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::stack::parse;
    use crate::stack::validate::tests::*;
    use std::path::Path;

    #[test]
    fn alarm_period() {
        for ok in ["10", "30", "60", "300"] {
            let text = GOOD.replace("period_seconds: 60", &format!("period_seconds: {ok}"));
            parse(Path::new("x"), &text).unwrap();
        }
        one_problem(
            "alarm:",
            "alarm:  { period_seconds: 45, email: team@example.com }",
            "alarm.period_seconds",
            "multiple of 60",
        );
        one_problem(
            "alarm:",
            "alarm:  { period_seconds: 0, email: team@example.com }",
            "alarm.period_seconds",
            "multiple of 60",
        );
    }

    #[test]
    fn alarm_evaluation_and_threshold() {
        one_problem(
            "alarm:",
            "alarm:  { evaluation_periods: 0, email: team@example.com }",
            "alarm.evaluation_periods",
            "at least 1",
        );
        one_problem(
            "alarm:",
            "alarm:  { threshold_seconds: 0, email: team@example.com }",
            "alarm.threshold_seconds",
            "at least 1",
        );
    }

    #[test]
    fn invalid_emails() {
        for bad in [
            "team",
            "team@",
            "@example.com",
            "team@example",
            "te am@example.com",
            "a@b@c.com",
            "a@-.com.",
        ] {
            one_problem(
                "alarm:",
                &format!("alarm:  {{ email: \"{bad}\" }}"),
                "alarm.email",
                "e-mail",
            );
        }
    }
}
