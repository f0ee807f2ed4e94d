//! `deploy:` — how a new version takes traffic: the strategy (a closed
//! set, [`Strategy`]), its steps, the versions kept.
use serde::Deserialize;

use super::{Converting, Section, closed};
use crate::stack::{Deploy, Stack, Strategy};

/// The longest step of a shift: an hour (a `provisioner apply` waits it out).
pub const MAX_INTERVAL_SECONDS: u32 = 3600;

/// At most this many old versions kept per function (each holds a copy of
/// the zip in Lambda's code storage).
pub const MAX_KEPT_VERSIONS: u32 = 50;

/// As written in the file; absent keys take their defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Raw {
    pub keep_versions: u32,
    pub strategy: String,
    pub percent: u32,
    pub interval_seconds: u32,
    pub alarms: Vec<String>,
}

impl Default for Raw {
    fn default() -> Self {
        let d = Deploy::default();
        Raw {
            keep_versions: d.keep_versions,
            strategy: d.strategy.word().into(),
            percent: d.percent,
            interval_seconds: d.interval_seconds,
            alarms: d.alarms,
        }
    }
}

impl Section for Raw {
    type Typed = Deploy;
    fn placeholder() -> Raw {
        Raw::default()
    }
    /// The typed section; a strategy no word names is a problem.
    fn typed(self, c: &mut Converting<'_>) -> Deploy {
        let words = &mut *c.problems;
        Deploy {
            keep_versions: self.keep_versions,
            strategy: closed(
                words,
                "deploy.strategy",
                &self.strategy,
                Strategy::parse,
                Strategy::ALL.map(Strategy::word),
                "",
            )
            .unwrap_or(Strategy::AllAtOnce),
            percent: self.percent,
            interval_seconds: self.interval_seconds,
            alarms: self.alarms,
        }
    }
}

/// Its limits.
pub fn check(s: &Stack, out: &mut Vec<(String, String)>) {
    if !(1..=MAX_KEPT_VERSIONS).contains(&s.deploy.keep_versions) {
        out.push((
            "deploy.keep_versions".into(),
            format!(
                "{} is not between 1 and {MAX_KEPT_VERSIONS} (the versions kept to roll back to)",
                s.deploy.keep_versions
            ),
        ));
    }

    let d = &s.deploy;
    if d.strategy != Strategy::AllAtOnce && !(1..=99).contains(&d.percent) {
        out.push((
            "deploy.percent".into(),
            format!(
                "{} is not between 1 and 99 (the new version's share of invocations)",
                d.percent
            ),
        ));
    }
    if !(1..=MAX_INTERVAL_SECONDS).contains(&d.interval_seconds) {
        out.push((
            "deploy.interval_seconds".into(),
            format!(
                "{} is not between 1 and {MAX_INTERVAL_SECONDS}",
                d.interval_seconds
            ),
        ));
    }
    // CloudWatch alarm names: 1 to 255 characters (PutMetricAlarm).
    for name in &d.alarms {
        if name.trim().is_empty() || name.chars().count() > 255 {
            out.push((
                "deploy.alarms".into(),
                format!("{name:?} is not an alarm name (1 to 255 characters)"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::stack::validate::tests::*;

    #[test]
    fn deploy_strategies_are_checked() {
        one_problem(
            "deploy:",
            "deploy: { strategy: blue_green }",
            "deploy.strategy",
            "not one of all_at_once, canary, linear",
        );
        one_problem(
            "deploy:",
            "deploy: { strategy: canary, percent: 100 }",
            "deploy.percent",
            "between 1 and 99",
        );
        one_problem(
            "deploy:",
            "deploy: { strategy: linear, interval_seconds: 0 }",
            "deploy.interval_seconds",
            "between 1 and 3600",
        );
        one_problem(
            "deploy:",
            "deploy: { alarms: [\"\"] }",
            "deploy.alarms",
            "not an alarm name",
        );
        let d = |strategy: &str, percent| crate::stack::Deploy {
            strategy: crate::stack::Strategy::parse(strategy).unwrap(),
            percent,
            ..crate::stack::Deploy::default()
        };
        assert_eq!(d("all_at_once", 10).steps(), [100]);
        assert_eq!(d("canary", 10).steps(), [10, 100]);
        assert_eq!(d("linear", 30).steps(), [30, 60, 90, 100]);
        assert_eq!(d("linear", 50).steps(), [50, 100]);
    }

    #[test]
    fn kept_versions_are_bounded() {
        one_problem(
            "deploy:",
            "deploy: { keep_versions: 0 }",
            "deploy.keep_versions",
            "between 1 and 50",
        );
        one_problem(
            "deploy:",
            "deploy: { keep_version: 3 }",
            "deploy.keep_version",
            "unknown field",
        );
    }
}
