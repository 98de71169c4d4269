//! Golden request fixtures: the requests an action sent, compared with a checked-in JSON
//! file written from the provider's documentation.
//!
//! A fixture `tests/golden/<name>.json` is an array of `{method, path, query, headers,
//! body}`; only the headers the fixture set names are compared (credentials masked as
//! `<scheme> ***`). With `REMEDIATION_BLESS=1` a *missing* fixture is written from what was
//! recorded; an existing one is never overwritten. Blessing is for new cases only: each
//! fixture is reviewed against the provider's documentation before it is committed.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::fakes::RecordedRequest;

/// The environment variable that lets [`Golden::check`] write missing fixtures.
pub const BLESS_VAR: &str = "REMEDIATION_BLESS";

/// Headers compared by default: the ones a provider's documentation prescribes.
pub const DEFAULT_HEADERS: &[&str] = &["accept", "authorization", "content-type", "if-match", "x-github-api-version"];

/// A directory of golden request fixtures.
#[derive(Debug, Clone)]
pub struct Golden {
    dir: PathBuf,
    headers: Vec<String>,
}

impl Golden {
    /// Fixtures in `dir` (usually `concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")`),
    /// comparing [`DEFAULT_HEADERS`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), headers: DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect() }
    }

    /// Compares these headers instead (lower-case names).
    pub fn headers(mut self, names: &[&str]) -> Self {
        self.headers = names.iter().map(|h| h.to_ascii_lowercase()).collect();
        self
    }

    /// The fixture form of `requests`: the compared fields only.
    pub fn render(&self, requests: &[RecordedRequest]) -> Value {
        Value::Array(
            requests
                .iter()
                .map(|r| {
                    let headers: serde_json::Map<String, Value> = r
                        .headers
                        .iter()
                        .filter(|(k, _)| self.headers.contains(k))
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    let query: Vec<Value> = r.query.iter().map(|(k, v)| json!([k, v])).collect();
                    let mut o = json!({ "method": r.method, "path": r.path, "headers": headers });
                    if !query.is_empty() {
                        o["query"] = Value::Array(query);
                    }
                    if let Some(b) = &r.body {
                        o["body"] = b.clone();
                    }
                    o
                })
                .collect(),
        )
    }

    /// Checks `requests` against fixture `name`; an error says what differs (or that the
    /// fixture is missing, with the JSON to review).
    pub fn compare(&self, name: &str, requests: &[RecordedRequest]) -> Result<(), String> {
        let path = self.dir.join(format!("{name}.json"));
        let actual = self.render(requests);
        let pretty = serde_json::to_string_pretty(&actual).unwrap_or_default();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) if std::env::var(BLESS_VAR).is_ok_and(|v| v == "1") => {
                std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
                std::fs::write(&path, format!("{pretty}\n"))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                eprintln!("golden: wrote {} — review it against the provider's documentation", path.display());
                return Ok(());
            }
            Err(_) => {
                return Err(format!(
                    "golden fixture {} is missing; write it from the provider's documentation \
                     (or run with {BLESS_VAR}=1 and review). Recorded:\n{pretty}",
                    path.display()
                ));
            }
        };
        let expected: Value =
            serde_json::from_str(&text).map_err(|e| format!("golden fixture {} is not JSON: {e}", path.display()))?;
        if expected == actual {
            Ok(())
        } else {
            let want = serde_json::to_string_pretty(&expected).unwrap_or_default();
            Err(format!(
                "requests differ from golden fixture {}\nexpected:\n{want}\nrecorded:\n{pretty}",
                path.display()
            ))
        }
    }

    /// [`Golden::compare`], panicking with its message.
    #[track_caller]
    pub fn check(&self, name: &str, requests: &[RecordedRequest]) {
        if let Err(msg) = self.compare(name, requests) {
            panic!("{msg}");
        }
    }
}
