//! `logs:` — the functions' log groups: a retention CloudWatch Logs
//! allows (PutRetentionPolicy) and an application log level (a closed set,
//! [`LogLevel`]).
use serde::Deserialize;

use super::{Converting, Section, closed};
use crate::stack::{LOG_RETENTION_DAYS, LogLevel, Logs, Stack};

/// As written in the file; absent keys take their defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Raw {
    pub retention_days: u32,
    pub level: String,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            retention_days: 30,
            level: LogLevel::Info.word().into(),
        }
    }
}

impl Section for Raw {
    type Typed = Logs;
    fn placeholder() -> Raw {
        Raw::default()
    }
    /// The typed section; a level no word names is a problem.
    fn typed(self, c: &mut Converting<'_>) -> Logs {
        let words = &mut *c.problems;
        Logs {
            retention_days: self.retention_days,
            level: closed(
                words,
                "logs.level",
                &self.level,
                LogLevel::parse,
                LogLevel::ALL.map(LogLevel::word),
                ": each image's line (INFO when stored, WARN when failed) carries its metrics, and Lambda drops lines below the level",
            )
            .unwrap_or(LogLevel::Info),
        }
    }
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    if !LOG_RETENTION_DAYS.contains(&s.logs.retention_days) {
        let allowed: Vec<String> = LOG_RETENTION_DAYS.iter().map(u32::to_string).collect();
        out.push((
            "logs.retention_days".into(),
            format!(
                "{} is not a CloudWatch Logs retention period: use one of {}",
                s.logs.retention_days,
                allowed.join(", ")
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::stack::parse;
    use crate::stack::validate::tests::*;
    use std::path::Path;

    #[test]
    fn log_retention_must_be_one_cloudwatch_allows() {
        let p = one_problem(
            "logs:",
            "logs:   { retention_days: 31, level: info }",
            "logs.retention_days",
            "31 is not a CloudWatch Logs retention period: use one of 1, 3, 5, 7, 14, 30",
        );
        assert_eq!(p.line, 10);
        let s = parse(
            Path::new("x"),
            &GOOD.replace("retention_days: 30", "retention_days: 3653"),
        )
        .unwrap();
        assert_eq!(s.logs.retention_days, 3653);
        // Absent: 30 days.
        let s = parse(
            Path::new("x"),
            &GOOD.replace("logs:   { retention_days: 30 }\n", ""),
        )
        .unwrap();
        assert_eq!(s.logs.retention_days, 30);
        one_problem(
            "logs:",
            "logs:   { retention: 30 }",
            "logs.retention",
            "unknown field",
        );
    }

    #[test]
    fn log_levels_keep_the_image_lines() {
        one_problem(
            "logs:",
            "logs:   { retention_days: 30, level: warn }",
            "logs.level",
            "\"warn\" is not one of trace, debug, info",
        );
    }
}
