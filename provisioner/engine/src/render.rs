//! A plan as text for a terminal, JSON for programs and Markdown for a GitHub
//! job summary. All three are functions of the [`Plan`] value.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::diff::FieldChange;
use super::json_lines;
use super::permission_changes::{self, PermissionChange};
use super::plan::{Action, Plan};
use super::refs::UNKNOWN;

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn show_after(f: &FieldChange) -> String {
    match &f.after {
        Some(v) => show(v),
        None => UNKNOWN.into(),
    }
}

fn field_line(action: Action, f: &FieldChange) -> String {
    match action {
        Action::Create => format!("+ {} = {}", f.path, show_after(f)),
        Action::Delete => format!("- {} = {}", f.path, show(&f.before)),
        _ => {
            if f.before.is_null() {
                format!("+ {} = {}", f.path, show_after(f))
            } else if f.after == Some(Value::Null) {
                format!("- {} = {}", f.path, show(&f.before))
            } else {
                format!("~ {}: {} -> {}", f.path, show(&f.before), show_after(f))
            }
        }
    }
}

/// A field's change as lines: one line, or, for a JSON value too long for
/// one, a header and the value's structural diff ([`json_lines`]), each
/// line of it indented under the header.
fn field_lines(action: Action, f: &FieldChange) -> Vec<String> {
    let one = field_line(action, f);
    if one.chars().count() <= json_lines::WIDTH {
        return vec![one];
    }
    let shown = |v: &Value| -> Option<Value> {
        (!v.is_null()).then(|| json_lines::structured(v).unwrap_or_else(|| v.clone()))
    };
    let before = shown(&f.before);
    let after = f.after.as_ref().and_then(shown);
    let (header, before, after) = match (action, &f.after) {
        (Action::Create, _) => (format!("+ {} =", f.path), None, after),
        (Action::Delete, _) => (format!("- {} =", f.path), before, None),
        // Not known until apply: what it was.
        (_, None) => (
            format!("~ {}: (known after apply), was", f.path),
            before,
            None,
        ),
        _ if before.is_none() => (format!("+ {} =", f.path), None, after),
        _ if after.is_none() => (format!("- {} =", f.path), before, None),
        _ => (format!("~ {}:", f.path), before, after),
    };
    if before
        .iter()
        .chain(after.iter())
        .all(|v| json_lines::structured(v).is_none())
    {
        // A long string or number: one line, cut.
        return vec![json_lines::cut(&one)];
    }
    std::iter::once(header)
        .chain(
            json_lines::change(before.as_ref(), after.as_ref())
                .into_iter()
                .map(|l| format!("    {l}")),
        )
        .collect()
}

/// The one-line summary, Terraform style (a replacement adds one and destroys one).
pub fn summary_line(plan: &Plan) -> String {
    if !plan.has_changes() {
        return "No changes.".into();
    }
    let s = plan.summary;
    let replace = if s.replace > 0 {
        format!(" ({} replaced)", s.replace)
    } else {
        String::new()
    };
    format!(
        "Plan: {} to add, {} to change, {} to destroy.{replace}",
        s.create + s.replace,
        s.update,
        s.delete + s.replace
    )
}

/// Human-readable plan: one line per resource, its changed fields, then the summary.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let width = plan
        .changes
        .iter()
        .map(|c| c.address.len())
        .max()
        .unwrap_or(0);
    let kind_width = plan
        .changes
        .iter()
        .map(|c| c.kind.len())
        .max()
        .unwrap_or(0)
        .max(16);
    for c in &plan.changes {
        let note = match c.action {
            Action::NoOp if c.referenced => "(referenced, not managed)",
            Action::NoOp => "(no changes)",
            Action::NotOwned => "(exists, not owned by this stack)",
            Action::Replace => "(must be replaced)",
            _ => "",
        };
        let line = format!(
            "{:>3} {:<width$}  {:<kind_width$} {} {}",
            c.action.symbol(),
            c.address,
            c.kind,
            c.name,
            note
        );
        let _ = writeln!(out, "{}", line.trim_end());
        for f in &c.fields {
            for line in field_lines(c.action, f) {
                let _ = writeln!(out, "        {line}");
            }
        }
    }
    if !plan.permission_changes.is_empty() {
        let _ = writeln!(out, "\n{}", permission_heading(plan));
        for c in &plan.permission_changes {
            // A long line wraps under itself instead of running past the screen.
            for line in json_lines::wrap_words(&format!("  {}", permission_changes::line(c)), 4) {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "\nWarning: {w}");
    }
    for p in &plan.problems {
        let _ = writeln!(out, "\nError: {p}");
    }
    let _ = writeln!(out, "\n{}", summary_line(plan));
    out
}

/// `Permission changes (3, 2 broadening):`.
pub fn permission_heading(plan: &Plan) -> String {
    let broadening = plan.broadening().count();
    let n = plan.permission_changes.len();
    if broadening == 0 {
        format!("Permission changes ({n}, none broadening):")
    } else {
        format!("Permission changes ({n}, {broadening} broadening):")
    }
}

fn cell(v: &[String]) -> String {
    if v.is_empty() {
        String::new()
    } else {
        v.iter()
            .map(|s| format!("`{}`", s.replace('|', "\\|")))
            .collect::<Vec<_>>()
            .join("<br>")
    }
}

fn permission_row(c: &PermissionChange) -> String {
    let p = &c.permission;
    let conditions: Vec<String> = p
        .conditions
        .iter()
        .map(permission_changes::condition)
        .collect();
    format!(
        "| `{}`{} | `{}` | {} | {} | {} | {} | {} | {} |",
        c.change.symbol(),
        if c.broadening { " **broadening**" } else { "" },
        c.address,
        p.document,
        p.effect,
        cell(&p.actions),
        cell(&p.resources),
        cell(&p.principals),
        cell(&conditions)
    )
}

/// The JSON plan's format version: a saved plan of another version is
/// refused (`saved::SavedPlan::parse`). Raise it when a key changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// The JSON plan (`plan --json`, `plan --out`): its keys are documented in
/// docs/reference/plan-json.md.
pub fn json(plan: &Plan) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "stack": plan.stack,
        "changes": plan.changes,
        "summary": plan.summary,
        "problems": plan.problems,
        "warnings": plan.warnings,
        "permission_changes": plan.permission_changes,
    })
}

/// Markdown for `$GITHUB_STEP_SUMMARY`.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!("### Plan for stack `{}`\n\n", plan.stack);
    out.push_str("| | address | kind | name | changes |\n|---|---|---|---|---|\n");
    // JSON values too long for a cell: their structural diffs after the table.
    let mut details = String::new();
    for c in &plan.changes {
        let fields: Vec<String> = c
            .fields
            .iter()
            .map(|f| {
                let lines = field_lines(c.action, f);
                if lines.len() > 1 {
                    let _ = write!(
                        details,
                        "\n<details><summary><code>{}</code> <code>{}</code></summary>\n\n```diff\n{}\n```\n</details>\n",
                        c.address,
                        f.path,
                        lines[1..].iter().map(|l| l.trim_start_matches("    ")).collect::<Vec<_>>().join("\n")
                    );
                }
                format!("`{}`", json_lines::cut(&lines[0]).replace('|', "\\|"))
            })
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | `{}` | {} |",
            c.action.symbol(),
            c.address,
            c.kind,
            c.name,
            fields.join("<br>")
        );
    }
    out.push_str(&details);
    if !plan.permission_changes.is_empty() {
        let _ = writeln!(
            out,
            "\n#### {}\n",
            permission_heading(plan).trim_end_matches(':')
        );
        out.push_str("| | resource | document | effect | actions | resources | principals | conditions |\n|---|---|---|---|---|---|---|---|\n");
        for c in &plan.permission_changes {
            let _ = writeln!(out, "{}", permission_row(c));
        }
    }
    for p in &plan.problems {
        let _ = writeln!(out, "\n> **Error:** {p}");
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "\n> **Warning:** {w}");
    }
    let _ = writeln!(out, "\n**{}**", summary_line(plan));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(actions: &[&str]) -> Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Queue", "Effect": "Allow", "Action": actions, "Resource": "arn:aws:sqs:eu-west-1:111122223333:couch-prod-prompts"},
            {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/couch-prod-worker:*"}
        ]})
    }

    #[test]
    fn a_changed_policy_reads_as_its_changed_lines_under_the_field() {
        let f = FieldChange {
            path: "policy".into(),
            before: policy(&["sqs:ReceiveMessage"]),
            after: Some(policy(&["sqs:ReceiveMessage", "sqs:DeleteMessage"])),
        };
        let lines = field_lines(Action::Update, &f);
        assert_eq!(lines[0], "~ policy:");
        let changed: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.trim_start())
            .filter(|l| l.starts_with(['+', '-']))
            .collect();
        assert_eq!(changed.len(), 3, "{lines:#?}");
        assert!(changed[0].starts_with('-') && changed[0].contains("\"sqs:ReceiveMessage\""));
        assert!(changed[2].starts_with('+') && changed[2].contains("sqs:DeleteMessage"));
        // The unchanged statement is elided with a count.
        assert!(
            lines.iter().any(|l| l.contains("unchanged lines")),
            "{lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("logs:PutLogEvents")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() <= json_lines::WIDTH + 8),
            "{lines:#?}"
        );
    }

    #[test]
    fn short_values_and_unknown_ones_stay_on_one_line() {
        let tags = FieldChange {
            path: "tags".into(),
            before: Value::Null,
            after: Some(json!({"stack": "couch-prod"})),
        };
        assert_eq!(
            field_lines(Action::Create, &tags),
            ["+ tags = {\"stack\":\"couch-prod\"}"]
        );
        let unknown = FieldChange {
            path: "redrive_policy".into(),
            before: Value::Null,
            after: None,
        };
        assert_eq!(field_lines(Action::Create, &unknown).len(), 1);
    }

    #[test]
    fn the_job_summary_keeps_the_table_and_shows_the_diff_below_it() {
        let plan = Plan {
            stack: "s".into(),
            changes: vec![crate::plan::Change {
                address: "role.worker".into(),
                kind: "iam-role".into(),
                name: "s-worker".into(),
                action: Action::Update,
                fields: vec![FieldChange {
                    path: "policy".into(),
                    before: policy(&["sqs:ReceiveMessage"]),
                    after: Some(policy(&["sqs:DeleteMessage"])),
                }],
                referenced: false,
                depends_on: Default::default(),
                duplicate_of: None,
            }],
            summary: Default::default(),
            problems: vec![],
            warnings: vec![],
            permission_changes: vec![],
        };
        let md = markdown(&plan);
        assert!(
            md.contains("| `~` | `role.worker` | iam-role | `s-worker` | `~ policy:` |"),
            "{md}"
        );
        assert!(
            md.contains("<details><summary><code>role.worker</code> <code>policy</code></summary>"),
            "{md}"
        );
        assert!(
            md.contains("```diff\n") && md.contains("\n-         \"sqs:ReceiveMessage\""),
            "{md}"
        );
        // The JSON plan keeps the values.
        assert_eq!(
            json(&plan)["changes"][0]["fields"][0]["after"],
            policy(&["sqs:DeleteMessage"])
        );
    }
}
