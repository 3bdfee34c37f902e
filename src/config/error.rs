//! Config errors: every message names the file, the line and column where the
//! TOML has them, and the key.

use std::ops::Range;

/// One clear message about a bad config (exit status 2):
/// `FILE:LINE:COL: KEY: message`, leaving out what is unknown.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {}{}", escape(.file), position(.pos), key_prefix(.key), escape(.message))]
pub struct ConfigError {
    pub file: String,
    /// 1-based line and column, where the TOML has a position for the problem.
    pub pos: Option<(usize, usize)>,
    /// The key or parameter path at fault, when there is one.
    pub key: Option<String>,
    pub message: String,
}

fn position(pos: &Option<(usize, usize)>) -> String {
    pos.map_or(String::new(), |(line, col)| format!(":{line}:{col}"))
}

fn key_prefix(key: &Option<String>) -> String {
    key.as_ref().map_or(String::new(), |k| format!("{}: ", shown(k)))
}

/// Characters a quoted value may show before it is cut (see [`shown`]).
pub const SHOWN_CHARS: usize = 200;

/// Whether `c` would break a one-line message or reorder what follows it: a
/// control character (newline, CR, tab, NUL, DEL, C1) or a bidirectional
/// control (U+202A..U+202E embeddings and overrides, U+2066..U+2069 isolates,
/// U+200E/U+200F marks, U+061C).
fn is_hostile(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{feff}')
}

/// `text` with every character that would break a one-line message shown as an
/// escape: `\n`, `\r`, `\t`, `\0`, else `\u{202e}`. Nothing else changes, so
/// escaping twice is escaping once. Every error message passes through it.
pub fn escape(text: &str) -> String {
    if !text.chars().any(is_hostile) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if is_hostile(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A value the user gave (a name, a key, an expression, a cell), as an error
/// message shows it: [`escape`]d, and cut after [`SHOWN_CHARS`] characters
/// with its full length given (`abc… (5000000 characters)`).
pub fn shown(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => escape(value),
        Some((cut, _)) => format!("{}… ({} characters)", escape(&value[..cut]), value.chars().count()),
    }
}

/// [`shown`] in double quotes: `"value"`.
pub fn quoted(value: &str) -> String {
    format!("\"{}\"", shown(value))
}

/// Turns byte offsets of one source text into line and column numbers.
pub struct Locator<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Locator<'_> {
    /// 1-based (line, column) of byte offset `at`; the column counts characters.
    pub fn line_col(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.text.len());
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// An error at `span` (if known) about `key`.
    pub fn error(&self, span: Option<Range<usize>>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let key = key.into();
        ConfigError {
            file: self.file.to_string(),
            pos: span.map(|s| self.line_col(s.start)),
            key: (!key.is_empty()).then_some(key),
            message: message.into(),
        }
    }
}

/// " (did you mean \"x\"?)" when one of `candidates` is close to `given`.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    // The edit distance costs given x candidate in time and memory: a name far
    // longer than any parameter path is close to none.
    if given.len() > SHOWN_CHARS {
        return String::new();
    }
    let best = candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), c))
        .filter(|&(d, c)| d <= 3.max(c.len() / 3) && d < c.len().max(given.len()))
        .min_by_key(|&(d, _)| d);
    match best {
        Some((_, c)) => format!(" (did you mean \"{c}\"?)"),
        None => String::new(),
    }
}
