//! Text made safe to print. A leaf module.

/// Makes a value safe to print in a table cell or a log line: control characters (newlines,
/// tabs, escapes), line and paragraph separators, and the bidirectional formatting characters
/// are shown escaped, so no value can break a row, forge a line, or reorder what follows it
/// on screen (an unterminated right-to-left override reverses the rest of the line).
pub(crate) fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || is_layout_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that are not control characters to Unicode but change how a terminal lays out
/// the rest of the line: line and paragraph separators and the bidirectional marks, embeddings,
/// overrides and isolates.
fn is_layout_control(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}
