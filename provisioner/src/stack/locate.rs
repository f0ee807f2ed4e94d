//! Finds the line of a dotted key path in YAML text, for error messages.
//!
//! serde_yaml reports a location only for syntax errors; semantic problems are
//! found after deserialising, so their line is recovered from the text. Works
//! for block mappings and for flow mappings written on one line
//! (`queue: { visibility_timeout_seconds: 180 }`).

/// 1-based line of `path` (e.g. `queue.visibility_timeout_seconds`). Falls back
/// to the deepest ancestor found, then to line 1.
pub fn line_of(text: &str, path: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0usize;
    let mut end = lines.len();
    let mut indent: Option<usize> = None;
    let mut found = 1usize;
    for (depth, key) in path.split('.').filter(|k| !k.is_empty()).enumerate() {
        let hit = (start..end).find(|&i| {
            let line = strip_comment(lines[i]);
            let this_indent = line.len() - line.trim_start().len();
            if depth == 0 && this_indent != 0 {
                return false;
            }
            if let Some(parent) = indent
                && depth > 0
                && this_indent <= parent
                && !has_key(line, key)
            {
                return false;
            }
            has_key(line, key)
        });
        let Some(i) = hit else { break };
        found = i + 1;
        let line = strip_comment(lines[i]);
        let this_indent = line.len() - line.trim_start().len();
        // The block of this key: following lines indented deeper.
        let block_end = (i + 1..lines.len())
            .find(|&j| {
                let l = strip_comment(lines[j]);
                !l.trim().is_empty() && (l.len() - l.trim_start().len()) <= this_indent
            })
            .unwrap_or(lines.len());
        start = i;
        end = block_end.max(i + 1);
        indent = Some(this_indent);
    }
    found
}

fn strip_comment(line: &str) -> &str {
    // Good enough for keys: a ` #` outside quotes starts a comment.
    let mut in_single = false;
    let mut in_double = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !in_double => in_single = !in_single,
            b'"' if !in_single => in_double = !in_double,
            b'#' if !in_single && !in_double && (i == 0 || bytes[i - 1] == b' ') => {
                return &line[..i];
            }
            _ => {}
        }
    }
    line
}

/// Whether `line` holds `key:` as a mapping key (block or flow style).
fn has_key(line: &str, key: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = line[from..].find(key) {
        let at = from + pos;
        let before = line[..at].chars().last();
        let after = line[at + key.len()..].trim_start_matches(['"', '\'']);
        let boundary_before = matches!(before, None | Some(' ' | '{' | ',' | '"' | '\'' | '\t'));
        if boundary_before && after.trim_start().starts_with(':') {
            return true;
        }
        from = at + key.len();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const TEXT: &str = "name: couch-prod   # comment: with colon\nregion: eu-west-1\nqueue:\n  visibility_timeout_seconds: 10\n  max_receive_count: 3\nworker: { memory_mb: 1, timeout_seconds: 30 }\nalarm:\n  email: x\n";

    #[test]
    fn finds_top_level_keys() {
        assert_eq!(line_of(TEXT, "name"), 1);
        assert_eq!(line_of(TEXT, "region"), 2);
        assert_eq!(line_of(TEXT, "alarm"), 7);
    }

    #[test]
    fn finds_nested_block_keys() {
        assert_eq!(line_of(TEXT, "queue.visibility_timeout_seconds"), 4);
        assert_eq!(line_of(TEXT, "queue.max_receive_count"), 5);
        assert_eq!(line_of(TEXT, "alarm.email"), 8);
    }

    #[test]
    fn finds_keys_in_flow_mappings() {
        assert_eq!(line_of(TEXT, "worker.timeout_seconds"), 6);
    }

    #[test]
    fn falls_back_to_the_parent_then_line_one() {
        assert_eq!(line_of(TEXT, "queue.missing"), 3);
        assert_eq!(line_of(TEXT, "nothing.at.all"), 1);
    }

    #[test]
    fn does_not_confuse_a_nested_key_with_a_top_level_one() {
        let text = "images:\n  bucket: b\n  prefix: p\nprefix: top\n";
        assert_eq!(line_of(text, "prefix"), 4);
        assert_eq!(line_of(text, "images.prefix"), 3);
    }
}
