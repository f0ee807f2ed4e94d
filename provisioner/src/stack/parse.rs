//! Stack file → [`Stack`]: YAML syntax, then each section with
//! `deny_unknown_fields`, then the semantic checks of [`super::validate`].
//! Every problem is collected and located before anything is returned.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::locate::line_of;
use super::validate::validate;
use super::{Problem, Stack, StackError};

/// Reads and parses a stack file.
pub fn load(path: &Path) -> Result<Stack, StackError> {
    load_named(path, None)
}

/// Reads and parses a stack file; `name` (the command line's `--name`)
/// replaces the file's `name` and is checked by the same rules.
pub fn load_named(path: &Path, name: Option<&str>) -> Result<Stack, StackError> {
    let read = |source| StackError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Never more than one byte past the limit is read (whatever the file
    // is: a pipe, a device, a symlink to /dev/zero).
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(read)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(path, bytes.len() as u64));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    parse_named(path, &text, name)
}

/// The largest stack file read: 1 MiB (the largest in `stacks/` is under
/// 2 KiB). YAML's size is no measure of what it builds (an alias replays a
/// whole node), hence also [`anchors_and_aliases`].
pub const MAX_FILE_BYTES: usize = 1 << 20;

fn too_large(file: &Path, size: u64) -> StackError {
    StackError::Invalid {
        file: file.to_path_buf(),
        problems: vec![Problem {
            file: file.to_path_buf(),
            line: 1,
            path: String::new(),
            message: format!(
                "the file is {}{size} bytes; a stack file is at most {MAX_FILE_BYTES} bytes (1 MiB)",
                if size > MAX_FILE_BYTES as u64 {
                    "over "
                } else {
                    ""
                }
            ),
        }],
    }
}

/// The lines of YAML anchors (`&name`) and aliases (`*name`, `<<: *name`),
/// found in the text before any YAML is parsed. A stack file uses neither:
/// an alias replays its anchor's whole node wherever it appears, so a few
/// kilobytes of aliases of aliases build gigabytes (the "billion laughs").
/// Outside quotes and comments, a `&` or `*` is refused wherever an anchor
/// or alias could start: at a line's start (`\n` or `\r`), after blanks,
/// and after any of YAML's indicators `[ ] { } , : ? - !` (in flow
/// collections `:` needs no space, and a tag such as `!!seq` may precede an
/// anchor). Inside a plain scalar (`a&b`, `x*`) they are text. Stricter than
/// YAML (`note: a * b` unquoted is refused too): quote such a value.
pub fn anchors_and_aliases(text: &str) -> Vec<(usize, char)> {
    let mut found = Vec::new();
    let mut quote: Option<char> = None;
    let mut line = 1;
    // What came before: a position where an anchor or alias could start.
    let mut at_node = true;
    let mut in_comment = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            line += 1;
            in_comment = false;
            at_node = true;
            continue;
        }
        if in_comment {
            continue;
        }
        if let Some(q) = quote {
            if q == '"' && c == '\\' {
                chars.next();
            } else if c == q {
                if q == '\'' && chars.peek() == Some(&'\'') {
                    chars.next();
                } else {
                    quote = None;
                    at_node = false;
                }
            }
            continue;
        }
        match c {
            // A comment starts at a `#` after a blank (or a line's start).
            '#' if at_node => in_comment = true,
            '&' | '*' if at_node => {
                found.push((line, c));
                at_node = false;
            }
            '"' | '\'' if at_node => quote = Some(c),
            ' ' | '\t' | '[' | ']' | '{' | '}' | ',' | ':' | '?' | '-' | '!' => at_node = true,
            _ => at_node = false,
        }
    }
    found
}

/// serde_yaml reports a duplicate key without a place: the duplicate's line
/// is the first line whose text up to it already has that duplicate (found
/// by bisection: parsing more text only adds the same first error).
fn duplicate_line(text: &str, message: &str) -> Option<usize> {
    if !message.contains("duplicate entry") {
        return None;
    }
    // Without the place serde_yaml may add (the mapping's, not the key's).
    let message = message.split(" at line ").next().unwrap_or(message);
    let ends: Vec<usize> = text
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(text.len()))
        .collect();
    let has_it = |lines: usize| {
        serde_yaml::from_str::<serde_yaml::Value>(&text[..ends[lines - 1]])
            .err()
            .is_some_and(|e| e.to_string().starts_with(message))
    };
    let (mut lo, mut hi) = (1, ends.len());
    if !has_it(hi) {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if has_it(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// Where a problem with `--name` is reported.
pub const NAME_FLAG: &str = "--name";

use super::sections::{KEYS as SECTIONS, Raws};

/// Collects problems while sections are read.
pub(super) struct Reader<'a> {
    file: &'a Path,
    text: &'a str,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn problem(&mut self, path: &str, message: impl Into<String>) {
        let line = line_of(self.text, path);
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Deserialises one section; `None` (with a problem recorded) when it is wrong,
    /// `Some(default)` when it is absent and `default` is given.
    pub(super) fn section<T: DeserializeOwned>(
        &mut self,
        root: &serde_yaml::Mapping,
        key: &str,
        default: Option<fn() -> T>,
    ) -> Option<T> {
        let Some(value) = root.get(key) else {
            match default {
                Some(make) => return Some(make()),
                None => {
                    self.problem(key, "is required but missing");
                    return None;
                }
            }
        };
        if value.is_null()
            && let Some(make) = default
        {
            return Some(make());
        }
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => Some(v),
            Err(err) => {
                let inner = err.inner().to_string();
                let sub = err.path().to_string();
                // serde_path_to_error's path already ends with an unknown field's name.
                let path = if sub == "." || sub.is_empty() {
                    key.to_owned()
                } else {
                    format!("{key}.{sub}")
                };
                if inner.starts_with("missing field")
                    && let Some(name) = backticked(&inner)
                {
                    self.problem(&format!("{path}.{name}"), "is required but missing");
                } else {
                    self.problem(&path, inner);
                }
                None
            }
        }
    }
}

fn backticked(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

/// Parses stack text; `file` is only used to locate problems.
/// The member of a closed set `word` names; otherwise `None`, and the
/// problem at `path` (what it is not one of, and `why`).
pub(super) fn closed<T, const N: usize>(
    problems: &mut Vec<(String, String)>,
    path: &str,
    word: &str,
    parse: fn(&str) -> Option<T>,
    all: [&str; N],
    why: &str,
) -> Option<T> {
    let found = parse(word);
    if found.is_none() {
        problems.push((
            path.to_owned(),
            format!("{word:?} is not one of {}{why}", all.join(", ")),
        ));
    }
    found
}

pub fn parse(file: &Path, text: &str) -> Result<Stack, StackError> {
    parse_named(file, text, None)
}

/// The file as a YAML mapping: refused at once when too large, with
/// anchors or aliases, not YAML, or not a mapping.
fn document(file: &Path, text: &str) -> Result<serde_yaml::Mapping, StackError> {
    let invalid = |problems| StackError::Invalid {
        file: file.to_path_buf(),
        problems,
    };
    let at = |line: usize, message: String| Problem {
        file: file.to_path_buf(),
        line,
        path: String::new(),
        message,
    };
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large(file, text.len() as u64));
    }
    let aliased = anchors_and_aliases(text);
    if !aliased.is_empty() {
        return Err(invalid(
            aliased
                .into_iter()
                .map(|(line, c)| {
                    at(line, format!(
                        "a YAML {} ('{c}'): stack files do not use anchors or aliases; write the value out",
                        if c == '&' { "anchor" } else { "alias" }
                    ))
                })
                .collect(),
        ));
    }
    let root: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let line = duplicate_line(text, &e.to_string())
                .or_else(|| e.location().map(|l| l.line()))
                .unwrap_or(1);
            return Err(invalid(vec![at(line, format!("not valid YAML: {e}"))]));
        }
    };
    match root {
        serde_yaml::Value::Mapping(m) => Ok(m),
        _ => Err(invalid(vec![at(
            1,
            "a stack file is a YAML mapping (name:, images:, alarm:, ...)".into(),
        )])),
    }
}

/// A problem for every top-level key that is no section of [`SECTIONS`].
fn unknown_keys(r: &mut Reader<'_>, root: &serde_yaml::Mapping) {
    for key in root.keys() {
        match key.as_str() {
            Some(k) if SECTIONS.contains(&k) => {}
            Some(k) => r.problem(
                k,
                format!("unknown key; expected one of: {}", SECTIONS.join(", ")),
            ),
            None => r.problem("", format!("keys must be strings, found {key:?}")),
        }
    }
}

/// Records the problems the typed stack has, each where it is in the file
/// (a problem of the `--name` flag's value is the flag's), except those of
/// sections that failed to read.
fn report(
    r: &mut Reader<'_>,
    problems: Vec<(String, String)>,
    name_flag: Option<&str>,
    failed: &[&str],
) {
    let section_of = |path: &str| path.split('.').next().unwrap_or_default().to_owned();
    for (path, message) in problems {
        if name_flag.is_some() && path == "name" {
            // Not in the file: say it is the flag's value.
            r.problems.push(Problem {
                file: std::path::PathBuf::from(NAME_FLAG),
                line: 0,
                path: String::new(),
                message,
            });
            continue;
        }
        if failed.contains(&section_of(&path).as_str()) {
            continue;
        }
        r.problem(&path, message);
    }
}

/// [`parse`], with the stack's name given on the command line instead.
pub fn parse_named(file: &Path, text: &str, name_flag: Option<&str>) -> Result<Stack, StackError> {
    let root = document(file, text)?;
    let mut r = Reader {
        file,
        text,
        problems: Vec::new(),
    };
    unknown_keys(&mut r, &root);
    let raws = Raws::read(&mut r, &root, name_flag);
    let failed = raws.failed();
    // `--name` other than the file's own: a preview of the file's stack.
    let preview_of = match (name_flag, &raws.name) {
        (Some(flag), Some(own)) if !own.is_empty() && flag != own => Some(own.clone()),
        _ => None,
    };
    let name = name_flag
        .map(str::to_owned)
        .or_else(|| raws.name.clone())
        .unwrap_or_else(|| "placeholder".into());
    // Problems found while converting (`deploy.strategy`, `logs.level`,
    // `http.auth`, a preview's `client:`).
    let mut words: Vec<(String, String)> = Vec::new();
    let stack = raws.typed(name, preview_of, &mut words);
    let problems = words.into_iter().chain(validate(&stack)).collect();
    report(&mut r, problems, name_flag, &failed);
    if r.problems.is_empty() {
        Ok(stack)
    } else {
        r.problems.sort_by_key(|p| p.line);
        Err(StackError::Invalid {
            file: file.to_path_buf(),
            problems: r.problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;

    const FILE: &str = "name: couch-prod
images: { bucket: pgr301-couch-explorers, prefix: \"11\" }
alarm:  { email: team@example.com }
";

    fn problems(text: &str) -> Vec<Problem> {
        match parse(Path::new("s.yaml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().to_vec(),
        }
    }

    #[test]
    fn anchors_and_aliases_are_found_where_a_node_starts_only() {
        let text = "a: &x [1, 2]\nb: *x\nc: [*x, 1]\nd: {k: *x}\n- *x\n<<: *x\ne: \"*x &y\"\nf: 'it''s *x'\ng: a&b*c # *x\nh: x*\ni: {\"k\":*x}\nj: !!seq &t [1]\rk: *t\n";
        let found = anchors_and_aliases(text);
        assert_eq!(
            found,
            [
                (1, '&'),
                (2, '*'),
                (3, '*'),
                (4, '*'),
                (5, '*'),
                (6, '*'),
                (11, '*'),
                (12, '&'),
                (13, '*')
            ]
        );
        assert!(anchors_and_aliases(FILE).is_empty());
        // Every stack file the project ships parses.
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks")).unwrap() {
            let path = entry.unwrap().path();
            assert!(load(&path).is_ok(), "{}", path.display());
        }
    }

    /// The measurement: 63 KB, one 2,000-item anchor replayed
    /// 5,000 times took 9 s and 1.4 GB before validation refused it.
    #[test]
    fn an_alias_bomb_and_an_oversized_file_are_refused_at_once() {
        let items: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
        let mut bomb = format!("{FILE}tags: &t [{}]\n", items.join(", "));
        bomb.push_str("x:\n");
        for _ in 0..5000 {
            bomb.push_str("  - *t\n");
        }
        assert!(bomb.len() > 45_000, "{}", bomb.len());
        let started = Instant::now();
        let ps = problems(&bomb);
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(ps[0].line, 4, "{}", ps[0]);
        assert!(ps[0].message.contains("YAML anchor"), "{}", ps[0]);
        assert!(ps[1].message.contains("YAML alias"), "{}", ps[1]);

        let huge = format!("{FILE}# {}\n", "x".repeat(8 << 20));
        let started = Instant::now();
        let ps = problems(&huge);
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(ps.len(), 1);
        assert!(ps[0].message.contains("at most 1048576 bytes"), "{}", ps[0]);
        // Not even read past the limit: an endless file.
        let started = Instant::now();
        let err = load(Path::new("/dev/zero")).unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(err.to_string().contains("over 1048577 bytes"), "{err}");
        // From a file: refused by its size, before it is read.
        let path = std::env::temp_dir().join(format!("couch-huge-{}.yaml", std::process::id()));
        std::fs::write(&path, &huge).unwrap();
        let started = Instant::now();
        let err = load(&path).unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500));
        std::fs::remove_file(&path).unwrap();
        assert!(err.to_string().contains("at most 1048576 bytes"), "{err}");
    }

    #[test]
    fn a_duplicate_key_is_reported_at_the_duplicate() {
        let text =
            format!("{FILE}queue: {{ max_receive_count: 3 }}\nqueue: {{ max_receive_count: 9 }}\n");
        let ps = problems(&text);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(ps[0].line, 5, "{}", ps[0]);
        assert!(ps[0].message.contains("duplicate"), "{}", ps[0]);
        let nested = format!("{FILE}http: {{ burst: 3,\n  burst: 4 }}\n");
        let ps = problems(&nested);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(ps[0].line, 5, "{}", ps[0]);
    }

    #[test]
    fn another_name_is_a_preview_apart_from_the_files_stack() {
        let own = parse_named(Path::new("s.yaml"), FILE, Some("couch-prod")).unwrap();
        assert_eq!(own.preview_of, None);
        assert_eq!(own.images.prefix, "11");
        assert_eq!(own.boundary_name(), "couch-prod-boundary");
        let p = parse_named(Path::new("s.yaml"), FILE, Some("couch-prod-pr-7")).unwrap();
        assert_eq!(p.preview_of.as_deref(), Some("couch-prod"));
        assert_eq!(p.images.prefix, "11/previews/couch-prod-pr-7");
        assert_eq!(p.boundary_name(), "couch-prod-preview-boundary");
        assert_eq!(p, own.preview("couch-prod-pr-7"));
        // A preview declares no client identity: refused, naming both.
        let with_client =
            format!("{FILE}client: {{ assumed_by: [\"arn:aws:iam::111122223333:root\"] }}\n");
        let err =
            parse_named(Path::new("s.yaml"), &with_client, Some("couch-prod-pr-7")).unwrap_err();
        let ps = err.problems();
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!((ps[0].line, ps[0].path.as_str()), (4, "client"));
        assert!(
            ps[0].message.contains("--name couch-prod-pr-7") && ps[0].message.contains("`client:`"),
            "{}",
            ps[0]
        );
        assert!(
            parse(Path::new("s.yaml"), &with_client)
                .unwrap()
                .client
                .is_some()
        );
    }
}
