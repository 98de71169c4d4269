//! Printing for people (aligned tables, safe against hostile text) and for scripts (JSON).

use std::fmt::Write as _;

use crate::exit::ExitCode;
use crate::failure::Failure;

/// Output format chosen with `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned tables and sentences.
    Table,
    /// One JSON document per command.
    Json,
}

/// Writes `args` to standard output and flushes it.
///
/// `print!` panics when standard output is closed or its disk is full; here that is a
/// [`Failure`] with exit code 1, so a script sees the documented code and one error line.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(ExitCode::Internal, anyhow::Error::new(e).context("cannot write to standard output")))
}

/// `print!` that returns `Result<(), Failure>` instead of panicking (see [`write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that returns `Result<(), Failure>` instead of panicking (see [`write_stdout`]).
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics: a message that cannot reach standard error is dropped, so
/// the process still exits with its documented code.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use {errln, out, outln};

pub(crate) use crate::text::clean;

/// Renders rows under headers with aligned columns. Cells are cleaned and long cells cut to
/// `max` characters with an ellipsis.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    const MAX: usize = 60;
    let cut = |s: &str| {
        let s = clean(s);
        if s.chars().count() > MAX { format!("{}…", s.chars().take(MAX - 1).collect::<String>()) } else { s }
    };
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cut(c)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut parts = Vec::new();
        for (c, w) in cells.zip(&widths) {
            parts.push(format!("{c:<w$}"));
        }
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &mut headers.iter().copied());
    for r in &rows {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out
}

/// Prints a JSON value, pretty.
pub(crate) fn json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A connector's judged permissions in one cell: `ok` only when every needed permission is
/// known granted; otherwise what is missing and what cannot be told, with why.
pub(crate) fn permissions(p: &remediation_api::types::PermissionsView) -> String {
    if let Some(e) = &p.error {
        return format!("cannot check: {e}");
    }
    let mut parts = Vec::new();
    if !p.missing.is_empty() {
        parts.push(format!("missing: {}", p.missing.join(", ")));
    }
    if !p.unknown.is_empty() {
        let why = p.unknown_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        parts.push(format!("unknown: {}{why}", p.unknown.join(", ")));
    }
    if parts.is_empty() { "ok".to_owned() } else { parts.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_ok_only_when_all_are_known_granted() {
        let view = |missing: &[&str], unknown: &[&str]| remediation_api::types::PermissionsView {
            granted: vec!["User.Read.All".into()],
            missing: missing.iter().map(|m| (*m).to_owned()).collect(),
            unknown: unknown.iter().map(|m| (*m).to_owned()).collect(),
            unknown_reason: (!unknown.is_empty()).then(|| "opaque token".to_owned()),
            calls: Vec::new(),
            error: None,
        };
        assert_eq!(permissions(&view(&[], &[])), "ok");
        assert_eq!(permissions(&view(&[], &["Directory.Read.All"])), "unknown: Directory.Read.All (opaque token)");
        assert_eq!(permissions(&view(&["Directory.Read.All"], &[])), "missing: Directory.Read.All");
        assert_eq!(permissions(&view(&["a"], &["b", "c"])), "missing: a; unknown: b, c (opaque token)");
    }

    #[test]
    fn hostile_cells_stay_on_one_line() {
        let t = table(&["A", "B"], &[vec!["x\ny\tz".into(), "\u{1b}[31mred".into()]]);
        assert_eq!(t.lines().count(), 2, "{t}");
        assert!(t.contains("x\\ny\\tz"));
        assert!(!t.contains('\u{1b}'));
    }

    #[test]
    fn layout_controls_are_escaped_and_other_text_is_kept() {
        for (input, expected) in [
            ("\u{202e}evil\u{202c}", "\\u{202e}evil\\u{202c}"),
            ("a\u{2028}b\u{2029}c", "a\\u{2028}b\\u{2029}c"),
            ("\u{2066}x\u{2069}\u{200f}\u{61c}", "\\u{2066}x\\u{2069}\\u{200f}\\u{61c}"),
            ("del\u{7f} csi\u{9b}", "del\\u{7f} csi\\u{9b}"),
            ("עברית العربية 👩\u{200d}💻 e\u{301}", "עברית العربية 👩\u{200d}💻 e\u{301}"),
        ] {
            assert_eq!(clean(input), expected, "{input:?}");
        }
    }

    #[test]
    fn columns_align_and_long_cells_are_cut() {
        let long = "é".repeat(100);
        let t = table(&["ID", "NAME"], &[vec!["1".into(), long], vec!["22".into(), "b".into()]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "ID  NAME");
        assert!(lines[1].ends_with('…'));
        assert_eq!(lines[2], "22  b");
    }
}
