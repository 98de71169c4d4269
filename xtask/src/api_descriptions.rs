//! `cargo xtask api-descriptions reduce|check`: the reduced provider API descriptions in
//! `api-descriptions/`, written from the provider's full description.
//!
//! `reduce --provider P --full FILE [--commit SHA] [--repository R] [--file F]` reads the full description (OpenAPI 3
//! as JSON or YAML, or a Google API discovery document, converted to OpenAPI first) and
//! writes `api-descriptions/P.json`: the operations listed in `api-descriptions/P.operations`
//! (`METHOD /path/template` a line), their path-level parameters, every component they
//! reference (transitively), and their response status codes without bodies. Descriptions,
//! examples, tags and `x-` extensions are dropped; keys are sorted. The `x-source` object
//! names the repository, file and commit; a full description that carries its own
//! `x-source` keeps it. `check` fails when a listed operation is not in the reduced file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

/// Where each provider's full description is published, for `x-source`.
fn default_source(provider: &str) -> Option<(&'static str, &'static str)> {
    match provider {
        "okta" => Some(("okta/okta-management-openapi-spec", "dist/current/management-minimal.yaml")),
        "github" => Some(("github/rest-api-description", "descriptions/api.github.com/api.github.com.json")),
        "graph" => Some(("microsoftgraph/msgraph-metadata", "openapi/v1.0/openapi.yaml")),
        "google" => Some(("googleapis/discovery-artifact-manager", "discoveries/admin.directory_v1.json")),
        _ => None,
    }
}

/// The providers with a reduced description.
pub(crate) const PROVIDERS: &[&str] = &["okta", "google", "github", "graph"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("api-descriptions")
}

/// `cargo xtask api-descriptions ...`.
pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    match args {
        ["check"] => check(&dir()),
        ["reduce", rest @ ..] => {
            let mut provider = None;
            let mut full = None;
            let mut commit = None;
            let mut origin = (None, None);
            let mut it = rest.iter();
            while let Some(flag) = it.next() {
                let value = it.next().with_context(|| format!("{flag} needs a value"))?;
                match *flag {
                    "--provider" => provider = Some((*value).to_owned()),
                    "--full" => full = Some(PathBuf::from(value)),
                    "--commit" => commit = Some((*value).to_owned()),
                    "--repository" => origin.0 = Some((*value).to_owned()),
                    "--file" => origin.1 = Some((*value).to_owned()),
                    other => bail!("unknown flag {other}"),
                }
            }
            let provider = provider.context("--provider is required")?;
            let full = full.context("--full is required")?;
            let text = std::fs::read_to_string(&full).with_context(|| format!("cannot read {}", full.display()))?;
            let ops_path = dir().join(format!("{provider}.operations"));
            let ops =
                std::fs::read_to_string(&ops_path).with_context(|| format!("cannot read {}", ops_path.display()))?;
            let mut reduced = reduce_text(&provider, &text, &ops, commit.as_deref())?;
            if origin.0.is_some() || origin.1.is_some() {
                let mut doc: Value = serde_json::from_str(&reduced)?;
                if let Some(r) = origin.0 {
                    doc["x-source"]["repository"] = Value::String(r);
                }
                if let Some(f) = origin.1 {
                    doc["x-source"]["file"] = Value::String(f);
                }
                reduced = serde_json::to_string_pretty(&doc)? + "\n";
            }
            let out = dir().join(format!("{provider}.json"));
            std::fs::write(&out, reduced).with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote api-descriptions/{provider}.json");
            Ok(())
        }
        _ => bail!(
            "usage: cargo xtask api-descriptions check | reduce --provider P --full FILE [--commit SHA] [--repository OWNER/NAME] [--file PATH]"
        ),
    }
}

/// Every listed operation of every provider with a reduced description is in it.
fn check(dir: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for provider in PROVIDERS {
        let doc = dir.join(format!("{provider}.json"));
        let Ok(text) = std::fs::read_to_string(&doc) else { continue };
        let ops = std::fs::read_to_string(dir.join(format!("{provider}.operations")))
            .with_context(|| format!("{provider}.json has no {provider}.operations beside it"))?;
        let description = remediation_testkit::api_description::ApiDescription::parse(&text)
            .with_context(|| format!("{provider}.json"))?;
        for missing in description.missing_operations(&ops) {
            problems.push(format!("{provider}: {missing}"));
        }
    }
    if !problems.is_empty() {
        bail!(
            "listed operations missing from the reduced descriptions (run `cargo xtask api-descriptions reduce`): {}",
            problems.join(", ")
        );
    }
    Ok(())
}

/// Parses a full description: JSON, else YAML.
fn parse(text: &str) -> anyhow::Result<Value> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).context("the full description is not valid JSON");
    }
    serde_norway::from_str(text).context("the full description is neither JSON nor valid YAML")
}

/// The operations list: `(method in lower case, path template)`.
fn operations(list: &str) -> anyhow::Result<Vec<(String, String)>> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (m, p) = l.split_once(' ').with_context(|| format!("not `METHOD /path`: {l}"))?;
            Ok((m.to_ascii_lowercase(), p.trim().to_owned()))
        })
        .collect()
}

/// The reduced description, pretty JSON with a final newline.
pub(crate) fn reduce_text(provider: &str, full: &str, ops: &str, commit: Option<&str>) -> anyhow::Result<String> {
    let mut full = parse(full)?;
    let converted = full.get("kind").and_then(Value::as_str) == Some("discovery#restDescription");
    let mut source = match full.get("x-source") {
        Some(s) => s.clone(),
        None => {
            let (repository, file) = default_source(provider).unwrap_or(("", ""));
            json!({ "repository": repository, "file": file, "commit": commit.unwrap_or("") })
        }
    };
    if let Some(c) = commit {
        source["commit"] = Value::String(c.to_owned());
    }
    if converted {
        source["converted"] = Value::String(format!(
            "from the Google API discovery document (revision {}); see README.md",
            full.get("revision").and_then(Value::as_str).unwrap_or("?")
        ));
        full = discovery_to_openapi(&full);
    }
    let reduced = reduce(&full, &operations(ops)?, source)?;
    let mut text = serde_json::to_string_pretty(&reduced)?;
    text.push('\n');
    Ok(text)
}

/// Keys whose object's keys are names (properties, media types, status codes), not keywords.
const NAME_MAPS: &[&str] =
    &["properties", "patternProperties", "content", "mapping", "encoding", "variables", "headers", "$defs"];

/// Keywords dropped everywhere: documentation only.
const DROPPED: &[&str] = &["description", "example", "examples", "externalDocs", "tags", "summary"];

/// `v` without documentation keywords and `x-` extensions.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, child) in map {
                if DROPPED.contains(&k.as_str()) || k.starts_with("x-") {
                    continue;
                }
                let child = if NAME_MAPS.contains(&k.as_str()) {
                    match child {
                        Value::Object(names) => {
                            Value::Object(names.iter().map(|(n, c)| (n.clone(), strip(c))).collect())
                        }
                        other => strip(other),
                    }
                } else {
                    strip(child)
                };
                out.insert(k.clone(), child);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// Every `#/components/...` reference in `v` (`$ref` values and discriminator mappings).
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => {
                        out.insert(r.clone());
                    }
                    ("mapping", Value::Object(m)) => {
                        out.extend(m.values().filter_map(Value::as_str).map(str::to_owned));
                    }
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// Resolves a `$ref` chain in `doc`.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match v.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')).and_then(|p| doc.pointer(p)) {
            Some(target) => v = target,
            None => break,
        }
    }
    v
}

/// The reduced document: the listed operations and what they reference.
fn reduce(full: &Value, ops: &[(String, String)], source: Value) -> anyhow::Result<Value> {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut schemes = BTreeSet::new();
    for (method, path) in ops {
        let item = full
            .pointer(&format!("/paths/{}", path.replace('~', "~0").replace('/', "~1")))
            .with_context(|| format!("{path} is not in the full description"))?;
        let op = item
            .get(method)
            .with_context(|| format!("{} {path} is not in the full description", method.to_uppercase()))?;
        let mut kept = strip(op);
        if let Some(obj) = kept.as_object_mut() {
            obj.remove("responses");
            obj.remove("callbacks");
        }
        let mut responses = Map::new();
        for (status, response) in op.get("responses").and_then(Value::as_object).into_iter().flatten() {
            let text = resolve(full, response).get("description").and_then(Value::as_str).unwrap_or("");
            responses.insert(status.clone(), json!({ "description": text }));
        }
        kept["responses"] = Value::Object(responses);
        for requirement in op.get("security").and_then(Value::as_array).into_iter().flatten() {
            schemes.extend(requirement.as_object().into_iter().flatten().map(|(k, _)| k.clone()));
        }
        let entry = paths.entry(path.clone()).or_default();
        if let Some(params) = item.get("parameters") {
            entry.insert("parameters".to_owned(), strip(params));
        }
        entry.insert(method.clone(), kept);
    }
    let mut components: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut pending = BTreeSet::new();
    for item in paths.values() {
        for v in item.values() {
            refs(v, &mut pending);
        }
    }
    for scheme in schemes {
        pending.insert(format!("#/components/securitySchemes/{scheme}"));
    }
    let mut done = BTreeSet::new();
    while let Some(r) = pending.pop_first() {
        if !done.insert(r.clone()) {
            continue;
        }
        let Some(pointer) = r.strip_prefix('#') else { bail!("external reference {r} is not supported") };
        let parts: Vec<&str> = pointer.trim_start_matches('/').splitn(3, '/').collect();
        let ["components", kind, name] = parts.as_slice() else { bail!("reference {r} is not to a component") };
        let target = full.pointer(pointer).with_context(|| format!("reference {r} does not resolve"))?;
        let kept = strip(target);
        refs(&kept, &mut pending);
        let name = name.replace("~1", "/").replace("~0", "~");
        components.entry((*kind).to_owned()).or_default().insert(name, kept);
    }
    let mut doc = json!({
        "openapi": full.get("openapi").cloned().unwrap_or(json!("3.0.3")),
        "info": {
            "title": full.pointer("/info/title").cloned().unwrap_or(json!("")),
            "version": full.pointer("/info/version").cloned().unwrap_or(json!("")),
        },
        "paths": paths,
        "x-source": source,
    });
    if let Some(servers) = full.get("servers") {
        doc["servers"] = strip(servers);
    }
    if !components.is_empty() {
        doc["components"] = json!(components);
    }
    Ok(doc)
}

/// A component name OpenAPI accepts (`$.xgafv` becomes `xgafv`).
fn component_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

/// A discovery schema (or parameter) as an OpenAPI schema.
fn discovery_schema(s: &Value) -> Value {
    let Some(map) = s.as_object() else { return s.clone() };
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "id" | "annotations" | "enumDescriptions" | "location" | "required" | "repeated" | "description" => {}
            "$ref" => {
                out.insert(k.clone(), json!(format!("#/components/schemas/{}", v.as_str().unwrap_or(""))));
            }
            "type" if v == "any" => {}
            "properties" => {
                let props: Map<String, Value> =
                    v.as_object().into_iter().flatten().map(|(n, p)| (n.clone(), discovery_schema(p))).collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" => {
                out.insert(k.clone(), discovery_schema(v));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if map.get("repeated").and_then(Value::as_bool).unwrap_or(false) {
        return json!({ "type": "array", "items": Value::Object(out) });
    }
    Value::Object(out)
}

/// A Google API discovery document as OpenAPI 3: each method an operation on its `flatPath`
/// (or `path`), its parameters and the document's global ones as parameters, `request` as a
/// JSON request body and `response` as a 200 (204 when the method returns nothing).
fn discovery_to_openapi(d: &Value) -> Value {
    let mut global = Map::new();
    for (name, p) in d.get("parameters").and_then(Value::as_object).into_iter().flatten() {
        global.insert(
            component_name(name),
            json!({ "name": name, "in": p.get("location").and_then(Value::as_str).unwrap_or("query"), "schema": discovery_schema(p) }),
        );
    }
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut stack: Vec<&Value> = vec![d];
    while let Some(node) = stack.pop() {
        for (_, resource) in node.get("resources").and_then(Value::as_object).into_iter().flatten() {
            stack.push(resource);
        }
        for (_, m) in node.get("methods").and_then(Value::as_object).into_iter().flatten() {
            let path = m.get("flatPath").or_else(|| m.get("path")).and_then(Value::as_str).unwrap_or("");
            let service = d.get("servicePath").and_then(Value::as_str).unwrap_or("");
            let path = format!("/{service}{path}");
            let method = m.get("httpMethod").and_then(Value::as_str).unwrap_or("GET").to_ascii_lowercase();
            let mut params: Vec<Value> = m
                .get("parameters")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, p)| {
                    json!({
                        "name": name,
                        "in": p.get("location").and_then(Value::as_str).unwrap_or("query"),
                        "required": p.get("required").and_then(Value::as_bool).unwrap_or(false),
                        "schema": discovery_schema(p),
                    })
                })
                .collect();
            params.extend(global.keys().map(|k| json!({ "$ref": format!("#/components/parameters/{k}") })));
            let mut op = json!({
                "operationId": m.get("id").cloned().unwrap_or(Value::Null),
                "parameters": params,
            });
            if let Some(r) = m.pointer("/request/$ref").and_then(Value::as_str) {
                op["requestBody"] = json!({
                    "required": true,
                    "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{r}") } } },
                });
            }
            op["responses"] = match m.pointer("/response/$ref").and_then(Value::as_str) {
                Some(r) => json!({ "200": { "description": r } }),
                None => json!({ "204": { "description": "No content" } }),
            };
            if let Some(scopes) = m.get("scopes") {
                op["security"] = json!([{ "oauth2": scopes }]);
            }
            paths.entry(path).or_default().insert(method, op);
        }
    }
    let schemas: Map<String, Value> = d
        .get("schemas")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(n, s)| (n.clone(), discovery_schema(s)))
        .collect();
    let root = d.get("rootUrl").and_then(Value::as_str).unwrap_or("");
    json!({
        "openapi": "3.0.3",
        "info": { "title": d.get("title").cloned().unwrap_or(json!("")), "version": d.get("version").cloned().unwrap_or(json!("")) },
        "servers": [{ "url": root.trim_end_matches('/') }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": global,
            "securitySchemes": { "oauth2": { "type": "oauth2", "flows": {} } },
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::reduce_text;

    const FULL: &str = r##"
openapi: 3.0.3
info: {title: Synthetic, version: "1", description: dropped}
servers: [{url: "https://example.com/v2"}]
paths:
  /widgets/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    get:
      operationId: getWidget
      description: dropped
      x-vendor: dropped
      responses:
        "200": {$ref: "#/components/responses/Widget"}
    put:
      operationId: putWidget
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Widget"}
      responses:
        "204": {description: Done}
    delete:
      operationId: deleteWidget
      responses: {"204": {description: Gone}}
  /unused:
    get: {operationId: unused, responses: {"200": {description: x}}}
components:
  responses:
    Widget:
      description: A widget
      content: {application/json: {schema: {$ref: "#/components/schemas/Unrelated"}}}
  schemas:
    Widget:
      type: object
      properties:
        description: {type: string, description: a property named description stays}
        part: {$ref: "#/components/schemas/Part"}
    Part: {type: string, enum: [a, b], example: a}
    Unrelated: {type: integer}
"##;

    #[test]
    fn reduction_keeps_the_listed_operations_and_what_they_reference() {
        let text = reduce_text("okta", FULL, "GET /widgets/{id}\nPUT /widgets/{id}\n", Some("abc123")).expect("reduce");
        let doc: Value = serde_json::from_str(&text).expect("json");
        let item = &doc["paths"]["/widgets/{id}"];
        assert!(item.get("get").is_some() && item.get("put").is_some());
        assert!(item.get("delete").is_none(), "an operation not listed is dropped");
        assert!(doc["paths"].get("/unused").is_none());
        assert_eq!(item["parameters"][0]["name"], "id", "path-level parameters stay");
        assert_eq!(item["get"]["responses"], json!({"200": {"description": "A widget"}}), "no bodies");
        assert!(item["get"].get("description").is_none() && item["get"].get("x-vendor").is_none());
        let schemas = &doc["components"]["schemas"];
        assert!(schemas.get("Widget").is_some() && schemas.get("Part").is_some(), "transitively referenced");
        assert!(schemas.get("Unrelated").is_none(), "only a response body referenced it");
        assert_eq!(schemas["Widget"]["properties"]["description"], json!({"type": "string"}));
        assert_eq!(schemas["Part"], json!({"type": "string", "enum": ["a", "b"]}));
        assert_eq!(doc["x-source"]["commit"], "abc123");
        assert_eq!(doc["servers"][0]["url"], "https://example.com/v2");
        // Stable output: the same input gives the same bytes, keys sorted.
        assert_eq!(
            text,
            reduce_text("okta", FULL, "PUT /widgets/{id}\nGET /widgets/{id}\n", Some("abc123")).expect("again")
        );
        let e = reduce_text("okta", FULL, "POST /widgets/{id}\n", None).expect_err("not in the full description");
        assert!(e.to_string().contains("POST /widgets/{id}"), "{e}");
    }

    #[test]
    fn a_discovery_document_becomes_openapi_operations() {
        let discovery = json!({
            "kind": "discovery#restDescription",
            "revision": "20260101",
            "rootUrl": "https://admin.example.com/",
            "servicePath": "",
            "title": "Synthetic",
            "version": "v1",
            "parameters": { "fields": { "type": "string", "location": "query" } },
            "schemas": {
                "Member": { "id": "Member", "type": "object", "properties": {
                    "role": { "type": "string", "description": "x" },
                    "extra": { "type": "any" } } },
                "Other": { "id": "Other", "type": "object" }
            },
            "resources": { "members": { "methods": {
                "insert": {
                    "id": "directory.members.insert", "httpMethod": "POST",
                    "path": "groups/{groupKey}/members", "flatPath": "groups/{groupKey}/members",
                    "parameters": { "groupKey": { "type": "string", "location": "path", "required": true } },
                    "request": { "$ref": "Member" }, "response": { "$ref": "Member" }
                },
                "delete": {
                    "id": "directory.members.delete", "httpMethod": "DELETE",
                    "path": "groups/{groupKey}/members/{memberKey}",
                    "parameters": { "groupKey": { "type": "string", "location": "path", "required": true },
                                    "memberKey": { "type": "string", "location": "path", "required": true } }
                }
            } } }
        });
        let text =
            reduce_text("google", &discovery.to_string(), "POST /groups/{groupKey}/members\n", None).expect("reduce");
        let doc: Value = serde_json::from_str(&text).expect("json");
        let op = &doc["paths"]["/groups/{groupKey}/members"]["post"];
        assert_eq!(op["operationId"], "directory.members.insert");
        assert_eq!(op["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Member");
        assert_eq!(
            op["parameters"][0],
            json!({"name": "groupKey", "in": "path", "required": true, "schema": {"type": "string"}})
        );
        assert_eq!(doc["components"]["parameters"]["fields"]["in"], "query");
        assert_eq!(doc["components"]["schemas"]["Member"]["properties"]["extra"], json!({}));
        assert!(doc["components"]["schemas"].get("Other").is_none());
        assert!(doc["x-source"]["converted"].as_str().is_some_and(|c| c.contains("20260101")));
        assert!(doc["paths"]["/groups/{groupKey}/members"].get("delete").is_none());
        assert_eq!(doc["servers"][0]["url"], "https://admin.example.com");
    }
}
