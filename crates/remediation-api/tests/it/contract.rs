//! The committed OpenAPI document (`schemas/openapi.json`) as the contract every response the
//! tests receive is checked against: the status must be one the route documents, and the
//! body must match the schema documented for that status. A route answering an undocumented
//! status, or a body the document does not describe, fails the test that received it.
//!
//! The JSON Schema validator here covers the keywords the document uses and refuses any other,
//! so a schema it cannot judge fails loudly instead of passing.

use std::sync::LazyLock;

use axum::http::{Method, StatusCode};
use serde_json::Value;

/// `schemas/openapi.json` as committed.
pub(crate) static DOCUMENT: LazyLock<Value> = LazyLock::new(|| load("openapi.json"));

/// A schema file of `schemas/`.
pub(crate) fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Checks one response against the document; panics naming what does not match.
#[track_caller]
pub(crate) fn check(method: &Method, uri: &str, status: StatusCode, media: Option<&str>, body: &Value) {
    let path = uri.split('?').next().unwrap_or_default();
    let doc = &*DOCUMENT;
    let error_shape = serde_json::json!({"$ref": "#/components/schemas/ErrorBody"});
    let Some(item) = doc["paths"].as_object().unwrap().iter().find(|(t, _)| instance_of(t, path)).map(|(_, i)| i)
    else {
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: no such route, yet {status} {body}");
        assert_valid(doc, &error_shape, body, &format!("{method} {uri} {status}"));
        return;
    };
    let Some(operation) = item.get(method.as_str().to_ascii_lowercase()) else {
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}: no such method, yet {status} {body}");
        assert_valid(doc, &error_shape, body, &format!("{method} {uri} {status}"));
        return;
    };
    let Some(response) = operation["responses"].get(status.as_str()) else {
        panic!("{method} {uri} answered {status}, which the document does not list for it: {body}");
    };
    let content = response["content"].as_object().unwrap();
    let (documented, media_type) = content.iter().next().unwrap();
    if let Some(media) = media {
        let essence = media.split(';').next().unwrap_or_default().trim();
        assert_eq!(essence, documented, "{method} {uri} {status}: answered as {media}");
    }
    assert_valid(doc, &media_type["schema"], body, &format!("{method} {uri} {status}"));
}

/// True when `path` is an instance of the template `template`.
fn instance_of(template: &str, path: &str) -> bool {
    remediation_api::routes::template_matches(template, path)
}

/// Panics with every way `instance` fails `schema` (resolved in `root`).
#[track_caller]
pub(crate) fn assert_valid(root: &Value, schema: &Value, instance: &Value, what: &str) {
    let mut errors = Vec::new();
    validate(root, schema, instance, "", &mut errors);
    assert!(
        errors.is_empty(),
        "{what}: the body does not match its schema:\n  {}\nbody: {instance}",
        errors.join("\n  ")
    );
}

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$schema",
    "$comment",
    "$defs",
    "format",
];

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => panic!("unknown JSON Schema type {other}"),
    }
}

fn resolve<'a>(root: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("only local references: {reference}"));
    root.pointer(pointer).unwrap_or_else(|| panic!("dangling reference {reference}"))
}

/// JSON Schema 2020-12 validation of the keywords the project's schemas use.
pub(crate) fn validate(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => return errors.push(format!("{at}: nothing is allowed here")),
        Value::Object(o) => o,
        other => panic!("not a schema: {other}"),
    };
    let here = if at.is_empty() { "(body)" } else { at };
    for (keyword, arg) in schema {
        match keyword.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => validate(root, resolve(root, arg.as_str().unwrap()), v, at, errors),
            "type" => {
                let ok = match arg {
                    Value::String(t) => type_matches(t, v),
                    Value::Array(ts) => ts.iter().any(|t| type_matches(t.as_str().unwrap(), v)),
                    _ => panic!("bad type keyword {arg}"),
                };
                if !ok {
                    errors.push(format!("{here}: {v} is not of type {arg}"));
                }
            }
            "const" if v != arg => errors.push(format!("{here}: {v} is not {arg}")),
            "const" => {}
            "enum" if !arg.as_array().unwrap().contains(v) => errors.push(format!("{here}: {v} is not one of {arg}")),
            "enum" => {}
            "properties" => {
                if let Some(o) = v.as_object() {
                    for (name, sub) in arg.as_object().unwrap() {
                        if let Some(x) = o.get(name) {
                            validate(root, sub, x, &format!("{at}.{name}"), errors);
                        }
                    }
                }
            }
            "required" => {
                if let Some(o) = v.as_object() {
                    for name in arg.as_array().unwrap() {
                        if !o.contains_key(name.as_str().unwrap()) {
                            errors.push(format!("{here}: missing required field {name}"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(o) = v.as_object() {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for (name, x) in o {
                        if known.is_none_or(|k| !k.contains_key(name)) {
                            let mut sub = Vec::new();
                            validate(root, arg, x, &format!("{at}.{name}"), &mut sub);
                            if !sub.is_empty() {
                                errors.push(format!("{here}: field `{name}` is not allowed: {}", sub.join("; ")));
                            }
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = v.as_array() {
                    let skip = schema.get("prefixItems").and_then(Value::as_array).map_or(0, Vec::len);
                    for (i, x) in items.iter().enumerate().skip(skip) {
                        validate(root, arg, x, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            "prefixItems" => {
                if let Some(items) = v.as_array() {
                    for (i, (sub, x)) in arg.as_array().unwrap().iter().zip(items).enumerate() {
                        validate(root, sub, x, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let Some(items) = v.as_array() {
                    let n = arg.as_u64().unwrap() as usize;
                    if (keyword == "minItems" && items.len() < n) || (keyword == "maxItems" && items.len() > n) {
                        errors.push(format!("{here}: {} items breaks {keyword} {n}", items.len()));
                    }
                }
            }
            "uniqueItems" => {
                if let Some(items) = v.as_array()
                    && arg == &Value::Bool(true)
                    && items.iter().enumerate().any(|(i, x)| items[..i].contains(x))
                {
                    errors.push(format!("{here}: items are not unique"));
                }
            }
            "anyOf" | "oneOf" => {
                let branches = arg.as_array().unwrap();
                let mut failures = Vec::new();
                let passed = branches
                    .iter()
                    .filter(|b| {
                        let mut sub = Vec::new();
                        validate(root, b, v, at, &mut sub);
                        let ok = sub.is_empty();
                        failures.push(sub.join("; "));
                        ok
                    })
                    .count();
                if passed == 0 {
                    errors.push(format!("{here}: matches none of {keyword}: [{}]", failures.join(" | ")));
                } else if keyword == "oneOf" && passed > 1 {
                    errors.push(format!("{here}: matches {passed} branches of oneOf"));
                }
            }
            "allOf" => {
                for b in arg.as_array().unwrap() {
                    validate(root, b, v, at, errors);
                }
            }
            "not" => {
                let mut sub = Vec::new();
                validate(root, arg, v, at, &mut sub);
                if sub.is_empty() {
                    errors.push(format!("{here}: matches a schema it must not"));
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                if let (Some(x), Some(bound)) = (v.as_f64(), arg.as_f64()) {
                    let ok = match keyword.as_str() {
                        "minimum" => x >= bound,
                        "maximum" => x <= bound,
                        "exclusiveMinimum" => x > bound,
                        _ => x < bound,
                    };
                    if !ok {
                        errors.push(format!("{here}: {x} breaks {keyword} {bound}"));
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let Some(s) = v.as_str() {
                    let (n, len) = (arg.as_u64().unwrap() as usize, s.chars().count());
                    if (keyword == "minLength" && len < n) || (keyword == "maxLength" && len > n) {
                        errors.push(format!("{here}: length {len} breaks {keyword} {n}"));
                    }
                }
            }
            "pattern" => {
                if let Some(s) = v.as_str() {
                    let re = regex::Regex::new(arg.as_str().unwrap()).unwrap();
                    if !re.is_match(s) {
                        errors.push(format!("{here}: {s:?} does not match {arg}"));
                    }
                }
            }
            other => panic!("the contract validator does not know the keyword `{other}` (at {here}); teach it"),
        }
    }
}

#[test]
fn the_validator_refuses_what_it_should() {
    let root = serde_json::json!({"$defs": {"N": {"type": "integer", "minimum": 1}}});
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/N"}, "s": {"type": "string", "pattern": "\\S"}},
        "required": ["n"],
        "additionalProperties": false
    });
    let errors = |v: Value| {
        let mut e = Vec::new();
        validate(&root, &schema, &v, "", &mut e);
        e
    };
    assert!(errors(serde_json::json!({"n": 1, "s": "x"})).is_empty());
    assert_eq!(errors(serde_json::json!({"n": 0})).len(), 1, "minimum through a $ref");
    assert_eq!(errors(serde_json::json!({"s": "x"})).len(), 1, "required");
    assert_eq!(errors(serde_json::json!({"n": 1, "x": 1})).len(), 1, "additionalProperties");
    assert_eq!(errors(serde_json::json!({"n": 1, "s": "  "})).len(), 1, "pattern");
    assert_eq!(errors(serde_json::json!({"n": "1"})).len(), 1, "type");
}
