//! The documentation's checks (run by `scripts/test` with the unit tests):
//! every relative link in the repository's Markdown resolves, to a file and
//! to a heading; every `provisioner` command in a shell block of the guides
//! is one the real command line accepts; the stack file reference lists
//! exactly the keys the sections accept, with their real defaults and
//! enforced ranges. (`cli.rs` checks that `docs/reference/cli.md` is current.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every Markdown file of the repository (not under `target/`, `.venv/`,
/// `.git/` or any `node_modules/`).
fn markdown_files() -> Vec<PathBuf> {
    let skip = ["target", ".venv", ".git", "node_modules"];
    let mut found = Vec::new();
    let mut dirs = vec![repository()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !skip.contains(&name.as_str()) {
                    dirs.push(path);
                }
            } else if name.ends_with(".md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A Markdown text's lines outside fenced code blocks, and each fenced
/// block as (its info string, its first line number, its lines).
struct Markdown {
    prose: Vec<(usize, String)>,
    blocks: Vec<(String, usize, Vec<String>)>,
}

fn markdown(text: &str) -> Markdown {
    let mut md = Markdown {
        prose: Vec::new(),
        blocks: Vec::new(),
    };
    let mut open: Option<(String, String, usize, Vec<String>)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f));
        match (&mut open, fence) {
            (None, Some(f)) => {
                let info = trimmed.trim_start_matches(f).trim().to_owned();
                open = Some((f.to_owned(), info, i + 2, Vec::new()));
            }
            (Some((f, ..)), Some(g))
                if *f == g && trimmed.trim_start_matches(g).trim().is_empty() =>
            {
                if let Some((_, info, start, lines)) = open.take() {
                    md.blocks.push((info, start, lines));
                }
            }
            (Some((.., lines)), _) => lines.push(line.to_owned()),
            (None, None) => md.prose.push((i + 1, line.to_owned())),
        }
    }
    md
}

/// GitHub's anchor of a heading: lower case, spaces to `-`, punctuation
/// other than `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors a Markdown file's headings make.
fn anchors(text: &str) -> BTreeSet<String> {
    markdown(text)
        .prose
        .iter()
        .filter_map(|(_, l)| l.strip_prefix('#'))
        .map(|h| slug(h.trim_start_matches('#')))
        .collect()
}

/// The link targets of a line: `[text](target)` and `[label]: target`.
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].split_whitespace().next().unwrap_or_default();
        out.push(target.trim_matches(|c| c == '<' || c == '>').to_owned());
        rest = &after[end..];
    }
    let t = line.trim_start();
    if t.starts_with('[')
        && let Some((label, target)) = t.split_once("]:")
        && !label.contains(']')
    {
        out.extend(target.split_whitespace().next().map(str::to_owned));
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let files = markdown_files();
    assert!(files.len() >= 10, "found only {files:?}");
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, prose) in markdown(&text).prose {
            // Inline code is not a link.
            let prose: String = prose.split('`').step_by(2).collect::<Vec<_>>().join("");
            for target in links(&prose) {
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let dest = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap_or(Path::new(".")).join(path)
                };
                let at = format!("{}:{line}", file.display());
                if !dest.exists() {
                    broken.push(format!("{at}: {target}: no such file"));
                    continue;
                }
                if let Some(anchor) = anchor
                    && dest.extension().is_some_and(|e| e == "md")
                {
                    let text = std::fs::read_to_string(&dest).unwrap();
                    if !anchors(&text).contains(anchor) {
                        broken.push(format!("{at}: {target}: no heading makes #{anchor}"));
                    }
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// A shell line's words as the shell splits them (quotes, backslashes);
/// `None` when a quote is left open. A word starting with `#` ends the line.
fn words(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => out.extend(word.take()),
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => w.push(chars.next()?),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    Some(out)
}

/// The provisioner's arguments in a shell command line, for each
/// `provisioner ...` (or `cargo run -p provisioner -- ...`) command in it.
fn provisioner_commands(words: &[String]) -> Vec<Vec<String>> {
    let operators = [
        "|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1", "&>",
    ];
    words
        .split(|w| operators.contains(&w.as_str()) || w.starts_with('>') || w.starts_with("2>"))
        .filter_map(|command| {
            let command: Vec<&String> = command
                .iter()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                .collect();
            let first = command.first()?;
            if first.rsplit('/').next() == Some("provisioner") {
                return Some(command[1..].iter().map(|w| (*w).clone()).collect());
            }
            let cargo_run = first.as_str() == "cargo"
                && command.get(1).is_some_and(|w| w.as_str() == "run")
                && command
                    .windows(2)
                    .any(|w| w[0] == "-p" && w[1] == "provisioner");
            let dashes = command.iter().position(|w| w.as_str() == "--")?;
            cargo_run.then(|| command[dashes + 1..].iter().map(|w| (*w).clone()).collect())
        })
        .collect()
}

#[test]
fn every_documented_command_parses() {
    use clap::Parser;
    use clap::error::ErrorKind;
    let mut wrong = Vec::new();
    let mut parsed = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (info, start, lines) in markdown(&text).blocks {
            let lang = info.split_whitespace().next().unwrap_or_default();
            if !["", "sh", "bash", "shell", "console"].contains(&lang) {
                continue;
            }
            let mut joined = String::new();
            for (i, line) in lines.iter().enumerate() {
                let line = line.trim_start().trim_start_matches("$ ");
                if let Some(head) = line.strip_suffix('\\') {
                    joined.push_str(head);
                    continue;
                }
                joined.push_str(line);
                let logical = std::mem::take(&mut joined);
                let at = format!("{}:{}", file.display(), start + i);
                let Some(words) = words(&logical) else {
                    // A quote continued on the next line (a pipeline, a `$(...)`).
                    if logical.contains("provisioner ") {
                        wrong.push(format!("{at}: an unclosed quote"));
                    }
                    continue;
                };
                for args in provisioner_commands(&words) {
                    parsed += 1;
                    let argv = std::iter::once("provisioner".to_owned()).chain(args);
                    match crate::cli::Cli::try_parse_from(argv) {
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
                            ) => {}
                        Err(e) => {
                            let why = e.to_string();
                            let why = why.lines().next().unwrap_or_default().to_owned();
                            wrong.push(format!("{at}: `{}`: {why}", logical.trim()));
                        }
                    }
                }
            }
        }
    }
    assert!(parsed > 30, "only {parsed} provisioner commands found");
    assert!(
        wrong.is_empty(),
        "commands in the documentation the command line refuses:\n{}",
        wrong.join("\n")
    );
}

/// The stack file reference's rows: (key, default cell, limits cell).
fn reference_rows() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(repository().join("docs/reference/stack-file.md")).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            (
                cells[0].trim_matches('`').to_owned(),
                cells.get(2).copied().unwrap_or_default().to_owned(),
                cells.get(3).copied().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The smallest valid stack file, as a mapping to change one key of.
fn smallest() -> serde_yaml::Mapping {
    serde_yaml::from_str(
        "name: couch-docs\nimages: { bucket: my-couch-images, prefix: demo }\nalarm: { email: team@example.com }\n",
    )
    .unwrap()
}

/// The smallest file with `key` (dotted) set to `value` (YAML), or removed.
fn with(key: &str, value: Option<&str>) -> String {
    let mut root = smallest();
    let path: Vec<&str> = key.split('.').collect();
    let mut map = &mut root;
    for part in &path[..path.len() - 1] {
        let entry = map
            .entry((*part).into())
            .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
        map = entry.as_mapping_mut().unwrap();
    }
    let last = path[path.len() - 1];
    match value {
        Some(v) => {
            map.insert(last.into(), serde_yaml::from_str(v).unwrap());
        }
        None => {
            map.remove(last);
        }
    }
    serde_yaml::to_string(&root).unwrap()
}

fn parse(text: &str) -> Result<crate::stack::Stack, crate::stack::StackError> {
    crate::stack::parse(Path::new("docs.yaml"), text)
}

fn problems_at(text: &str, key: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems()
            .iter()
            .filter(|p| p.path == key)
            .map(|p| p.message.clone())
            .collect(),
    }
}

#[test]
fn the_stack_file_reference_lists_exactly_the_keys_the_sections_accept() {
    let rows = reference_rows();
    let keys: BTreeSet<&str> = rows.iter().map(|(k, ..)| k.as_str()).collect();
    let top: BTreeSet<&str> = keys
        .iter()
        .map(|k| k.split('.').next().unwrap_or(k))
        .collect();
    let sections: BTreeSet<&str> = crate::stack::sections::KEYS.iter().copied().collect();
    assert_eq!(top, sections, "top-level keys");
    // Each mapping's fields, as serde names them when it meets one it does not know.
    let parents: BTreeSet<&str> = keys
        .iter()
        .filter_map(|k| k.rsplit_once('.').map(|(p, _)| p))
        .collect();
    for parent in parents {
        let text = with(&format!("{parent}.zz_probe"), Some("1"));
        let message = match parse(&text) {
            Ok(_) => panic!("{parent}.zz_probe was accepted"),
            Err(e) => e
                .problems()
                .iter()
                .find(|p| p.message.contains("zz_probe"))
                .map(|p| p.message.clone())
                .unwrap_or_else(|| panic!("no problem names {parent}.zz_probe: {e}")),
        };
        let expected = message.split("expected").nth(1).unwrap_or_default();
        let accepted: BTreeSet<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|f| format!("{parent}.{f}"))
            .collect();
        let documented: BTreeSet<String> = keys
            .iter()
            .filter(|k| k.rsplit_once('.').is_some_and(|(p, _)| p == parent))
            .map(|k| (*k).to_owned())
            .collect();
        assert_eq!(documented, accepted, "the fields of {parent}: ({message})");
    }
}

#[test]
fn the_stack_file_reference_states_the_real_defaults_and_ranges() {
    let base = parse(&serde_yaml::to_string(&smallest()).unwrap()).unwrap();
    let mut checked = (0, 0, 0);
    for (key, default, limits) in reference_rows() {
        let nested = key.matches('.').count() > 1;
        // A default in backticks: writing it out changes nothing.
        if let Some(value) = default.strip_prefix('`').and_then(|d| d.strip_suffix('`'))
            && !value.contains('`')
            && !nested
        {
            let written = parse(&with(&key, Some(value)))
                .unwrap_or_else(|e| panic!("{key}: {value} is refused: {e}"));
            assert_eq!(written, base, "{key}: the default is not {value}");
            checked.0 += 1;
        }
        // Required where its section is in the smallest file: refused without it.
        let parent = key.rsplit_once('.').map(|(p, _)| p);
        if default.starts_with("required") && parent.is_none_or(|p| smallest().contains_key(p)) {
            let problems = problems_at(&with(&key, None), &key);
            assert!(
                problems.iter().any(|m| m.contains("required")),
                "{key} is not required: {problems:?}"
            );
            checked.1 += 1;
        }
        // A range in backticks is enforced at both ends, and no further.
        if let Some(range) = limits.strip_prefix('`').and_then(|l| l.strip_suffix('`'))
            && let Some((min, max)) = range.split_once("..=")
        {
            let (min, max): (u64, u64) = (min.parse().unwrap(), max.parse().unwrap());
            for inside in [min, max] {
                let refused: Vec<String> =
                    problems_at(&with(&key, Some(&inside.to_string())), &key)
                        .into_iter()
                        .filter(|m| m.starts_with(&format!("{inside} ")))
                        .collect();
                assert!(
                    refused.is_empty(),
                    "{key}: {inside} is within {range} but refused: {refused:?}"
                );
            }
            for outside in [min.checked_sub(1), Some(max + 1)].into_iter().flatten() {
                let problems = problems_at(&with(&key, Some(&outside.to_string())), &key);
                assert!(
                    !problems.is_empty(),
                    "{key}: {outside} is outside {range} but accepted"
                );
            }
            checked.2 += 1;
        }
    }
    assert!(
        checked.0 >= 25 && checked.1 >= 4 && checked.2 >= 8,
        "checked (defaults, required, ranges) = {checked:?}"
    );
}
