//! Requests checked against the provider's own API description.
//!
//! `api-descriptions/` at the repository root holds, per provider, the part of the
//! provider's published OpenAPI description the connectors use (see its README). An
//! [`ApiDescription`] loads one and [`ApiDescription::validate`] checks a
//! [`RecordedRequest`] against it: the operation (method and path template, path parameters
//! against their schemas), every query parameter (defined, value accepted), the required
//! query and header parameters, the body's media type and the JSON body against the
//! operation's request body schema.
//!
//! It is wired in two places: each connector's golden fixtures are validated file by file
//! ([`ApiDescription::validate_fixtures`]), and a fake with a description attached
//! ([`crate::fakes::Faults::describe`]) answers an undefined request with 400 naming the
//! violation, so a conformance suite sending one fails.
//!
//! The schema check is a small subset of JSON Schema, enough for request bodies: `type`
//! (with OpenAPI 3.0 `nullable` and 3.1 type lists), `enum`, `const`, `pattern`,
//! `required`, `properties`, `additionalProperties`, `items`, `allOf`, `anyOf`, `oneOf`
//! and `$ref` to `#/components/...`. `oneOf` is checked as "at least one branch": the
//! providers' branches overlap (no discriminating `required`), so exclusivity would reject
//! valid requests.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::fakes::{RecordedRequest, percent_decode};

/// Okta's management API ([`okta-management-openapi-spec`](https://github.com/okta/okta-management-openapi-spec)).
pub const OKTA: &str = include_str!("../../../api-descriptions/okta.json");
/// The operations the Okta connector calls, `METHOD /path/template` a line.
pub const OKTA_OPERATIONS: &str = include_str!("../../../api-descriptions/okta.operations");
/// The Admin SDK Directory API, converted from Google's discovery document.
pub const GOOGLE: &str = include_str!("../../../api-descriptions/google.json");
/// The operations the Google connector calls.
pub const GOOGLE_OPERATIONS: &str = include_str!("../../../api-descriptions/google.operations");
/// GitHub's REST API ([`rest-api-description`](https://github.com/github/rest-api-description)).
pub const GITHUB: &str = include_str!("../../../api-descriptions/github.json");
/// The operations the GitHub connector calls.
pub const GITHUB_OPERATIONS: &str = include_str!("../../../api-descriptions/github.operations");
/// Microsoft Graph v1.0, the part the Entra ID connector calls.
pub const GRAPH: &str = include_str!("../../../api-descriptions/graph.json");
/// The operations the Entra ID connector calls.
pub const GRAPH_OPERATIONS: &str = include_str!("../../../api-descriptions/graph.operations");

/// Why a description could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    /// The text is not JSON.
    #[error("the API description is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is not an OpenAPI document this module understands.
    #[error("the API description is malformed: {0}")]
    Malformed(String),
    /// A fixture file could not be read or parsed.
    #[error("fixture {path}: {message}")]
    Fixture {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// What a request does that the description does not allow, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct Violations(pub Vec<String>);

/// One path segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// Path parameters a request gave, by name, decoded.
type PathParams = Vec<(String, String)>;

/// One operation: method, template and where it sits in the document.
#[derive(Debug, Clone)]
struct Operation {
    method: String,
    template: String,
    segments: Vec<Segment>,
}

/// A loaded, reduced OpenAPI description.
#[derive(Debug, Clone)]
pub struct ApiDescription {
    doc: Value,
    /// The path part of the first server URL (`/v1.0` for Graph), stripped from requests.
    base: String,
    operations: Vec<Operation>,
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn segments(template: &str) -> Vec<Segment> {
    template
        .trim_start_matches('/')
        .split('/')
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Segment::Param(name.to_owned()),
            None => Segment::Literal(s.to_owned()),
        })
        .collect()
}

impl ApiDescription {
    /// Parses a description (OpenAPI 3 JSON).
    pub fn parse(text: &str) -> Result<Self, DescriptionError> {
        let doc: Value = serde_json::from_str(text)?;
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or_else(|| DescriptionError::Malformed("no `paths` object".to_owned()))?;
        let mut operations = Vec::new();
        for (template, item) in paths {
            for method in METHODS {
                if item.get(*method).is_some() {
                    operations.push(Operation {
                        method: method.to_ascii_uppercase(),
                        template: template.clone(),
                        segments: segments(template),
                    });
                }
            }
        }
        let server = doc.pointer("/servers/0/url").and_then(Value::as_str).unwrap_or("");
        let after_scheme = server.split_once("://").map_or(server, |(_, rest)| rest);
        let base = after_scheme.find('/').map_or("", |i| &after_scheme[i..]).trim_end_matches('/').to_owned();
        Ok(Self { doc, base, operations })
    }

    /// Okta's management API description.
    pub fn okta() -> Result<Self, DescriptionError> {
        Self::parse(OKTA)
    }

    /// Google's Admin SDK Directory API description.
    pub fn google() -> Result<Self, DescriptionError> {
        Self::parse(GOOGLE)
    }

    /// GitHub's REST API description.
    pub fn github() -> Result<Self, DescriptionError> {
        Self::parse(GITHUB)
    }

    /// Microsoft Graph's description (the Entra ID connector).
    pub fn graph() -> Result<Self, DescriptionError> {
        Self::parse(GRAPH)
    }

    /// Every operation as `METHOD /path/template`, sorted.
    pub fn operations(&self) -> BTreeSet<String> {
        self.operations.iter().map(|o| format!("{} {}", o.method, o.template)).collect()
    }

    /// The lines of an operations list (`METHOD /path/template`; `#` comments and blank
    /// lines ignored) that this description does not define.
    pub fn missing_operations(&self, list: &str) -> Vec<String> {
        let defined = self.operations();
        list.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter(|l| !defined.contains(*l))
            .map(str::to_owned)
            .collect()
    }

    /// Resolves `$ref` chains (`#/components/...`) to the referenced value.
    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => match r.strip_prefix('#').and_then(|p| self.doc.pointer(p)) {
                    Some(target) => v = target,
                    None => return v,
                },
                None => return v,
            }
        }
        v
    }

    /// The operation `method` `path` (the request's path, with the server's base) calls,
    /// preferring the template with the most literal segments; or why there is none.
    fn find(&self, method: &str, path: &str) -> Result<(&Operation, PathParams), String> {
        let Some(relative) = path.strip_prefix(&self.base) else {
            return Err(format!("{method} {path}: not under the description's base path {}", self.base));
        };
        let actual: Vec<&str> = relative.trim_start_matches('/').split('/').collect();
        let mut best: Option<(&Operation, PathParams, usize)> = None;
        let mut other_methods = Vec::new();
        for op in &self.operations {
            if op.segments.len() != actual.len() {
                continue;
            }
            let mut params = Vec::new();
            let mut literals = 0;
            let matched = op.segments.iter().zip(&actual).all(|(s, a)| match s {
                Segment::Literal(l) => {
                    literals += 1;
                    // OData: a bound action may be called without its namespace
                    // (`revokeSignInSessions` for `microsoft.graph.revokeSignInSessions`).
                    l == a || l.strip_prefix("microsoft.graph.") == Some(*a)
                }
                Segment::Param(name) => {
                    // `+` is literal in a path.
                    params.push((name.clone(), percent_decode(&a.replace('+', "%2B"))));
                    !a.is_empty()
                }
            });
            if !matched {
                continue;
            }
            if op.method != method {
                other_methods.push(format!("{} {}", op.method, op.template));
                continue;
            }
            if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
                best = Some((op, params, literals));
            }
        }
        match best {
            Some((op, params, _)) => Ok((op, params)),
            None if other_methods.is_empty() => Err(format!("{method} {path}: no path in the description matches")),
            None => {
                Err(format!("{method} {path}: the description defines only {} on this path", other_methods.join(", ")))
            }
        }
    }

    /// The operation's parameters, path-item level ones overridden by the operation's.
    fn parameters(&self, op: &Operation) -> Vec<&Value> {
        let item = &self.doc["paths"][&op.template];
        let operation = &item[op.method.to_ascii_lowercase()];
        let mut out: Vec<&Value> = Vec::new();
        let key = |p: &Value| {
            (
                p.get("name").and_then(Value::as_str).map(str::to_owned),
                p.get("in").and_then(Value::as_str).map(str::to_owned),
            )
        };
        for list in [&item["parameters"], &operation["parameters"]] {
            for p in list.as_array().into_iter().flatten() {
                let p = self.resolve(p);
                out.retain(|q| key(q) != key(p));
                out.push(p);
            }
        }
        out
    }

    /// Checks `request` against the description; every violation is listed.
    pub fn validate(&self, request: &RecordedRequest) -> Result<(), Violations> {
        let (op, path_params) = self.find(&request.method, &request.path).map_err(|e| Violations(vec![e]))?;
        let name = format!("{} {}", op.method, op.template);
        let mut errors = Vec::new();
        let params = self.parameters(op);
        let param = |location: &str, n: &str| {
            params.iter().copied().find(|p| {
                p.get("in").and_then(Value::as_str) == Some(location)
                    && p.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|pn| if location == "header" { pn.eq_ignore_ascii_case(n) } else { pn == n })
            })
        };

        for (n, value) in &path_params {
            match param("path", n) {
                Some(p) => {
                    self.check_parameter(p, std::slice::from_ref(value), &format!("path parameter {n}"), &mut errors)
                }
                None => errors.push(format!("path parameter {n} is not described")),
            }
        }

        let mut seen = BTreeSet::new();
        for (n, _) in &request.query {
            if !seen.insert(n.as_str()) {
                continue;
            }
            let values: Vec<String> = request.query.iter().filter(|(k, _)| k == n).map(|(_, v)| v.clone()).collect();
            match param("query", n) {
                Some(p) => self.check_parameter(p, &values, &format!("query parameter {n}"), &mut errors),
                None => errors.push(format!("query parameter {n} is not defined")),
            }
        }

        for p in &params {
            let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let location = p.get("in").and_then(Value::as_str).unwrap_or("");
            let n = p.get("name").and_then(Value::as_str).unwrap_or("");
            match location {
                "query" if required && !request.query.iter().any(|(k, _)| k == n) => {
                    errors.push(format!("required query parameter {n} is missing"));
                }
                "header" => {
                    let lower = n.to_ascii_lowercase();
                    match request.headers.get(&lower) {
                        // Credentials are the HTTP client's business and recorded masked.
                        _ if lower == "authorization" => {}
                        Some(v) => {
                            self.check_parameter(p, std::slice::from_ref(v), &format!("header {n}"), &mut errors);
                        }
                        None if required => errors.push(format!("required header {n} is missing")),
                        None => {}
                    }
                }
                _ => {}
            }
        }

        let operation = &self.doc["paths"][&op.template][op.method.to_ascii_lowercase()];
        let body_spec = operation.get("requestBody").map(|b| self.resolve(b));
        match (&request.body, body_spec) {
            (None, Some(spec)) if spec.get("required").and_then(Value::as_bool).unwrap_or(false) => {
                errors.push("the request body is required".to_owned());
            }
            (None, _) => {}
            (Some(_), None) => errors.push("a body is sent but the operation defines none".to_owned()),
            (Some(body), Some(spec)) => {
                let content_type = request
                    .headers
                    .get("content-type")
                    .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
                    .unwrap_or_default();
                let content = spec.get("content").and_then(Value::as_object);
                let media =
                    content.and_then(|c| c.iter().find(|(k, _)| media_matches(k, &content_type)).map(|(_, v)| v));
                match media {
                    None => errors.push(format!(
                        "content type {content_type:?} is not one the operation accepts ({})",
                        content.map(|c| c.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()
                    )),
                    Some(media) => {
                        if let Some(schema) = media.get("schema") {
                            self.check_schema(schema, body, "body", &mut errors);
                        }
                    }
                }
            }
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(Violations(errors.into_iter().map(|e| format!("{name}: {e}")).collect()))
        }
    }

    /// Checks a parameter's string values (query pairs with the same name, a path segment,
    /// a header) against its schema.
    fn check_parameter(&self, p: &Value, values: &[String], what: &str, errors: &mut Vec<String>) {
        let Some(schema) = p.get("schema") else { return };
        let schema = self.resolve(schema);
        let is_array = schema.get("type").and_then(Value::as_str) == Some("array");
        if !is_array && values.len() > 1 {
            errors.push(format!("{what} is repeated but takes one value"));
        }
        let items: Vec<String> = if is_array {
            // Form style: exploded by default (the name repeats), else comma-separated.
            let explode = p.get("explode").and_then(Value::as_bool).unwrap_or(true);
            if explode {
                values.to_vec()
            } else {
                values.iter().flat_map(|v| v.split(',').map(str::to_owned)).collect()
            }
        } else {
            values.to_vec()
        };
        let item_schema = if is_array { schema.get("items").map(|i| self.resolve(i)) } else { Some(schema) };
        let Some(item_schema) = item_schema else { return };
        for raw in &items {
            let typed = typed_value(self.resolve(item_schema), raw);
            match typed {
                Some(v) => self.check_schema(item_schema, &v, what, errors),
                None => errors.push(format!("{what} value {raw:?} is not a valid {}", type_name(item_schema))),
            }
        }
    }

    /// Checks `value` against `schema`, pushing a line per violation under `at`.
    fn check_schema(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        self.check_schema_depth(schema, value, at, errors, 0, &BTreeSet::new());
    }

    /// The property names `schema` and its `allOf` members (transitively) define.
    fn all_properties(&self, schema: &Value, out: &mut BTreeSet<String>, depth: u32) {
        let schema = self.resolve(schema);
        if depth > 32 {
            return;
        }
        out.extend(schema.get("properties").and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k.clone()));
        for sub in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.all_properties(sub, out, depth + 1);
        }
    }

    /// `known`: the properties the schemas combined with this one by `allOf` define, which
    /// its `additionalProperties` does not govern (Graph's entities are an `allOf` of a base
    /// and a derived type, each with `additionalProperties`; read literally no property of
    /// one could be in the other).
    fn check_schema_depth(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        errors: &mut Vec<String>,
        depth: u32,
        known: &BTreeSet<String>,
    ) {
        if depth > 64 {
            return;
        }
        let schema = self.resolve(schema);
        let Some(s) = schema.as_object() else { return };
        let mut combined = known.clone();
        self.all_properties(schema, &mut combined, 0);
        let none = BTreeSet::new();
        let nullable = s.get("nullable").and_then(Value::as_bool).unwrap_or(false);
        if value.is_null() && (nullable || type_list(schema).contains(&"null")) {
            return;
        }
        let types = type_list(schema);
        if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
            errors.push(format!("{at}: {} is not of type {}", short(value), types.join(" or ")));
            return;
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(short).collect();
            errors.push(format!("{at}: {} is not one of {}", short(value), list.join(", ")));
        }
        if let Some(c) = s.get("const")
            && c != value
        {
            errors.push(format!("{at}: {} is not {}", short(value), short(c)));
        }
        if let (Some(pattern), Some(text)) = (s.get("pattern").and_then(Value::as_str), value.as_str())
            && let Ok(re) = regex::Regex::new(pattern)
            && !re.is_match(text)
        {
            errors.push(format!("{at}: {text:?} does not match {pattern}"));
        }
        for sub in s.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.check_schema_depth(sub, value, at, errors, depth + 1, &combined);
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = s.get(key).and_then(Value::as_array) {
                let mut reasons = Vec::new();
                let any = branches.iter().any(|b| {
                    let mut e = Vec::new();
                    self.check_schema_depth(b, value, at, &mut e, depth + 1, &combined);
                    let ok = e.is_empty();
                    reasons.extend(e);
                    ok
                });
                if !any {
                    errors.push(format!("{at}: matches no branch of {key} ({})", reasons.join("; ")));
                }
            }
        }
        if let Some(object) = value.as_object() {
            let properties = s.get("properties").and_then(Value::as_object);
            for r in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if !object.contains_key(r) {
                    errors.push(format!("{at}: required property {r} is missing"));
                }
            }
            for (k, v) in object {
                let here = format!("{at}.{k}");
                match properties.and_then(|p| p.get(k)) {
                    Some(ps) => self.check_schema_depth(ps, v, &here, errors, depth + 1, &none),
                    None if combined.contains(k) => {}
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => errors.push(format!("{at}: property {k} is not allowed")),
                        Some(extra @ Value::Object(_)) => {
                            self.check_schema_depth(extra, v, &here, errors, depth + 1, &none);
                        }
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(array)) = (s.get("items"), value.as_array()) {
            for (i, v) in array.iter().enumerate() {
                self.check_schema_depth(items, v, &format!("{at}[{i}]"), errors, depth + 1, &none);
            }
        }
    }

    /// Validates every request of every fixture file in `dir` (golden fixtures: arrays of
    /// `{method, path, query, headers, body}`), skipping requests whose path `skip` names
    /// (token endpoints, described by the OAuth specifications, not by the API). Returns the
    /// number of requests validated.
    pub fn validate_fixtures(&self, dir: &Path, skip: &dyn Fn(&str) -> bool) -> Result<usize, Violations> {
        let mut errors = Vec::new();
        let mut checked = 0;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Violations(vec![format!("cannot read {}: {e}", dir.display())]))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let shown = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let requests = match read_fixture(&file) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            for r in requests.iter().filter(|r| !skip(&r.path)) {
                checked += 1;
                if let Err(v) = self.validate(r) {
                    errors.extend(v.0.into_iter().map(|e| format!("{shown}: {e}")));
                }
            }
        }
        if errors.is_empty() { Ok(checked) } else { Err(Violations(errors)) }
    }
}

/// Reads a golden fixture file into requests.
fn read_fixture(file: &Path) -> Result<Vec<RecordedRequest>, DescriptionError> {
    let err = |message: String| DescriptionError::Fixture { path: file.display().to_string(), message };
    let text = std::fs::read_to_string(file).map_err(|e| err(e.to_string()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    let items = value.as_array().ok_or_else(|| err("not an array".to_owned()))?;
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            // Fixtures write `query` as `[name, value]` pairs and may omit `headers`.
            if item.get("headers").is_none() {
                item["headers"] = Value::Object(serde_json::Map::new());
            }
            serde_json::from_value::<RecordedRequest>(item).map_err(|e| err(e.to_string()))
        })
        .collect()
}

/// Whether media range `documented` (`application/json`, `application/*`, `*/*`) covers
/// `sent`.
fn media_matches(documented: &str, sent: &str) -> bool {
    let documented = documented.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if documented == sent || documented == "*/*" {
        return true;
    }
    match (documented.split_once('/'), sent.split_once('/')) {
        (Some((dt, "*")), Some((st, _))) => dt == st,
        _ => false,
    }
}

/// The types a schema names: `"type": "x"` or `"type": ["x", "null"]`.
fn type_list(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_name(schema: &Value) -> String {
    let t = type_list(schema);
    if t.is_empty() { "value".to_owned() } else { t.join(" or ") }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// A parameter's text as the JSON value its schema's type calls for, or `None` when it
/// cannot be one.
fn typed_value(schema: &Value, raw: &str) -> Option<Value> {
    let types = type_list(schema);
    if types.is_empty() || types.contains(&"string") {
        return Some(Value::String(raw.to_owned()));
    }
    for t in types {
        let v = match t {
            "integer" => raw.parse::<i64>().ok().map(Value::from),
            "number" => raw.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
            "boolean" => match raw {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            _ => None,
        };
        if v.is_some() {
            return v;
        }
    }
    None
}

/// A value for a message, cut short.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}…", s.chars().take(60).collect::<String>()) } else { s }
}

#[cfg(test)]
#[path = "api_description_tests.rs"]
mod tests;
