//! JSON-valued fields (policies, trust policies, a redrive policy, a
//! dashboard body, an environment) shown for a person, as Terraform shows a
//! `jsonencode` change: pretty-printed, one line per JSON path, nested and
//! aligned; a change as a line diff of the two values (the changed lines,
//! a little context, unchanged runs elided with their count). Changed
//! lines wrap; other long lines are cut with a count of what was left out.
//! Only the text and Markdown renderings use this: the JSON plan keeps the
//! values.

use serde_json::Value;

/// The widest line shown.
pub const WIDTH: usize = 100;
/// Unchanged lines kept on each side of a change.
const CONTEXT: usize = 2;
/// The most lines shown of a value that is added or removed whole.
const MOST: usize = 60;

/// The value as JSON to show structurally: an object or an array, or a
/// string that holds one (a dashboard's body).
pub fn structured(v: &Value) -> Option<Value> {
    match v {
        Value::Object(_) | Value::Array(_) => Some(v.clone()),
        Value::String(s) if s.starts_with(['{', '[']) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(|v| v.is_object() || v.is_array()),
        _ => None,
    }
}

fn pretty(v: &Value) -> Vec<String> {
    serde_json::to_string_pretty(v)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A line cut to [`WIDTH`], with how many characters were left out.
pub fn cut(line: &str) -> String {
    let n = line.chars().count();
    if n <= WIDTH {
        return line.to_owned();
    }
    let kept: String = line.chars().take(WIDTH).collect();
    format!("{kept}… ({} more characters)", n - WIDTH)
}

/// A line wrapped at [`WIDTH`]: continuation lines are indented as the line.
pub fn wrap(line: &str) -> Vec<String> {
    let indent = line.len() - line.trim_start().len();
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= WIDTH {
        return vec![line.to_owned()];
    }
    let mut out = vec![chars[..WIDTH].iter().collect::<String>()];
    let step = WIDTH.saturating_sub(indent + 2).max(20);
    let mut at = WIDTH;
    while at < chars.len() {
        let end = (at + step).min(chars.len());
        out.push(format!(
            "{}↳ {}",
            " ".repeat(indent),
            chars[at..end].iter().collect::<String>()
        ));
        at = end;
    }
    out
}

/// A line of words wrapped at [`WIDTH`] between words; the lines after the
/// first are indented `more` further than it. A word longer than a line
/// stays whole.
pub fn wrap_words(line: &str, more: usize) -> Vec<String> {
    let lead = line.len() - line.trim_start().len();
    let pad = " ".repeat(lead + more);
    let mut out: Vec<String> = Vec::new();
    let mut current = " ".repeat(lead);
    let mut empty = true;
    for word in line.trim_start().split(' ') {
        if !empty && current.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push(std::mem::replace(&mut current, pad.clone()));
            empty = true;
        }
        if !empty {
            current.push(' ');
        }
        current.push_str(word);
        empty = false;
    }
    out.push(current);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Same,
    Removed,
    Added,
}

/// The lines of `a` and `b` as a shortest edit (longest common subsequence).
fn line_diff<'a>(a: &'a [String], b: &'a [String]) -> Vec<(Mark, &'a str)> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: the common subsequence's length of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n.max(m));
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push((Mark::Same, a[i].as_str()));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // What goes first, as `diff` shows it.
            out.push((Mark::Removed, a[i].as_str()));
            i += 1;
        } else {
            out.push((Mark::Added, b[j].as_str()));
            j += 1;
        }
    }
    out
}

/// A JSON value's change as lines to print under its field: each starts
/// with `+ `, `- ` or two blanks; `None` on one side is a value added or
/// removed whole (cut after [`MOST`] lines, with the count left out).
pub fn change(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let a = before.map(pretty).unwrap_or_default();
    let b = after.map(pretty).unwrap_or_default();
    if a.is_empty() || b.is_empty() {
        let (mark, lines) = if a.is_empty() { ("+", b) } else { ("-", a) };
        let total = lines.len();
        let mut out: Vec<String> = lines
            .iter()
            .take(MOST)
            .map(|l| format!("{mark} {}", cut(l)))
            .collect();
        if total > MOST {
            out.push(format!("  … {} more lines", total - MOST));
        }
        return out;
    }
    let edits = line_diff(&a, &b);
    // Which lines are shown: the changed ones and their context.
    let near_change: Vec<bool> = (0..edits.len())
        .map(|i| {
            let lo = i.saturating_sub(CONTEXT);
            let hi = (i + CONTEXT + 1).min(edits.len());
            edits[lo..hi].iter().any(|(m, _)| *m != Mark::Same)
        })
        .collect();
    let mut out = Vec::new();
    let mut hidden = 0;
    for ((mark, line), shown) in edits.iter().zip(near_change) {
        if !shown {
            hidden += 1;
            continue;
        }
        if hidden > 0 {
            out.push(format!(
                "  … {hidden} unchanged line{}",
                if hidden == 1 { "" } else { "s" }
            ));
            hidden = 0;
        }
        match mark {
            Mark::Same => out.push(format!("  {}", cut(line))),
            Mark::Removed => out.extend(wrap(line).into_iter().map(|l| format!("- {l}"))),
            Mark::Added => out.extend(wrap(line).into_iter().map(|l| format!("+ {l}"))),
        }
    }
    if hidden > 0 {
        out.push(format!(
            "  … {hidden} unchanged line{}",
            if hidden == 1 { "" } else { "s" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_changed_leaf_is_one_removed_and_one_added_line_in_its_place() {
        let before = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Queue", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "arn:aws:sqs:eu-west-1:1:q"},
            {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "*"}
        ]});
        let mut after = before.clone();
        after["Statement"][0]["Action"] = json!(["sqs:SendMessage", "sqs:DeleteMessage"]);
        let lines = change(Some(&before), Some(&after));
        let changed: Vec<String> = lines
            .iter()
            .filter(|l| !l.starts_with("  "))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            changed,
            [
                "- \"sqs:SendMessage\"",
                "+ \"sqs:SendMessage\",",
                "+ \"sqs:DeleteMessage\""
            ],
            "{lines:#?}"
        );
        // Context around it, the rest elided with a count.
        assert!(
            lines.iter().any(|l| l.contains("\"Action\": [")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("  … ") && l.ends_with("unchanged lines")),
            "{lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("logs:PutLogEvents")),
            "{lines:#?}"
        );
    }

    #[test]
    fn long_lines_wrap_when_changed_and_are_cut_with_a_count_otherwise() {
        let long = "x".repeat(250);
        let lines = change(
            Some(&json!({"a": long, "b": 1})),
            Some(&json!({"a": long, "b": 2})),
        );
        let context = lines.iter().find(|l| l.contains("xxx")).unwrap();
        assert!(context.ends_with("more characters)"), "{context}");
        assert!(
            lines.iter().all(|l| l.chars().count() <= WIDTH + 40),
            "{lines:#?}"
        );
        let lines = change(Some(&json!({"a": "short"})), Some(&json!({"a": long})));
        let added: String = lines
            .iter()
            .filter(|l| l.starts_with('+'))
            .map(|l| {
                l.trim_start_matches("+ ")
                    .trim_start()
                    .trim_start_matches("↳ ")
            })
            .collect();
        assert_eq!(added.matches('x').count(), 250, "{lines:#?}");
        assert!(
            lines.iter().all(|l| l.chars().count() <= WIDTH + 4),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_whole_value_is_every_line_marked_and_a_huge_one_is_cut_with_a_count() {
        let v = json!({"a": 1, "b": [1, 2]});
        assert_eq!(
            change(None, Some(&v)),
            [
                "+ {",
                "+   \"a\": 1,",
                "+   \"b\": [",
                "+     1,",
                "+     2",
                "+   ]",
                "+ }"
            ]
        );
        let big = Value::Array((0..200).map(Value::from).collect());
        let lines = change(Some(&big), None);
        assert_eq!(lines.len(), MOST + 1);
        assert_eq!(
            lines.last().unwrap(),
            &format!("  … {} more lines", 202 - MOST)
        );
    }

    #[test]
    fn words_wrap_between_words_under_the_line() {
        let line = format!("  + {}", "word ".repeat(40).trim_end());
        let lines = wrap_words(&line, 4);
        assert!(lines.len() > 1);
        assert!(
            lines.iter().all(|l| l.chars().count() <= WIDTH),
            "{lines:#?}"
        );
        assert!(
            lines[1..].iter().all(|l| l.starts_with("      word")),
            "{lines:#?}"
        );
        let joined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        assert_eq!(joined.join(" "), line.trim_start());
        assert_eq!(wrap_words("  short", 4), ["  short"]);
    }

    #[test]
    fn a_string_holding_json_is_shown_as_json() {
        assert!(structured(&json!("{\"widgets\": []}")).is_some());
        assert!(structured(&json!("{not json")).is_none());
        assert!(structured(&json!(3)).is_none());
    }
}
