//! The OpenAPI 3.1 document of the API, assembled from the JSON Schemas of the API types
//! (schemars), so it cannot drift from the code. `cargo xtask codegen` writes it to
//! `schemas/openapi.json`; the server serves it at `/openapi.json`.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::error::ErrorBody;
use crate::types as t;

struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    /// The least role; `None` for unauthenticated routes.
    role: Option<&'static str>,
    request: Option<Value>,
    ok: (u16, Value),
    query: Option<Value>,
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    g.subschema_for::<T>().to_value()
}

/// The whole document.
pub fn document() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into());
    let mut g = settings.into_generator();
    let g = &mut g;
    let action = schema::<remediation_core::Action>(g);
    let outcome = schema::<t::OutcomeView>(g);
    let note = Some(schema::<t::NoteBody>(g));
    let (promote_note, promote_action) = (note.clone(), action.clone());
    let change_note = note.clone();
    let ops = vec![
        Op {
            method: "post",
            path: "/v1/actions",
            summary: "Suggest an action (201; 202 when a gate dropped it to manual)",
            role: Some("requester"),
            request: Some(schema::<t::CreateAction>(g)),
            ok: (201, schema::<t::SuggestionView>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/v1/actions",
            summary: "List actions, oldest first, with filters and cursor pagination",
            role: Some("viewer"),
            request: None,
            ok: (200, schema::<t::Page<remediation_core::Action>>(g)),
            query: Some(schema::<t::ActionQuery>(g)),
        },
        Op {
            method: "get",
            path: "/v1/actions/{id}",
            summary: "An action with its plan, snapshots and transitions",
            role: Some("viewer"),
            request: None,
            ok: (200, schema::<t::ActionView>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/v1/actions/{id}/plan",
            summary: "An action's plan",
            role: Some("viewer"),
            request: None,
            ok: (200, schema::<remediation_core::Plan>(g)),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/actions/{id}/approve",
            summary: "Approve (never by the requester); on a `rollback_requested` action, approve the rollback (never by whoever requested it) and run it (502 when the restore failed)",
            role: Some("approver"),
            request: note.clone(),
            ok: (200, action.clone()),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/actions/{id}/reject",
            summary: "Reject",
            role: Some("approver"),
            request: note.clone(),
            ok: (200, action.clone()),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/actions/{id}/execute",
            summary: "Execute (202 when held or the plan changed; 502 when the provider failed); `dry_run` needs only requester",
            role: Some("approver"),
            request: Some(schema::<t::ExecuteBody>(g)),
            ok: (200, outcome.clone()),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/actions/{id}/rollback",
            summary: "Roll back inside the window (202 with the `rollback_requested` action when the kind needs a second principal's approval; on a `rollback_requested` action, approves it; 409 for an irreversible change)",
            role: Some("approver"),
            request: note.clone(),
            ok: (200, outcome.clone()),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/actions/{id}/cancel",
            summary: "Cancel (the requester or an admin)",
            role: Some("requester"),
            request: note.clone(),
            ok: (200, action.clone()),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/actions/{id}/force-execute",
            summary: "Execute a held action anyway, with a reason",
            role: Some("admin"),
            request: Some(schema::<t::ReasonBody>(g)),
            ok: (200, outcome),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/actions/{id}/release",
            summary: "Release a held action back to approved",
            role: Some("admin"),
            request: note,
            ok: (200, action),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/actions/{id}/promote",
            summary: "Turn advisory guidance into a request for approval",
            role: Some("admin"),
            request: promote_note,
            ok: (200, promote_action),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/findings",
            summary: "Turn a finding into a suggestion, once per (control, target); 200 with the open action when one exists",
            role: Some("requester"),
            request: Some(schema::<remediation_core::Finding>(g)),
            ok: (201, schema::<t::SuggestionView>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/v1/audit",
            summary: "Audit records, by seq, with cursor pagination",
            role: Some("viewer"),
            request: None,
            ok: (200, schema::<t::AuditPage>(g)),
            query: Some(schema::<t::AuditQuery>(g)),
        },
        Op {
            method: "get",
            path: "/v1/audit/verify",
            summary: "Verify the audit chain and its checkpoint",
            role: Some("viewer"),
            request: None,
            ok: (200, schema::<t::AuditVerifyView>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/v1/settings",
            summary: "Policy settings in force and where they come from",
            role: Some("admin"),
            request: None,
            ok: (200, schema::<t::SettingsView>(g)),
            query: None,
        },
        Op {
            method: "patch",
            path: "/v1/settings",
            summary: "Change policy settings with a JSON merge patch (audited); loosening answers 202 with a change a second admin must confirm",
            role: Some("admin"),
            request: Some(schema::<t::SettingsPatch>(g)),
            ok: (200, schema::<t::SettingsView>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/v1/limits",
            summary: "Blast-radius window usage and the breaker",
            role: Some("viewer"),
            request: None,
            ok: (200, schema::<t::LimitsView>(g)),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/breaker/reset",
            summary: "Reset the circuit breaker",
            role: Some("admin"),
            request: Some(schema::<t::ReasonBody>(g)),
            ok: (200, schema::<t::LimitsView>(g)),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/kill-switch",
            summary: "Turn the kill switch on (cancels waiting actions) or off (202: waits for a second admin's confirmation)",
            role: Some("admin"),
            request: Some(schema::<t::KillSwitchBody>(g)),
            ok: (200, schema::<t::KillSwitchView>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/v1/kill-switch",
            summary: "Whether the kill switch is on",
            role: Some("viewer"),
            request: None,
            ok: (200, schema::<t::KillSwitchView>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/v1/connectors",
            summary: "Connectors with capabilities and health (and, for admins only, live permission checks with ?check=true)",
            role: Some("viewer"),
            request: None,
            ok: (200, schema::<Vec<t::ConnectorView>>(g)),
            query: Some(schema::<t::ConnectorQuery>(g)),
        },
        Op {
            method: "get",
            path: "/v1/pending-changes",
            summary: "Changes waiting for a second admin (all of them with ?all=true)",
            role: Some("viewer"),
            request: None,
            ok: (200, schema::<Vec<remediation_core::PendingChange>>(g)),
            query: Some(schema::<t::PendingQuery>(g)),
        },
        Op {
            method: "post",
            path: "/v1/pending-changes/{id}/confirm",
            summary: "Confirm and apply a pending change (an admin other than its proposer, before it expires)",
            role: Some("admin"),
            request: change_note.clone(),
            ok: (200, schema::<t::PendingReply>(g)),
            query: None,
        },
        Op {
            method: "post",
            path: "/v1/pending-changes/{id}/cancel",
            summary: "Withdraw a pending change",
            role: Some("admin"),
            request: change_note.clone(),
            ok: (200, schema::<t::PendingReply>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/healthz",
            summary: "Liveness",
            role: None,
            request: None,
            ok: (200, schema::<t::HealthView>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/readyz",
            summary: "Readiness (503 while shutting down or when the store is unavailable)",
            role: None,
            request: None,
            ok: (200, schema::<t::HealthView>(g)),
            query: None,
        },
        Op {
            method: "get",
            path: "/metrics",
            summary: "Prometheus metrics (OpenMetrics text)",
            role: Some("viewer"),
            request: None,
            ok: (200, json!({"type": "string"})),
            query: None,
        },
        Op {
            method: "get",
            path: "/openapi.json",
            summary: "This document",
            role: None,
            request: None,
            ok: (200, json!({"type": "object"})),
            query: None,
        },
    ];
    let error = schema::<ErrorBody>(g);
    let pending = schema::<t::PendingReply>(g);
    let mut paths = Map::new();
    for op in ops {
        let mut responses = Map::new();
        let media = if op.path == "/metrics" { "application/openmetrics-text" } else { "application/json" };
        responses.insert(op.ok.0.to_string(), json!({"description": "done", "content": {media: {"schema": op.ok.1}}}));
        let mut errors = vec![("400", "invalid request; `details.field` names the field")];
        if op.role.is_some() {
            errors.push(("401", "no token, or an unknown or revoked one"));
            errors.push(("403", "the role is not enough, or remediation is disabled"));
        }
        if op.role.is_some() {
            errors.push(("429", "too many requests from this principal; `Retry-After` says when to retry"));
        }
        if op.path.starts_with("/v1/pending-changes/") {
            errors.push(("404", "no such pending change"));
            errors.push(("409", "no longer pending, or what it was based on changed (nothing applied)"));
        } else if op.path.contains("{id}") {
            errors.push(("404", "no such action"));
            errors.push(("409", "not allowed in the action's current state (`details.current_state`)"));
        }
        if op.path == "/v1/settings" && op.method == "patch" || op.path == "/v1/kill-switch" && op.method == "post" {
            errors.push(("202", "waits for a second admin: the pending change"));
        }
        if op.path.ends_with("execute") {
            errors.push(("202", "held by a limit or the breaker, or back to approval: an outcome, not an error"));
        }
        if op.path.ends_with("rollback") {
            errors.push(("202", "the rollback waits for a different principal's approval: an outcome, not an error"));
        }
        if op.path.ends_with("execute") || op.path.ends_with("rollback") || op.path.ends_with("approve") {
            errors.push(("502", "the provider failed"));
        }
        if op.path == "/v1/actions" && op.method == "post" {
            errors.push(("202", "a gate dropped the action to manual: an outcome, not an error"));
        }
        if op.path == "/v1/findings" {
            errors.push(("200", "an open action for the same control and target exists, or the fix did not hold"));
        }
        for (code, description) in errors {
            let body = if code == "202" && (op.path == "/v1/settings" || op.path == "/v1/kill-switch") {
                pending.clone()
            } else if code == "202" || code == "200" {
                op.ok.1.clone()
            } else {
                error.clone()
            };
            responses.insert(
                code.to_owned(),
                json!({"description": description, "content": {"application/json": {"schema": body}}}),
            );
        }
        let mut operation = json!({
            "summary": op.summary,
            "operationId": format!("{}_{}", op.method, op.path.trim_start_matches('/').replace(['/', '{', '}', '-', '.'], "_")),
            "responses": responses,
        });
        if let Some(role) = op.role {
            operation["security"] = json!([{"bearer": []}]);
            operation["x-required-role"] = json!(role);
        } else {
            operation["security"] = json!([]);
        }
        let mut parameters = Vec::new();
        if op.path.contains("{id}") {
            parameters.push(
                json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}),
            );
        }
        if let Some(q) = &op.query {
            parameters.push(json!({"name": "query", "in": "query", "style": "form", "explode": true, "schema": q}));
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = op.request {
            operation["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": body}}});
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    let schemas = g.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "remediation API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Suggest, approve, execute and roll back remediations; audit, settings and safety switches. Every error is `{\"error\":{\"code\",\"message\",\"details\"}}`.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A token from `remediate token create`"}}
        }
    })
}
