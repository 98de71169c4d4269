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

/// The longest cell of a table laid out with [`Layout::Cut`].
const MAX_CELL: usize = 60;

/// How a table treats long cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Cells longer than 60 characters are cut, with an ellipsis.
    Cut,
    /// Every cell whole, however long (for standard output that is not a terminal, which a
    /// script reads).
    Whole,
    /// Lines fit `width` characters: the free-text columns (`false` in `keep`) are narrowed,
    /// widest first, and their cells cut with an ellipsis; the others (ids, states) stay whole.
    Fit {
        /// The terminal's width in characters.
        width: usize,
        /// Per column, whether it is kept whole.
        keep: Vec<bool>,
    },
}

/// Picks a terminal style for a cell: its column and its text.
pub(crate) type Painter = fn(usize, &str) -> anstyle::Style;

/// A table printed a batch of rows at a time, as [`table`] prints it: the header goes out with
/// the first batch, columns are as wide as the widest cell seen so far (a later, wider cell
/// widens the columns from its batch on).
pub(crate) struct StreamedTable {
    headers: Vec<String>,
    widths: Vec<usize>,
    started: bool,
    layout: Layout,
    painter: Option<Painter>,
}

impl StreamedTable {
    /// A table with these column headers, cells cut at 60 characters; nothing printed yet.
    pub(crate) fn new(headers: &[&str]) -> Self {
        Self::with_layout(headers, Layout::Cut, None)
    }

    /// A table with these column headers laid out as `layout` and, with a `painter`, its
    /// cells coloured (the header never is).
    pub(crate) fn with_layout(headers: &[&str], layout: Layout, painter: Option<Painter>) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            widths: headers.iter().map(|h| h.chars().count()).collect(),
            started: false,
            layout,
            painter,
        }
    }

    /// The lines of `rows` (preceded by the header line on the first call).
    pub(crate) fn rows(&mut self, rows: &[Vec<String>]) -> String {
        let max = if self.layout == Layout::Cut { MAX_CELL } else { usize::MAX };
        let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cut(&clean(c), max)).collect()).collect();
        for r in &rows {
            for (w, c) in self.widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let widths = match &self.layout {
            Layout::Fit { width, keep } => fit(&self.widths, keep, *width),
            Layout::Cut | Layout::Whole => self.widths.clone(),
        };
        let mut out = String::new();
        if !self.started {
            self.started = true;
            let headers: Vec<String> = self.headers.iter().zip(&widths).map(|(h, w)| cut(h, *w)).collect();
            line(&mut out, &headers, &widths, None);
        }
        for r in &rows {
            let r: Vec<String> = r.iter().zip(&widths).map(|(c, w)| cut(c, *w)).collect();
            line(&mut out, &r, &widths, self.painter);
        }
        out
    }

    /// What is left to print: the header line when no batch was printed.
    pub(crate) fn end(&mut self) -> String {
        self.rows(&[])
    }
}

/// `s` cut to `max` characters, the last of them an ellipsis when anything was cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    match max {
        0 => String::new(),
        _ => format!("{}…", s.chars().take(max - 1).collect::<String>()),
    }
}

/// Column widths that fit `total` characters (two spaces between columns): the widest column
/// not in `keep` loses a character until the line fits or every such column is down to
/// [`MIN_FREE`] characters (then the line is wider than the terminal: ids stay whole).
pub(crate) fn fit(widths: &[usize], keep: &[bool], total: usize) -> Vec<usize> {
    /// The narrowest a free-text column becomes: a few characters and the ellipsis.
    const MIN_FREE: usize = 4;
    let mut widths = widths.to_vec();
    let gaps = 2 * widths.len().saturating_sub(1);
    loop {
        if widths.iter().sum::<usize>() + gaps <= total {
            return widths;
        }
        let widest = widths
            .iter()
            .enumerate()
            .filter(|(i, w)| !keep.get(*i).copied().unwrap_or(false) && **w > MIN_FREE)
            .max_by_key(|(i, w)| (**w, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        match widest {
            Some(i) => widths[i] -= 1,
            None => return widths,
        }
    }
}

/// One line of cells, padded to `widths`; a painted cell's padding stays outside its colour.
fn line(out: &mut String, cells: &[String], widths: &[usize], painter: Option<Painter>) {
    let parts: Vec<String> = cells
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(i, (c, w))| {
            let pad = " ".repeat(w.saturating_sub(c.chars().count()));
            match painter.map(|p| p(i, c)) {
                Some(style) if style != anstyle::Style::new() && !c.is_empty() => format!("{style}{c}{style:#}{pad}"),
                _ => format!("{c}{pad}"),
            }
        })
        .collect();
    let _ = writeln!(out, "{}", parts.join("  ").trim_end());
}

/// What standard output is: whether it is a terminal, how wide, and whether to colour it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terminal {
    /// Whether standard output is a terminal.
    pub(crate) is_terminal: bool,
    /// Its width in characters, when it is a terminal that says (or `COLUMNS` does).
    pub(crate) width: Option<usize>,
    /// Whether to colour what is printed.
    pub(crate) colour: bool,
}

impl Terminal {
    /// Standard output of this process, and `NO_COLOR` and `COLUMNS` of its environment.
    pub(crate) fn of_stdout() -> Self {
        use std::io::IsTerminal as _;
        let is_terminal = std::io::stdout().is_terminal();
        let width = is_terminal
            .then(|| {
                terminal_size::terminal_size()
                    .map(|(w, _)| usize::from(w.0))
                    .filter(|w| *w > 0)
                    .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).filter(|w| *w > 0))
            })
            .flatten();
        let colour = colour_wanted(is_terminal, std::env::var_os("NO_COLOR").as_deref());
        Self { is_terminal, width, colour }
    }

    /// How a table with columns kept whole as `keep` says is laid out here: fitted to a
    /// terminal of known width, cut at 60 characters on one of unknown width, whole when it
    /// is no terminal.
    pub(crate) fn layout(&self, keep: &[bool]) -> Layout {
        match (self.is_terminal, self.width) {
            (false, _) => Layout::Whole,
            (true, Some(width)) => Layout::Fit { width, keep: keep.to_vec() },
            (true, None) => Layout::Cut,
        }
    }
}

/// Whether to colour standard output: only on a terminal, and never when `NO_COLOR` holds a
/// non-empty value (<https://no-color.org>).
pub(crate) fn colour_wanted(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// The colour of an action's state: green when done, red when failed, yellow when it waits for
/// a person, cyan while it moves; finished without effect stays plain.
pub(crate) fn state_style(state: &str) -> anstyle::Style {
    use anstyle::AnsiColor as C;
    let colour = match state {
        "completed" | "rolled_back" => Some(C::Green),
        "failed" => Some(C::Red),
        "pending_approval" | "held" | "rollback_requested" | "suggested" => Some(C::Yellow),
        "approved" | "executing" | "rolling_back" => Some(C::Cyan),
        _ => None,
    };
    anstyle::Style::new().fg_color(colour.map(anstyle::Color::Ansi))
}

/// The colour of a risk level (`low`, `medium`, `high`, possibly followed by its score).
pub(crate) fn risk_style(risk: &str) -> anstyle::Style {
    use anstyle::AnsiColor as C;
    let colour = match risk.split_whitespace().next() {
        Some("low") => Some(C::Green),
        Some("medium") => Some(C::Yellow),
        Some("high") => Some(C::Red),
        _ => None,
    };
    let style = anstyle::Style::new().fg_color(colour.map(anstyle::Color::Ansi));
    if colour == Some(C::Red) { style.bold() } else { style }
}

/// A list printed an item at a time, exactly as [`json`] prints the whole list: the object
/// `{"items": [...], "schema_version": N}`.
#[derive(Default)]
pub(crate) struct StreamedJsonArray {
    items: usize,
}

impl StreamedJsonArray {
    /// The text of the next item, preceded by the document's opening or the separator.
    pub(crate) fn item(&mut self, value: &serde_json::Value) -> String {
        let mut out = String::from(if self.items == 0 { "{\n  \"items\": [\n" } else { ",\n" });
        self.items += 1;
        // Pretty JSON puts no raw line break inside a string, so indenting lines is safe.
        for (i, line) in pretty(value).lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("    ");
            out.push_str(line);
        }
        out
    }

    /// The closing text; print it with a line break.
    pub(crate) fn end(&self) -> String {
        let tail = format!("\"schema_version\": {SCHEMA_VERSION}\n}}");
        if self.items == 0 { format!("{{\n  \"items\": [],\n  {tail}") } else { format!("\n  ],\n  {tail}") }
    }
}

/// The version of the `--output json` documents' shape: it changes only when a field is
/// removed or changes meaning (new fields may appear at any time).
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// `value` as pretty JSON, as it is.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// `value` as an `--output json` document: an object gains `schema_version`; anything else
/// (a list) becomes `{"items": value, "schema_version": N}`.
pub(crate) fn versioned(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut map = map.clone();
            map.insert("schema_version".to_owned(), serde_json::json!(SCHEMA_VERSION));
            serde_json::Value::Object(map)
        }
        other => serde_json::json!({"items": other, "schema_version": SCHEMA_VERSION}),
    }
}

/// Prints an `--output json` document, pretty (see [`versioned`]).
pub(crate) fn json(value: &serde_json::Value) -> String {
    pretty(&versioned(value))
}

/// Prints a document that is an artifact with a format of its own (a signed tree head, a
/// proof bundle, published keys), exactly as it is, so other tools verify it.
pub(crate) fn artifact_json(value: &serde_json::Value) -> String {
    pretty(value)
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
            text.push_str(&streamed.end());
            assert_eq!(text, json(&serde_json::json!(values)), "{n} items");
            let parsed: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(parsed["items"], serde_json::json!(values));
            assert_eq!(parsed["schema_version"], SCHEMA_VERSION);
        }
    }

    #[test]
    fn every_json_document_is_an_object_with_the_schema_version() {
        let doc: serde_json::Value = serde_json::from_str(&json(&serde_json::json!({"a": 1}))).expect("JSON");
        assert_eq!(doc, serde_json::json!({"a": 1, "schema_version": SCHEMA_VERSION}));
        let doc: serde_json::Value = serde_json::from_str(&json(&serde_json::json!([1, 2]))).expect("JSON");
        assert_eq!(doc, serde_json::json!({"items": [1, 2], "schema_version": SCHEMA_VERSION}));
        let artifact: serde_json::Value =
            serde_json::from_str(&artifact_json(&serde_json::json!({"a": 1}))).expect("JSON");
        assert_eq!(artifact, serde_json::json!({"a": 1}), "artifacts stay as they are");
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

    #[track_caller]
    fn check_fit(widths: &[usize], keep: &[bool], total: usize, expected: &[usize]) {
        assert_eq!(fit(widths, keep, total), expected, "{widths:?} {keep:?} in {total}");
    }

    #[test]
    fn free_text_columns_narrow_widest_first_to_fit() {
        // 36 + 4 + 2 * 2 = 44 characters.
        check_fit(&[36, 4, 4], &[true, false, false], 80, &[36, 4, 4]);
        check_fit(&[10, 20, 30], &[true, false, false], 64, &[10, 20, 30]);
        check_fit(&[10, 20, 30], &[true, false, false], 54, &[10, 20, 20]);
        check_fit(&[10, 20, 30], &[true, false, false], 44, &[10, 15, 15]);
        // Kept columns never narrow, and free ones stop at 4 characters.
        check_fit(&[36, 16, 30], &[true, true, false], 40, &[36, 16, 4]);
        check_fit(&[36, 2, 30], &[true, false, false], 10, &[36, 2, 4]);
        check_fit(&[], &[], 0, &[]);
    }

    #[test]
    fn a_fitted_table_cuts_free_text_and_keeps_ids_whole() {
        let id = "0190b7e2-6f1c-7d35-9a57-3f0c6f1a2b3c";
        let mut t = StreamedTable::with_layout(
            &["ID", "STATE", "TARGET"],
            Layout::Fit { width: 60, keep: vec![true, true, false] },
            None,
        );
        let text = t.rows(&[vec![id.into(), "pending_approval".into(), "x".repeat(100)]]);
        for line in text.lines() {
            assert!(line.chars().count() <= 60, "{line}");
        }
        let row = text.lines().nth(1).expect("row");
        assert!(row.starts_with(&format!("{id}  pending_approval  ")), "{row}");
        assert!(row.ends_with('…'), "{row}");
        let mut whole = StreamedTable::with_layout(&["ID", "TARGET"], Layout::Whole, None);
        let text = whole.rows(&[vec![id.into(), "x".repeat(100)]]);
        assert!(text.contains(&"x".repeat(100)) && !text.contains('…'), "{text}");
    }

    #[test]
    fn painted_cells_keep_their_alignment_and_the_header_stays_plain() {
        let mut t = StreamedTable::with_layout(
            &["STATE", "RISK"],
            Layout::Whole,
            Some(|i, c| if i == 0 { state_style(c) } else { risk_style(c) }),
        );
        let text = t.rows(&[vec!["failed".into(), "high".into()], vec!["pending_approval".into(), "low".into()]]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "STATE             RISK");
        assert_eq!(lines[1], "\u{1b}[31mfailed\u{1b}[0m            \u{1b}[1m\u{1b}[31mhigh\u{1b}[0m");
        assert_eq!(lines[2], "\u{1b}[33mpending_approval\u{1b}[0m  \u{1b}[32mlow\u{1b}[0m");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(true, Some(OsStr::new("false"))), "any non-empty value disables");
        assert!(!colour_wanted(false, None));
    }

    #[test]
    fn states_and_risks_have_their_colours() {
        use anstyle::{AnsiColor as C, Color};
        let fg = |s: anstyle::Style| s.get_fg_color();
        assert_eq!(fg(state_style("completed")), Some(Color::Ansi(C::Green)));
        assert_eq!(fg(state_style("failed")), Some(Color::Ansi(C::Red)));
        assert_eq!(fg(state_style("pending_approval")), Some(Color::Ansi(C::Yellow)));
        assert_eq!(fg(state_style("held")), Some(Color::Ansi(C::Yellow)));
        assert_eq!(fg(state_style("cancelled")), None);
        assert_eq!(fg(risk_style("low (1)")), Some(Color::Ansi(C::Green)));
        assert_eq!(fg(risk_style("medium (3)")), Some(Color::Ansi(C::Yellow)));
        assert_eq!(fg(risk_style("high (4)")), Some(Color::Ansi(C::Red)));
        assert_eq!(fg(risk_style("-")), None);
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
