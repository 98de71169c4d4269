//! Findings from real scanners: a document's text becomes, entry by entry, the project's own
//! [`Finding`] or a reason why not (nothing to do, unsupported, invalid).
//!
//! Formats read ([`DocumentFormat`]):
//!
//! - this project's own finding JSON (an array of them; one object keeps its own path),
//! - Prowler's `json-ocsf` output: an array of OCSF Detection Findings whose
//!   `metadata.product.name` is `Prowler` (check id `metadata.event_code`, status
//!   `status_code`: only `FAIL` asks for a change),
//! - AWS Security Hub ASFF: `{"Findings": [...]}` (GetFindings, BatchImportFindings), an array
//!   or one finding (control id `Compliance.SecurityControlId`, status `Compliance.Status`),
//! - OCSF 1.x Detection Finding (`class_uid` 2004) and the older Security Finding (2001) from
//!   any product. The check is identified by `metadata.event_code`, which OCSF defines as the
//!   code or name the product uses to identify the kind of event; `finding_info.types` are
//!   categories and `finding_info.title` is prose, so neither is used as a check id.
//!
//! Detection looks at keys no two formats share (`suggested_kind`, `SchemaVersion` with
//! `ProductArn`, `class_uid`); an entry with none or several, or a document mixing formats, is
//! refused with the reason. Which checks become which action is [`mapping::RULES`]; anything
//! else is reported as unsupported with its check id, never guessed. Expected partial failure
//! is data: one bad entry does not refuse the others.

pub mod arn;
mod asff;
pub mod mapping;
mod ocsf;

use remediation_core::{Finding, Severity};
use serde_json::Value;

/// A format of findings document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DocumentFormat {
    /// This project's own finding JSON (`schemas/finding.schema.json`).
    Finding,
    /// Prowler v4/v5 `--output-formats json-ocsf`.
    ProwlerOcsf,
    /// AWS Security Finding Format, as Security Hub returns and imports it.
    SecurityHubAsff,
    /// OCSF 1.x Detection Finding (2004) or Security Finding (2001), any product.
    Ocsf,
}

impl DocumentFormat {
    /// Every format, in the order of [`Self::as_str`]'s documentation.
    pub const ALL: [Self; 4] = [Self::Finding, Self::ProwlerOcsf, Self::SecurityHubAsff, Self::Ocsf];

    /// The name used on the command line and the wire: `finding`, `prowler-ocsf`, `asff`,
    /// `ocsf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finding => "finding",
            Self::ProwlerOcsf => "prowler-ocsf",
            Self::SecurityHubAsff => "asff",
            Self::Ocsf => "ocsf",
        }
    }

    /// The format named `name` ([`Self::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl std::fmt::Display for DocumentFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits on what is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// The longest document, in bytes.
    pub max_bytes: usize,
    /// The most entries.
    pub max_entries: usize,
}

impl Default for ReadOptions {
    /// 256 MiB and 200,000 entries: a full Prowler scan of a large account (passes included)
    /// is around 15,000 entries and 120 MB.
    fn default() -> Self {
        Self { max_bytes: 256 << 20, max_entries: 200_000 }
    }
}

/// Why a document as a whole is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Larger than [`ReadOptions::max_bytes`].
    #[error("the document has {size} bytes, more than the {limit} read")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// More entries than [`ReadOptions::max_entries`].
    #[error("the document has {count} entries, more than the {limit} read; split it")]
    TooManyEntries {
        /// How many.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON (or nested deeper than the parser follows).
    #[error("the document is not JSON (line {line}, column {column})")]
    NotJson {
        /// Where.
        line: usize,
        /// Where.
        column: usize,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Not a findings document of any known format.
    #[error("the document is not recognised: {reason}")]
    NotRecognised {
        /// Why, naming the keys looked for.
        reason: String,
    },
    /// The declared format is not the one the document has.
    #[error("the document was declared {declared} but is {detected}")]
    NotDeclared {
        /// As declared.
        declared: DocumentFormat,
        /// As detected.
        detected: DocumentFormat,
    },
}

/// What became of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryOutcome {
    /// A finding that asks for a remediation.
    Finding(Box<Finding>),
    /// The scanner reports nothing to fix (a pass, a manual check, a suppressed finding).
    NothingToDo {
        /// Why.
        reason: String,
    },
    /// A real failing check that the mapping table does not turn into an action.
    Unsupported {
        /// Why, naming the check.
        reason: String,
    },
    /// The entry is malformed: a field is missing, or its resource cannot be named exactly.
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

impl EntryOutcome {
    /// `finding`, `nothing_to_do`, `unsupported` or `invalid`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Finding(_) => "finding",
            Self::NothingToDo { .. } => "nothing_to_do",
            Self::Unsupported { .. } => "unsupported",
            Self::Invalid { .. } => "invalid",
        }
    }
}

/// One entry of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerEntry {
    /// Its position in the document, from 0.
    pub index: usize,
    /// The scanner's id of the finding, when the entry has one.
    pub finding_id: Option<String>,
    /// The check or control id, when the entry has one.
    pub control_id: Option<String>,
    /// What became of it.
    pub outcome: EntryOutcome,
}

/// A document read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerDocument {
    /// Its format (`None` for an empty array, which has no entries to tell by).
    pub format: Option<DocumentFormat>,
    /// Its entries, in order.
    pub entries: Vec<ScannerEntry>,
}

/// Keys only a scanner's document has at its top level (OCSF, ASFF, ASFF's wrapper).
const DOCUMENT_KEYS: [&str; 3] = ["class_uid", "SchemaVersion", "Findings"];

/// Whether `value` is a document for [`read_findings_value`] rather than one finding in this
/// project's own format: an array, or an object with a key only scanners' documents have.
/// Anything else stays on the one-finding path, whose errors name the offending field.
pub fn is_document(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Object(map) => DOCUMENT_KEYS.iter().any(|k| map.contains_key(*k)),
        _ => false,
    }
}

/// Whether `text` is one finding in this project's own format (an object with
/// `suggested_kind`), which callers keep on its own path and answer as before.
pub fn is_own_finding(text: &str) -> bool {
    matches!(serde_json::from_str::<Value>(text), Ok(Value::Object(map)) if map.contains_key("suggested_kind"))
}

/// Reads `text` (see the module docs). `declared`, when given, must be the format detected,
/// except that a Prowler document may be declared `ocsf`.
pub fn read_findings(
    text: &str,
    declared: Option<DocumentFormat>,
    options: &ReadOptions,
) -> Result<ScannerDocument, ReadError> {
    if text.len() > options.max_bytes {
        return Err(ReadError::TooLarge { size: text.len(), limit: options.max_bytes });
    }
    read_findings_value(parse_stream(text)?, declared, options)
}

/// `text` as one JSON value: the value itself, or, for a stream of several (JSON Lines, or
/// values one after another), an array of them in order.
pub fn parse_stream(text: &str) -> Result<Value, ReadError> {
    let mut values = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        values.push(value.map_err(|e| ReadError::NotJson { line: e.line(), column: e.column(), source: e })?);
    }
    match values.len() {
        1 => Ok(values.pop().unwrap_or(Value::Null)),
        _ => Ok(Value::Array(values)),
    }
}

/// As [`read_findings`], for a document already parsed (a request body); the caller limits
/// its size.
pub fn read_findings_value(
    value: Value,
    declared: Option<DocumentFormat>,
    options: &ReadOptions,
) -> Result<ScannerDocument, ReadError> {
    let (items, wrapped) = match value {
        Value::Array(items) => (items, false),
        Value::Object(mut map) if map.contains_key("Findings") => match map.remove("Findings") {
            Some(Value::Array(items)) => (items, true),
            _ => {
                return Err(ReadError::NotRecognised {
                    reason: "`Findings` is not an array (ASFF wraps its findings in `{\"Findings\": [...]}`)"
                        .to_owned(),
                });
            }
        },
        v @ Value::Object(_) => (vec![v], false),
        other => {
            return Err(ReadError::NotRecognised {
                reason: format!("it is a JSON {}, not an object or an array of findings", kind_of(&other)),
            });
        }
    };
    if items.len() > options.max_entries {
        return Err(ReadError::TooManyEntries { count: items.len(), limit: options.max_entries });
    }
    let mut format = None;
    for (i, item) in items.iter().enumerate() {
        let f = classify(item).map_err(|reason| ReadError::NotRecognised { reason: format!("entry {i} {reason}") })?;
        match format {
            None => format = Some(f),
            Some(first) if first != f => {
                return Err(ReadError::NotRecognised {
                    reason: format!("entry 0 is {first} but entry {i} is {f}; one document holds one format"),
                });
            }
            Some(_) => {}
        }
    }
    if wrapped && format.is_some_and(|f| f != DocumentFormat::SecurityHubAsff) {
        return Err(ReadError::NotRecognised {
            reason: "`{\"Findings\": [...]}` holds ASFF findings, and these are not".to_owned(),
        });
    }
    if let (Some(declared), Some(detected)) = (declared, format)
        && declared != detected
        && !(declared == DocumentFormat::Ocsf && detected == DocumentFormat::ProwlerOcsf)
    {
        return Err(ReadError::NotDeclared { declared, detected });
    }
    let entries = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let mut entry = match format {
                Some(DocumentFormat::Finding) => own(item),
                Some(DocumentFormat::SecurityHubAsff) => asff::read(item),
                Some(DocumentFormat::ProwlerOcsf | DocumentFormat::Ocsf) | None => ocsf::read(item),
            };
            entry.index = index;
            entry
        })
        .collect();
    Ok(ScannerDocument { format, entries })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The format of one entry, by keys no two formats share.
fn classify(item: &Value) -> Result<DocumentFormat, String> {
    let Value::Object(map) = item else {
        return Err(format!("is a JSON {}, not an object", kind_of(item)));
    };
    let own = map.contains_key("suggested_kind");
    let asff = map.contains_key("SchemaVersion") && map.contains_key("ProductArn");
    let ocsf = map.contains_key("class_uid");
    match (own, asff, ocsf) {
        (true, false, false) => Ok(DocumentFormat::Finding),
        (false, true, false) => Ok(DocumentFormat::SecurityHubAsff),
        (false, false, true) => Ok(if str_at(item, &["metadata", "product", "name"]) == Some("Prowler") {
            DocumentFormat::ProwlerOcsf
        } else {
            DocumentFormat::Ocsf
        }),
        (false, false, false) => Err("has none of the keys that identify a format: `suggested_kind` (this project's finding), `SchemaVersion` with `ProductArn` (AWS Security Finding Format), `class_uid` (OCSF)".to_owned()),
        _ => Err("has the keys of more than one format (`suggested_kind`, `SchemaVersion` with `ProductArn`, `class_uid`); it is not read by guess".to_owned()),
    }
}

fn own(item: &Value) -> ScannerEntry {
    let finding_id = str_at(item, &["id"]).map(str::to_owned);
    let control_id = str_at(item, &["control_id"]).map(str::to_owned);
    let outcome = match serde_json::from_value::<Finding>(item.clone()) {
        Ok(f) => EntryOutcome::Finding(Box::new(f)),
        Err(e) => EntryOutcome::Invalid { reason: format!("not a valid finding: {e}") },
    };
    ScannerEntry { index: 0, finding_id, control_id, outcome }
}

/// The string at `path`, when every step is there and it is a non-blank string.
fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str().filter(|s| !s.trim().is_empty())
}

/// One resource an entry names: its type as the scanner spells it, and its id (an ARN).
#[derive(Debug)]
struct Resource<'a> {
    kind: Option<&'a str>,
    uid: &'a str,
}

/// The finding for a failing check: the mapping's action on the one resource of the rule's
/// type, or why not.
struct Failing<'a> {
    scanner: mapping::Scanner,
    source: String,
    id: String,
    check: String,
    severity: Severity,
    title: String,
    description: Option<String>,
    resources: Vec<Resource<'a>>,
}

impl Failing<'_> {
    fn into_outcome(self) -> EntryOutcome {
        let Some(rule) = mapping::lookup(self.scanner, &self.check) else {
            return EntryOutcome::Unsupported {
                reason: format!("{} check `{}` is not in the mapping table", self.source, self.check),
            };
        };
        let on = match rule.remedy {
            mapping::Remedy::Enforce { on, .. }
            | mapping::Remedy::Revoke { on, .. }
            | mapping::Remedy::Rotate { on } => on,
            mapping::Remedy::Unsupported { reason } => {
                return EntryOutcome::Unsupported { reason: format!("`{}`: {reason}", self.check) };
            }
        };
        let wanted = on.aws_type();
        let typed: Vec<&Resource<'_>> = self.resources.iter().filter(|r| r.kind == Some(wanted)).collect();
        let resource = match (self.resources.as_slice(), typed.as_slice()) {
            ([], _) => return self.invalid("names no resource".to_owned()),
            (_, [one]) => *one,
            ([one], []) if one.kind.is_none() => one,
            ([one], []) => {
                return self.invalid(format!(
                    "names a resource of type `{}`, but check `{}` is about `{wanted}`",
                    one.kind.unwrap_or_default(),
                    self.check
                ));
            }
            (all, _) => {
                return self.invalid(format!(
                    "names {} resources and {} of type `{wanted}`; which one is meant is not guessed",
                    all.len(),
                    typed.len()
                ));
            }
        };
        match rule.remedy.action(resource.uid) {
            Some(Ok((kind, target))) => EntryOutcome::Finding(Box::new(Finding {
                id: self.id,
                source: self.source,
                control_id: self.check,
                severity: self.severity,
                title: self.title,
                description: self.description,
                target,
                suggested_kind: kind,
                connector: Some(mapping::AWS_CONNECTOR.to_owned()),
            })),
            Some(Err(e)) => self.invalid(e.to_string()),
            None => EntryOutcome::Unsupported { reason: format!("`{}` is not mapped to an action", self.check) },
        }
    }

    fn invalid(&self, what: String) -> EntryOutcome {
        EntryOutcome::Invalid { reason: format!("{} finding `{}` ({}) {what}", self.source, self.id, self.check) }
    }
}

#[cfg(test)]
mod tests;
