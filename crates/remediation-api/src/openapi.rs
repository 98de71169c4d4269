//! The OpenAPI 3.1 document of the API, derived from the route table ([`crate::routes`]) and
//! the JSON Schemas of the API types (schemars), so it cannot drift from the code. `cargo
//! xtask codegen` writes it to `schemas/openapi.json`; the server serves it at
//! `/openapi.json`.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::routes::{Body, ROUTES, RequestBody};

/// The whole document.
pub fn document() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into());
    let mut g = settings.into_generator();
    let g = &mut g;
    let mut paths = Map::new();
    for route in ROUTES {
        let mut responses = Map::new();
        for answer in route.answers() {
            let media = match answer.body {
                Body::Response => route.media,
                Body::Error | Body::Json(_) => "application/json",
            };
            let mut response = json!({
                "description": answer.meaning,
                "content": {media: {"schema": route.body_schema(answer.body, g)}},
            });
            if answer.status == 429 {
                response["headers"] =
                    json!({"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}});
            }
            responses.insert(answer.status.to_string(), response);
        }
        let mut operation = json!({
            "summary": route.summary,
            "operationId": route.operation_id,
            "responses": responses,
        });
        if let Some(role) = route.role {
            operation["security"] = json!([{"bearer": []}]);
            operation["x-required-role"] = json!(role);
        } else {
            operation["security"] = json!([]);
        }
        let mut parameters = Vec::new();
        if let Some(schema) = route.path_parameter() {
            parameters.push(json!({"name": "id", "in": "path", "required": true, "schema": schema}));
        }
        if let Some(query) = route.query {
            parameters
                .push(json!({"name": "query", "in": "query", "style": "form", "explode": true, "schema": query(g)}));
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        let body = match route.request {
            RequestBody::None => None,
            RequestBody::Optional(s) => Some((false, s)),
            RequestBody::Required(s) => Some((true, s)),
        };
        if let Some((required, schema)) = body {
            operation["requestBody"] =
                json!({"required": required, "content": {"application/json": {"schema": schema(g)}}});
        }
        // Every authenticated route again for one tenant, under `/v1/tenants/{tenant}/`.
        if route.role.is_some()
            && let Some(rest) = route.path.strip_prefix("/v1/")
        {
            let mut twin = operation.clone();
            twin["operationId"] = json!(format!("{}_in_tenant", route.operation_id));
            twin["summary"] = json!(format!("{} (in one tenant)", route.summary));
            let tenant = json!({"name": "tenant", "in": "path", "required": true,
                "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"}});
            let mut parameters = vec![tenant];
            if let Some(Value::Array(own)) = twin.get("parameters") {
                parameters.extend(own.iter().cloned());
            }
            twin["parameters"] = Value::Array(parameters);
            twin["responses"]["404"] = json!({
                "description": "no such tenant, or the token does not reach it (or what the route names does not exist)",
                "content": {"application/json": {"schema": route.body_schema(Body::Error, g)}},
            });
            let entry = paths.entry(format!("/v1/tenants/{{tenant}}/{rest}")).or_insert_with(|| json!({}));
            entry[route.method.as_str()] = twin;
        }
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.as_str()] = operation;
    }
    let schemas = g.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "remediation API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Suggest, approve, execute and roll back remediations; audit, settings and safety switches. Every error is `{\"error\":{\"code\",\"message\",\"details\"}}`. A route that does not exist answers 404, a method a route does not have 405, both in that shape. Every authenticated route `/v1/X` is also served as `/v1/tenants/{tenant}/X` for that tenant (`/v1/X` is the default tenant's); a token is valid in its own tenant only, and a tenant the token does not reach answers 404.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A token from `remediate token create`; the scheme name is case-insensitive"}}
        }
    })
}
