//! Config errors: every message names the file, the line and column where the
//! TOML has them, and the key.

use std::ops::Range;

/// One clear message about a bad config (exit status 2):
/// `FILE:LINE:COL: KEY: message`, leaving out what is unknown.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {}{message}", position(.pos), key_prefix(.key))]
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
    key.as_ref().map_or(String::new(), |k| format!("{k}: "))
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
