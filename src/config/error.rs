//! Configuration errors, each one line that names the file, line, column and key.
//!
//! `toml` reports a byte span and a message. The key path is recovered from the document
//! itself: [`toml::de::DeTable`] keeps the span of every key and value, so the deepest entry
//! whose key or value covers the error span names the key, whichever way the document wrote
//! it (headers, dotted keys, inline tables, arrays of tables). When the text is not even valid
//! TOML there is no tree, and the key is read off the lines around the error instead.

use std::io;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// Why a configuration could not be used. `Display` is the whole message, on one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read; there is no line to point at.
    #[error("{origin}: cannot read the configuration: {error}")]
    Read {
        /// The file name as given.
        origin: String,
        /// What the operating system said.
        error: io::Error,
    },
    /// The text is not valid TOML, or a value is not acceptable.
    #[error("{origin}:{line}:{column}: {key}: {message}")]
    Invalid {
        /// The file name as given (or a label such as `<built-in>`).
        origin: String,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column (in characters) of the offending text.
        column: usize,
        /// Where in the document: `[flows] max_flows`, `[[ports.exception]] #2 protocol`,
        /// `[flow]` for a whole section.
        key: String,
        /// What is wrong, from the parser or from validation.
        message: String,
    },
}

impl ConfigError {
    /// The key path of an [`ConfigError::Invalid`] error.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Read { .. } => None,
        }
    }

    /// The 1-based line and column of an [`ConfigError::Invalid`] error.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Invalid { line, column, .. } => Some((*line, *column)),
            ConfigError::Read { .. } => None,
        }
    }

    /// Builds the error for a `toml` parse or deserialisation failure.
    pub(crate) fn from_toml(text: &str, origin: &str, err: &toml::de::Error) -> ConfigError {
        // Without a span the error is about the document as a whole.
        let span = err.span();
        let key = span
            .as_ref()
            .and_then(|span| match DeTable::parse(text) {
                Ok(doc) => find_path(doc.get_ref(), span)
                    .map(|p| render(&p, is_table(doc.get_ref(), &p)))
                    .or_else(|| key_from_lines(text, span.start)),
                Err(_) => key_from_lines(text, span.start),
            })
            .unwrap_or_else(|| "(top level)".to_owned());
        let span = span.unwrap_or(0..0);
        let mut message = err.message().to_owned();
        if let Some(near) = suggestion(&message) {
            message.push_str(&format!("; did you mean `{near}`?"));
        }
        ConfigError::at(text, origin, span.start, key, &message)
    }

    /// Builds the error for a check across several values: `path` locates the value in the
    /// text (the last segment may index an array), `key` is how the message names it.
    pub(crate) fn at_path(
        text: &str,
        origin: &str,
        path: &[Seg<'_>],
        key: String,
        message: &str,
    ) -> ConfigError {
        let start = DeTable::parse(text)
            .ok()
            .and_then(|doc| locate(doc.get_ref(), path))
            .map_or(0, |span| span.start);
        ConfigError::at(text, origin, start, key, message)
    }

    fn at(text: &str, origin: &str, offset: usize, key: String, message: &str) -> ConfigError {
        let (line, column) = line_column(text, offset);
        ConfigError::Invalid {
            origin: origin.to_owned(),
            line,
            column,
            key: escape_controls(&key),
            message: escape_controls(&one_line(message)),
        }
    }
}

/// Control characters written as escapes. A quoted TOML key may hold any character,
/// `"a\nb"` a newline among them, and the key is quoted back in the message (found by the
/// config fuzz target: the message came out on two lines).
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The message contract is one line; parser messages are, but make sure.
fn one_line(message: &str) -> String {
    let message = message.trim();
    if message.contains('\n') {
        message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        message.to_owned()
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and "unknown variant"), the
/// expected name closest to the misspelt one, if it is close enough to be a typo.
fn suggestion(message: &str) -> Option<&str> {
    if !(message.starts_with("unknown field `") || message.starts_with("unknown variant `")) {
        return None;
    }
    let mut names = message.split('`').skip(1).step_by(2);
    let wrong = names.next()?;
    let limit = (wrong.chars().count() / 3).max(1);
    names
        .map(|name| (edit_distance(wrong, name), name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev
                .get(j)
                .map_or(usize::MAX, |d| d + usize::from(ca != *cb));
            let delete = prev.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let insert = row.last().map_or(usize::MAX, |d| d + 1);
            row.push(substitute.min(delete).min(insert));
        }
        prev = row;
    }
    prev.last().copied().unwrap_or(0)
}

/// 1-based line and column (in characters) of byte `offset`, clamped to the text.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset = offset.saturating_sub(1);
    }
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// One step of a key path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    /// A table key.
    Key(&'a str),
    /// An element of an array (0-based).
    Index(usize),
}

/// An owned key path step, as found in a parsed document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedSeg {
    Key(String),
    Index(usize),
}

fn covers(span: &Range<usize>, pos: &Range<usize>) -> bool {
    // An empty error span (end of input) still sits at one position.
    span.start <= pos.start && pos.start < span.end.max(span.start + 1)
}

/// The deepest entry whose key or value covers `pos`. Inner entries are tried before the
/// entry that holds them, so an error inside `[flows]` names `max_flows`, not `flows`.
fn find_path(table: &DeTable<'_>, pos: &Range<usize>) -> Option<Vec<OwnedSeg>> {
    for (key, value) in table.iter() {
        let here = OwnedSeg::Key(key.get_ref().to_string());
        let inner = match value.get_ref() {
            DeValue::Table(sub) => find_path(sub, pos),
            DeValue::Array(items) => find_in_array(items.iter(), pos),
            _ => None,
        };
        if let Some(mut rest) = inner {
            rest.insert(0, here);
            return Some(rest);
        }
        if covers(&key.span(), pos) || covers(&value.span(), pos) {
            return Some(vec![here]);
        }
    }
    None
}

/// Searches array elements; only tables get an index in the path, because for a list of
/// scalars the column already says which element is wrong.
fn find_in_array<'a, 'i: 'a>(
    items: impl Iterator<Item = &'a toml::Spanned<DeValue<'i>>>,
    pos: &Range<usize>,
) -> Option<Vec<OwnedSeg>> {
    for (i, item) in items.enumerate() {
        match item.get_ref() {
            DeValue::Table(sub) => {
                if let Some(mut rest) = find_path(sub, pos) {
                    rest.insert(0, OwnedSeg::Index(i));
                    return Some(rest);
                }
                if covers(&item.span(), pos) {
                    return Some(vec![OwnedSeg::Index(i)]);
                }
            }
            DeValue::Array(inner) => {
                if let Some(found) = find_in_array(inner.iter(), pos) {
                    return Some(found);
                }
                if covers(&item.span(), pos) {
                    return Some(Vec::new());
                }
            }
            _ if covers(&item.span(), pos) => return Some(Vec::new()),
            _ => {}
        }
    }
    None
}

/// The span of the value at `path`, or of the key when the path ends on a table.
fn locate(table: &DeTable<'_>, path: &[Seg<'_>]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let Seg::Key(name) = first else { return None };
    let (key, value) = table.iter().find(|(k, _)| k.get_ref() == name)?;
    if rest.is_empty() {
        return Some(match value.get_ref() {
            DeValue::Table(_) => key.span(),
            _ => value.span(),
        });
    }
    locate_value(value, rest)
}

fn locate_value(value: &toml::Spanned<DeValue<'_>>, path: &[Seg<'_>]) -> Option<Range<usize>> {
    match (value.get_ref(), path.split_first()) {
        (_, None) => Some(value.span()),
        (DeValue::Table(sub), Some(_)) => locate(sub, path),
        (DeValue::Array(items), Some((Seg::Index(i), rest))) => locate_value(items.get(*i)?, rest),
        _ => None,
    }
}

/// True when `path` is a single top-level key whose value is a table (a section).
fn is_table(doc: &DeTable<'_>, path: &[OwnedSeg]) -> bool {
    match path {
        [OwnedSeg::Key(name)] => doc
            .iter()
            .any(|(k, v)| k.get_ref() == name && matches!(v.get_ref(), DeValue::Table(_))),
        _ => false,
    }
}

/// Renders a path the way the file is written: `[flows] max_flows`, `[flow]` for a section
/// (`section` says a lone top-level name is one), `flows` for a top-level value,
/// `[[ports.exception]] #2 protocol` inside an array of tables.
fn render(path: &[OwnedSeg], section: bool) -> String {
    let Some(OwnedSeg::Key(first)) = path.first() else {
        return "(top level)".to_owned();
    };
    if path.len() == 1 {
        return if section {
            format!("[{first}]")
        } else {
            first.clone()
        };
    }
    let mut table = vec![first.as_str()];
    let mut rest: Vec<&str> = Vec::new();
    let mut index = None;
    for seg in path.iter().skip(1) {
        match seg {
            OwnedSeg::Key(k) if index.is_none() => table.push(k),
            OwnedSeg::Key(k) => rest.push(k),
            OwnedSeg::Index(i) if index.is_none() => index = Some(*i),
            OwnedSeg::Index(_) => {}
        }
    }
    match index {
        Some(i) => {
            let mut out = format!("[[{}]] #{}", table.join("."), i + 1);
            if !rest.is_empty() {
                out.push(' ');
                out.push_str(&rest.join("."));
            }
            out
        }
        None => {
            let key = table.pop().unwrap_or_default();
            format!("[{}] {key}", table.join("."))
        }
    }
}

/// Reads the key off the text when the document does not parse: the nearest table header
/// above the error and the `key =` of the line the value started on.
fn key_from_lines(text: &str, offset: usize) -> Option<String> {
    let (line_no, _) = line_column(text, offset);
    let lines: Vec<&str> = text.lines().take(line_no).collect();
    let mut key = None;
    let mut header = None;
    for line in lines.iter().rev() {
        let line = strip_comment(line).trim();
        if line.starts_with('[') {
            header = Some(line.to_owned());
            break;
        }
        if key.is_none() {
            key = key_of_line(line);
        }
    }
    match (header, key) {
        (Some(h), Some(k)) => Some(format!("{h} {k}")),
        (Some(h), None) => Some(h),
        (None, Some(k)) => Some(k),
        (None, None) => None,
    }
}

/// `name` in `name = value`, when the part before `=` looks like a (dotted, quoted) key.
fn key_of_line(line: &str) -> Option<String> {
    let (lhs, _) = line.split_once('=')?;
    let lhs = lhs.trim();
    let plausible = !lhs.is_empty()
        && lhs
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.\"' ".contains(c));
    plausible.then(|| lhs.to_owned())
}

/// The line without a trailing `# comment` (a `#` inside quotes is kept).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') => return line.get(..i).unwrap_or(line),
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // After the two-byte 'é' the column counts one character.
        assert_eq!(line_column(text, 9), (2, 3));
        // Past the end and inside a character are clamped, not a panic.
        assert_eq!(line_column(text, 1000), (3, 1));
        assert_eq!(line_column(text, 8), (2, 2));
    }

    #[test]
    fn suggestions_for_typos_only() {
        let m = "unknown field `max_flow`, expected one of `max_flows`, `tcp_new`";
        assert_eq!(suggestion(m), Some("max_flows"));
        let m = "unknown variant `alwyas`, expected one of `auto`, `always`, `never`";
        assert_eq!(suggestion(m), Some("always"));
        let m = "unknown field `thresholds`, expected one of `capture`, `networks`";
        assert_eq!(suggestion(m), None);
        assert_eq!(suggestion("invalid type: integer `3`, expected `x`"), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn render_names_sections_keys_and_array_entries() {
        let k = |s: &str| OwnedSeg::Key(s.to_owned());
        assert_eq!(render(&[k("flow")], true), "[flow]");
        assert_eq!(render(&[k("flows")], false), "flows");
        assert_eq!(
            render(&[k("flows"), k("max_flows")], false),
            "[flows] max_flows"
        );
        assert_eq!(
            render(
                &[
                    k("ports"),
                    k("exception"),
                    OwnedSeg::Index(1),
                    k("protocol")
                ],
                false
            ),
            "[[ports.exception]] #2 protocol"
        );
        assert_eq!(
            render(&[k("ports"), k("exception"), OwnedSeg::Index(0)], false),
            "[[ports.exception]] #1"
        );
        assert_eq!(render(&[], false), "(top level)");
    }

    #[test]
    fn key_from_lines_reads_header_and_key() {
        let text = "[flows]\nmax_flows = 3 3\n";
        assert_eq!(
            key_from_lines(text, 20).as_deref(),
            Some("[flows] max_flows")
        );
        let text = "# c\n[flows # comment\n";
        assert_eq!(key_from_lines(text, 10).as_deref(), Some("[flows"));
        assert_eq!(key_from_lines("x = \n", 4).as_deref(), Some("x"));
        assert_eq!(key_from_lines("", 0), None);
    }

    #[test]
    fn strip_comment_keeps_hashes_in_strings() {
        assert_eq!(strip_comment("a = \"#x\" # c"), "a = \"#x\" ");
        assert_eq!(strip_comment("# all"), "");
    }

    #[test]
    fn find_path_prefers_the_innermost_entry() {
        let text = "[flows]\nmax_flows = 0\n[[ports.exception]]\ncidr = \"x\"\n";
        let doc = DeTable::parse(text).unwrap();
        let at = |needle: &str| {
            let start = text.find(needle).unwrap();
            find_path(doc.get_ref(), &(start..start + 1)).map(|p| render(&p, false))
        };
        assert_eq!(at("0").as_deref(), Some("[flows] max_flows"));
        assert_eq!(at("max_flows").as_deref(), Some("[flows] max_flows"));
        assert_eq!(at("\"x\"").as_deref(), Some("[[ports.exception]] #1 cidr"));
        assert_eq!(at("[[ports").as_deref(), Some("[[ports.exception]] #1"));
    }

    #[test]
    fn locate_finds_array_elements() {
        let text = "[networks]\nexternal = [\"a\", \"b\"]\n";
        let doc = DeTable::parse(text).unwrap();
        let path = [Seg::Key("networks"), Seg::Key("external"), Seg::Index(1)];
        let span = locate(doc.get_ref(), &path).unwrap();
        assert_eq!(text.get(span), Some("\"b\""));
        assert_eq!(locate(doc.get_ref(), &[Seg::Key("nope")]), None);
    }
}
