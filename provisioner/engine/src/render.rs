//! A plan as text for a terminal, JSON for programs and Markdown for a GitHub
//! job summary. All three are functions of the [`Plan`] value.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::diff::FieldChange;
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
            let _ = writeln!(out, "        {}", field_line(c.action, f));
        }
    }
    if !plan.permission_changes.is_empty() {
        let _ = writeln!(out, "\n{}", permission_heading(plan));
        for c in &plan.permission_changes {
            let _ = writeln!(out, "  {}", permission_changes::line(c));
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
    for c in &plan.changes {
        let fields: Vec<String> = c
            .fields
            .iter()
            .map(|f| format!("`{}`", field_line(c.action, f).replace('|', "\\|")))
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
