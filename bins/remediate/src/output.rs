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
    let mut t = StreamedTable::new(headers);
    let mut out = t.rows(rows);
    out.push_str(&t.end());
    out
}

/// A table printed a batch of rows at a time, as [`table`] prints it: the header goes out with
/// the first batch, columns are as wide as the widest cell seen so far (a later, wider cell
/// widens the columns from its batch on).
pub(crate) struct StreamedTable {
    headers: Vec<String>,
    widths: Vec<usize>,
    started: bool,
}

impl StreamedTable {
    /// A table with these column headers; nothing printed yet.
    pub(crate) fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            widths: headers.iter().map(|h| h.chars().count()).collect(),
            started: false,
        }
    }

    /// The lines of `rows` (preceded by the header line on the first call).
    pub(crate) fn rows(&mut self, rows: &[Vec<String>]) -> String {
        const MAX: usize = 60;
        let cut = |s: &str| {
            let s = clean(s);
            if s.chars().count() > MAX { format!("{}…", s.chars().take(MAX - 1).collect::<String>()) } else { s }
        };
        let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cut(c)).collect()).collect();
        for r in &rows {
            for (w, c) in self.widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            self.line(&mut out, &self.headers);
        }
        for r in &rows {
            self.line(&mut out, r);
        }
        out
    }

    /// What is left to print: the header line when no batch was printed.
    pub(crate) fn end(&mut self) -> String {
        self.rows(&[])
    }

    fn line(&self, out: &mut String, cells: &[String]) {
        let parts: Vec<String> = cells.iter().zip(&self.widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    }
}

/// A JSON array printed an item at a time, exactly as [`json`] prints the whole array.
#[derive(Default)]
pub(crate) struct StreamedJsonArray {
    items: usize,
}

impl StreamedJsonArray {
    /// The text of the next item, preceded by the opening bracket or the separator.
    pub(crate) fn item(&mut self, value: &serde_json::Value) -> String {
        let mut out = String::from(if self.items == 0 { "[\n" } else { ",\n" });
        self.items += 1;
        // Pretty JSON puts no raw line break inside a string, so indenting lines is safe.
        for (i, line) in json(value).lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("  ");
            out.push_str(line);
        }
        out
    }

    /// The closing text (`[]` when there was no item); print it with a line break.
    pub(crate) fn end(&self) -> &'static str {
        if self.items == 0 { "[]" } else { "\n]" }
    }
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
    let judged = &p.judged;
    let mut parts = Vec::new();
    if !judged.missing.is_empty() {
        parts.push(format!("missing: {}", judged.missing.join(", ")));
    }
    if !judged.unknown.is_empty() {
        let why = judged.unknown_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        parts.push(format!("unknown: {}{why}", judged.unknown.join(", ")));
    }
    if parts.is_empty() { "ok".to_owned() } else { parts.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_ok_only_when_all_are_known_granted() {
        let view = |missing: &[&str], unknown: &[&str]| remediation_api::types::PermissionsView {
            judged: remediation_core::Permissions {
                granted: vec!["User.Read.All".into()],
                missing: missing.iter().map(|m| (*m).to_owned()).collect(),
                unknown: unknown.iter().map(|m| (*m).to_owned()).collect(),
                unknown_reason: (!unknown.is_empty()).then(|| "opaque token".to_owned()),
            },
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
    fn a_streamed_json_array_prints_as_the_whole_array() {
        for n in 0..3 {
            let values: Vec<serde_json::Value> =
                (0..n).map(|i| serde_json::json!({"id": i, "target": {"identity": "a\nb"}, "list": [1, 2]})).collect();
            let mut streamed = StreamedJsonArray::default();
            let mut text: String = values.iter().map(|v| streamed.item(v)).collect();
            text.push_str(streamed.end());
            assert_eq!(text, json(&serde_json::json!(values)), "{n} items");
        }
    }

    #[test]
    fn a_table_printed_in_batches_has_one_header_and_every_row() {
        let rows: Vec<Vec<String>> = (0..5).map(|i| vec![i.to_string(), "x".repeat(i)]).collect();
        let mut t = StreamedTable::new(&["N", "XS"]);
        let mut text = t.rows(&rows[..2]);
        text.push_str(&t.rows(&rows[2..]));
        text.push_str(&t.end());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert_eq!(lines[0], "N  XS");
        assert_eq!(lines[5], "4  xxxx");
        assert_eq!(StreamedTable::new(&["N"]).end(), "N\n", "an empty table is its header");
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
