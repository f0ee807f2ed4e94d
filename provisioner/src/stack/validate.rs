//! Semantic checks on a parsed stack: AWS's own limits and the project's rules.
//! Returns `(key path, what is wrong)` pairs; the caller locates them.

use super::Stack;
use super::sections;

/// AWS region names look like `eu-west-1`, `us-gov-west-1`, `ap-southeast-4`.
pub(super) fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

pub(super) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && s.chars().all(|c| c.is_ascii_graphic())
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// A key prefix the roles' policies can hold the functions to: segments of
/// `[A-Za-z0-9._-]` joined by single `/`, none `.` or `..`, no leading or
/// trailing `/`. Policies name `{prefix}/images/*` in an S3 ARN, where `*`
/// and `?` are wildcards (IAM user guide, "IAM JSON policy elements:
/// Resource"): a prefix holding one would grant keys outside it; and `..`
/// is what a reader of a key would take for "the folder above".
pub fn check_prefix(p: &str) -> Result<(), String> {
    let segment_ok = |seg: &str| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if p.is_empty() || p.len() > 512 || !p.split('/').all(segment_ok) {
        return Err(format!(
            "{p:?} is not a usable key prefix: 1..=512 characters, segments of letters, digits, '.', '_', '-' joined by single '/' (no '*', '?', '..', no leading or trailing '/')"
        ));
    }
    Ok(())
}

pub(super) fn range(
    out: &mut Vec<(String, String)>,
    path: &str,
    v: u32,
    min: u32,
    max: u32,
    what: &str,
) {
    if v < min || v > max {
        out.push((
            path.into(),
            format!("{v} is out of range: {what} must be {min}..={max}"),
        ));
    }
}

/// Physical names longer than their AWS limit: `(kind, name, limit)` → messages.
pub fn too_long(names: &[(&str, String, usize)]) -> Vec<String> {
    names
        .iter()
        .filter(|(_, name, limit)| name.len() > *limit)
        .map(|(kind, name, limit)| {
            format!(
                "makes the {kind} name {name:?} {} characters long; AWS allows {limit}",
                name.len()
            )
        })
        .collect()
}

/// CloudWatch's rule for an alarm's period (PutMetricAlarm: 10, 30 or a
/// multiple of 60 seconds; at most a day).
pub(super) fn check_period(out: &mut Vec<(String, String)>, path: &str, period: u32) {
    if period != 10 && period != 30 && (period == 0 || !period.is_multiple_of(60)) {
        out.push((
            path.into(),
            format!("{period} is not a CloudWatch alarm period: use 10, 30 or a multiple of 60"),
        ));
    } else if period > 86_400 {
        out.push((
            path.into(),
            format!("{period} is longer than one day (86400)"),
        ));
    }
}

pub fn validate(s: &Stack) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();

    let name_ok = (3..=24).contains(&s.name.len())
        && s.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.name.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.name.ends_with('-');
    if !name_ok {
        out.push((
            "name".into(),
            format!(
                "{:?} is not a valid stack name: 3 to 24 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'",
                s.name
            ),
        ));
    } else {
        // With 24 characters every current name fits; this guards the names
        // later kinds add (Lambda functions and IAM roles allow only 64).
        out.extend(
            too_long(&s.physical_names())
                .into_iter()
                .map(|m| ("name".to_owned(), m)),
        );
    }
    if !is_region(&s.region) {
        out.push((
            "region".into(),
            format!("{:?} is not an AWS region name (e.g. eu-west-1)", s.region),
        ));
    }
    sections::check_all(s, &mut out);
    let sane_inputs = out
        .iter()
        .all(|(k, _)| !k.starts_with("model.") && k != "worker.batch_size");
    if sane_inputs && let Err((key, why)) = s.capacity() {
        out.push((key, why));
    }

    let (w, q) = (&s.worker, &s.queue);
    if (11..=10_000).contains(&w.batch_size) {
        out.push((
            "worker.batch_size".into(),
            format!("{} needs a batching window (maximum_batching_window_in_seconds), which this stack format does not declare: use 1..=10", w.batch_size),
        ));
    }

    if q.visibility_timeout_seconds < w.timeout_seconds {
        out.push((
            "queue.visibility_timeout_seconds".into(),
            format!(
                "{} is shorter than worker.timeout_seconds ({}): Lambda rejects such an SQS trigger; use at least 6 x {} = {}",
                q.visibility_timeout_seconds, w.timeout_seconds, w.timeout_seconds, 6 * w.timeout_seconds
            ),
        ));
    } else if u64::from(q.visibility_timeout_seconds) < 6 * u64::from(w.timeout_seconds) {
        out.push((
            "queue.visibility_timeout_seconds".into(),
            format!(
                "{} is less than 6 x worker.timeout_seconds ({}) = {}, AWS's guidance for queues read by Lambda (retries would redeliver messages still being processed)",
                q.visibility_timeout_seconds, w.timeout_seconds, 6 * w.timeout_seconds
            ),
        ));
    }

    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use crate::stack::{Problem, parse};

    pub(crate) const GOOD: &str = "name: couch-prod
region: eu-west-1
images: { bucket: pgr301-couch-explorers, prefix: \"11\" }
model:  { id: stability.stable-image-core-v1:1, region: us-west-2 }
queue:  { visibility_timeout_seconds: 180, message_retention_seconds: 345600, max_receive_count: 3 }
worker: { memory_mb: 512, timeout_seconds: 30, batch_size: 10, max_concurrency: 5 }
http:   { memory_mb: 512, timeout_seconds: 29 }
alarm:  { threshold_seconds: 120, period_seconds: 60, evaluation_periods: 2, email: team@example.com }
alarms: { period_seconds: 60, dlq_messages: 0, failed_images: 5, function_errors: 0, function_throttles: 0, api_5xx: 0 }
logs:   { retention_days: 30, level: info }
deploy: { keep_versions: 3 }
tags:   { team: couch-explorers }
";

    pub(crate) fn problems(text: &str) -> Vec<Problem> {
        match parse(Path::new("stacks/t.yaml"), text) {
            Ok(s) => panic!("expected problems, got {s:?}"),
            Err(e) => e.problems().to_vec(),
        }
    }

    /// Replaces one line of GOOD (by its key) and expects exactly one problem at `path`.
    pub(crate) fn one_problem(line_key: &str, new_line: &str, path: &str, needle: &str) -> Problem {
        let text: String = GOOD
            .lines()
            .map(|l| {
                if l.starts_with(line_key) {
                    new_line.to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let ps = problems(&text);
        assert_eq!(ps.len(), 1, "{ps:#?}");
        let p = &ps[0];
        assert_eq!(p.path, path, "{p}");
        assert!(p.message.contains(needle), "{p} should contain {needle:?}");
        assert_eq!(p.file, Path::new("stacks/t.yaml"));
        let expected_line = text.lines().position(|l| l == new_line).map(|i| i + 1);
        if let Some(l) = expected_line {
            assert_eq!(p.line, l, "{p}");
        }
        p.clone()
    }

    #[test]
    fn the_seed_stack_parses_with_its_values() {
        let s = parse(Path::new("x.yaml"), GOOD).unwrap();
        assert_eq!(s.name, "couch-prod");
        assert_eq!(s.images.prefix, "11");
        assert_eq!(s.queue.visibility_timeout_seconds, 180);
        assert_eq!(s.alarm.threshold_seconds, 120);
        assert_eq!(s.tags["team"], "couch-explorers");
        assert_eq!(s.queue_name(), "couch-prod-prompts");
        assert_eq!(s.dlq_name(), "couch-prod-prompts-dlq");
    }

    #[test]
    fn defaults_fill_everything_but_name_images_and_email() {
        let s = parse(
            Path::new("x.yaml"),
            "name: tiny\nimages: { bucket: b-1, prefix: p }\nalarm: { email: a@b.co }\n",
        )
        .unwrap();
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.model.id, "stability.stable-image-core-v1:1");
        assert_eq!(s.model.region, "us-west-2");
        assert!(s.model.routes_to.is_empty());
        assert_eq!(s.queue.visibility_timeout_seconds, 180);
        assert_eq!(s.queue.max_receive_count, 3);
        assert_eq!(s.worker.timeout_seconds, 30);
        assert_eq!(s.worker.batch_size, 10);
        assert_eq!(s.http.timeout_seconds, 29);
        assert_eq!(s.alarm.threshold_seconds, 120);
        assert_eq!(s.alarm.period_seconds, 60);
        assert!(s.tags.is_empty());
    }

    #[test]
    fn required_keys_are_reported_together() {
        let ps = problems("region: eu-west-1\n");
        let paths: Vec<_> = ps.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["name", "images", "alarm"], "{ps:#?}");
        assert!(ps.iter().all(|p| p.message.contains("required")));
    }

    #[test]
    fn missing_email_is_located_in_its_section() {
        let p = one_problem(
            "alarm:",
            "alarm:  { threshold_seconds: 120 }",
            "alarm.email",
            "required",
        );
        assert_eq!(p.line, 8);
    }

    #[test]
    fn yaml_syntax_error_has_a_line() {
        let ps = problems("name: a\nimages: { bucket: b\nalarm: [\n");
        assert_eq!(ps.len(), 1);
        assert!(ps[0].message.contains("not valid YAML"), "{}", ps[0]);
        assert!(ps[0].line >= 2, "{}", ps[0]);
    }

    #[test]
    fn not_a_mapping() {
        let ps = problems("- a\n- b\n");
        assert!(ps[0].message.contains("mapping"));
    }

    #[test]
    fn unknown_top_level_key() {
        one_problem(
            "tags:",
            "tagz:   { team: couch-explorers }",
            "tagz",
            "unknown key",
        );
    }

    #[test]
    fn unknown_nested_key() {
        one_problem(
            "http:",
            "http:   { memory_mb: 512, timeout: 29 }",
            "http.timeout",
            "unknown field",
        );
    }

    #[test]
    fn wrong_type() {
        one_problem(
            "queue:",
            "queue:  { visibility_timeout_seconds: soon }",
            "queue.visibility_timeout_seconds",
            "invalid type",
        );
    }

    #[test]
    fn negative_number_is_a_type_error() {
        one_problem(
            "worker:",
            "worker: { memory_mb: -1 }",
            "worker.memory_mb",
            "invalid value",
        );
    }

    #[test]
    fn bad_names() {
        for bad in [
            "ab",
            "Couch",
            "couch_prod",
            "-couch",
            "couch-",
            "a-very-long-stack-name-indeed",
        ] {
            let p = one_problem(
                "name:",
                &format!("name: {bad}"),
                "name",
                "not a valid stack name",
            );
            assert_eq!(p.line, 1);
        }
    }

    #[test]
    fn physical_names_over_the_aws_limit() {
        let long = format!("{}-image-worker-role", "n".repeat(50));
        assert_eq!(long.len(), 68);
        let msgs = super::too_long(&[
            ("IAM role", long.clone(), 64),
            ("SQS queue", "ok".into(), 80),
        ]);
        assert_eq!(msgs.len(), 1);
        assert!(
            msgs[0].contains("IAM role")
                && msgs[0].contains("68 characters")
                && msgs[0].contains("AWS allows 64"),
            "{msgs:?}"
        );
        // Every name a valid stack name can make fits.
        let s = parse(
            Path::new("x"),
            &GOOD.replace("name: couch-prod", "name: abcdefghijklmnopqrstuvwx"),
        )
        .unwrap();
        assert!(super::too_long(&s.physical_names()).is_empty());
    }

    #[test]
    fn name_flag_overrides_the_file_and_is_checked_the_same_way() {
        use crate::stack::parse_named;
        let s = parse_named(Path::new("x"), GOOD, Some("couch-pr-42")).unwrap();
        assert_eq!(s.name, "couch-pr-42");
        assert_eq!(s.queue_name(), "couch-pr-42-prompts");
        let without_name = GOOD.replace("name: couch-prod\n", "");
        assert_eq!(
            parse_named(Path::new("x"), &without_name, Some("couch-pr-7"))
                .unwrap()
                .name,
            "couch-pr-7"
        );
        let err = parse_named(Path::new("stacks/t.yaml"), GOOD, Some("PR_42")).unwrap_err();
        let ps = err.problems();
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(
            ps[0].to_string(),
            "--name: \"PR_42\" is not a valid stack name: 3 to 24 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'"
        );
    }

    #[test]
    fn bad_region() {
        one_problem("region:", "region: europe", "region", "not an AWS region");
    }

    /// GOOD with its `model:`, `worker:` and `http:` lines replaced.
    fn with_lines(model: &str, worker: &str, http: &str) -> String {
        GOOD.lines()
            .map(|l| {
                if l.starts_with("model:") {
                    model
                } else if l.starts_with("worker:") {
                    worker
                } else if l.starts_with("http:") {
                    http
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_stated_model_capacity_bounds_the_worker_and_the_http_function_together() {
        const MODEL: &str = "model:  { id: stability.stable-image-core-v1:1, region: us-west-2, max_in_flight: 9, seconds_per_image: 3 }";
        const WORKER: &str = "worker: { timeout_seconds: 30, batch_size: 10 }";
        // 9 calls, 1 reserved for HTTP: the worker gets 8 as 2 instances x 4.
        let s = parse(
            Path::new("stacks/t.yaml"),
            &with_lines(MODEL, WORKER, "http:   { reserved_concurrency: 1 }"),
        )
        .unwrap();
        let c = s.capacity().unwrap();
        assert_eq!((c.instances, c.per_instance), (2, 4));
        assert_eq!(c.images_per_minute(), 160.0);
        assert_eq!(
            c.line(1000),
            "Throughput: at most 160 images a minute (model.max_in_flight 9 less 1 reserved for HTTP: the trigger runs at most 2 worker(s) x 4 call(s), 3 s an image); a burst of 1,000 prompts is drained in about 7 minutes."
        );
        // Without a reservation the HTTP function's calls are unbounded.
        let ps = problems(&with_lines(MODEL, WORKER, "http:   { memory_mb: 512 }"));
        assert_eq!(ps.len(), 1, "{ps:#?}");
        assert_eq!(ps[0].path, "http.reserved_concurrency");
        assert_eq!(ps[0].line, 7, "{}", ps[0]);
        assert!(ps[0].message.contains("model.max_in_flight"), "{}", ps[0]);
        // A sum above the capacity: 8 reserved + the worker's 2 > 9.
        let ps = problems(&with_lines(
            MODEL,
            WORKER,
            "http:   { reserved_concurrency: 8 }",
        ));
        assert_eq!(ps.len(), 1, "{ps:#?}");
        assert_eq!(
            (ps[0].path.as_str(), ps[0].line),
            ("model.max_in_flight", 4)
        );
        assert!(ps[0].message.contains("10 in all exceed it"), "{}", ps[0]);
        // Stated instances take the budget as they are: 8 / 3 = 2 calls each.
        let s = parse(
            Path::new("stacks/t.yaml"),
            &with_lines(
                MODEL,
                "worker: { batch_size: 10, max_concurrency: 3 }",
                "http:   { reserved_concurrency: 1 }",
            ),
        )
        .unwrap();
        let c = s.capacity().unwrap();
        assert_eq!((c.instances, c.per_instance), (3, 2));
        // A requests-per-minute quota sizes the calls by Little's law:
        // 30 a minute at 4 s an image is 2 in flight.
        let s = parse(
            Path::new("stacks/t.yaml"),
            &with_lines(
                "model:  { id: stability.stable-image-core-v1:1, region: us-west-2, images_per_minute: 30, seconds_per_image: 4 }",
                WORKER,
                "http:   { reserved_concurrency: 1 }",
            ),
        );
        let ps = match s {
            Err(crate::stack::StackError::Invalid { problems, .. }) => problems,
            _ => Vec::new(),
        };
        assert_eq!(
            ps.len(),
            1,
            "30 x 4 / 60 = 2 calls, 1 for HTTP, 1 left: the worker needs 2: {ps:#?}"
        );
        assert_eq!(ps[0].path, "model.images_per_minute");
        let s = parse(
            Path::new("stacks/t.yaml"),
            &with_lines(
                "model:  { id: stability.stable-image-core-v1:1, region: us-west-2, images_per_minute: 60, seconds_per_image: 4 }",
                WORKER,
                "http:   { reserved_concurrency: 1 }",
            ),
        )
        .unwrap();
        let c = s.capacity().unwrap();
        assert_eq!(
            (c.model_limit, c.instances, c.per_instance),
            (Some(4), 3, 1)
        );
        assert_eq!(c.images_per_minute(), 45.0);
        for (line, key) in [
            ("model:  { max_in_flight: 1 }", "model.max_in_flight"),
            (
                "model:  { seconds_per_image: 0 }",
                "model.seconds_per_image",
            ),
            (
                "model:  { images_per_minute: 0 }",
                "model.images_per_minute",
            ),
        ] {
            one_problem("model:", line, key, "out of range");
        }
    }

    #[test]
    fn lambda_timeout_and_memory_ranges() {
        one_problem(
            "worker:",
            "worker: { timeout_seconds: 0 }",
            "worker.timeout_seconds",
            "1..=900",
        );
        one_problem(
            "worker:",
            "worker: { memory_mb: 127 }",
            "worker.memory_mb",
            "128..=10240",
        );
        one_problem(
            "http:",
            "http:   { memory_mb: 10241 }",
            "http.memory_mb",
            "128..=10240",
        );
        one_problem(
            "http:",
            "http:   { timeout_seconds: 901 }",
            "http.timeout_seconds",
            "1..=900",
        );
        one_problem(
            "http:",
            "http:   { timeout_seconds: 60 }",
            "http.timeout_seconds",
            "29 s",
        );
    }

    #[test]
    fn visibility_below_six_times_worker_timeout() {
        one_problem(
            "queue:",
            "queue:  { visibility_timeout_seconds: 100 }",
            "queue.visibility_timeout_seconds",
            "6 x worker.timeout_seconds",
        );
    }

    #[test]
    fn visibility_below_worker_timeout_says_lambda_rejects_it() {
        one_problem(
            "queue:",
            "queue:  { visibility_timeout_seconds: 20 }",
            "queue.visibility_timeout_seconds",
            "Lambda rejects",
        );
    }

    #[test]
    fn every_problem_at_once_sorted_by_line() {
        let text = "name: X\nregion: eu-west-1\nimages: { bucket: b-1, prefix: p }\nqueue: { visibility_timeout_seconds: 99999, bogus: 1 }\nworker: { memory_mb: 1 }\nalarm: { email: nope, period_seconds: 7 }\n";
        let ps = problems(text);
        let got: Vec<(usize, &str)> = ps.iter().map(|p| (p.line, p.path.as_str())).collect();
        // queue has an unknown key: that section is reported once, the others are still checked.
        assert_eq!(
            got,
            [
                (1, "name"),
                (4, "queue.bogus"),
                (5, "worker.memory_mb"),
                (6, "alarm.period_seconds"),
                (6, "alarm.email")
            ],
            "{ps:#?}"
        );
        let text = text.replace(", bogus: 1", "");
        let ps = problems(&text);
        let got: Vec<(usize, &str)> = ps.iter().map(|p| (p.line, p.path.as_str())).collect();
        assert_eq!(
            got,
            [
                (1, "name"),
                (4, "queue.visibility_timeout_seconds"),
                (5, "worker.memory_mb"),
                (6, "alarm.period_seconds"),
                (6, "alarm.email"),
            ],
            "{ps:#?}"
        );
        let rendered = crate::stack::StackError::Invalid {
            file: "stacks/t.yaml".into(),
            problems: ps,
        }
        .to_string();
        assert!(
            rendered.contains(
                "stacks/t.yaml:4: queue.visibility_timeout_seconds: 99999 is out of range"
            ),
            "{rendered}"
        );
    }
}
