//! The console's connections page: every connection of the tenant with its health, last
//! check, missing permissions, capabilities and scope; for admins, adding a managed connection
//! (its secrets typed into password fields, sealed on arrival, never shown again) and testing,
//! disabling, enabling and deleting one. The configuration file's connectors are shown
//! read-only.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use remediation_core::Role;
use remediation_core::store::ConnectionScope;
use secrecy::SecretString;
use serde::Deserialize;

use super::{Flash, Me, Signed, Ui, error_page, html, open_page, see_other, timestamp};
use crate::error::ApiError;

/// One row of the table.
struct Row {
    id: String,
    type_name: String,
    source: String,
    managed: bool,
    enabled: bool,
    health: String,
    healthy: Option<bool>,
    checked: String,
    missing: String,
    capabilities: String,
    capability_count: usize,
    scope: String,
    secrets: String,
    error: String,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    flash: Option<Flash>,
    me: Me,
    rows: Vec<Row>,
    admin: bool,
}

fn joined(v: &[String]) -> String {
    if v.is_empty() { "-".to_owned() } else { v.join(", ") }
}

/// `GET /ui/connections`.
pub(super) async fn page(AxState(ui): AxState<Ui>, headers: HeaderMap) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let all = match remediation_service::connections::connections(ui.api.runtime()).await {
        Ok(all) => all,
        Err(e) => return error_page(&ApiError::from(e)),
    };
    let rows = all
        .into_iter()
        .map(|c| Row {
            managed: c.source == "managed",
            health: match c.healthy {
                Some(true) => "healthy".to_owned(),
                Some(false) => "unhealthy".to_owned(),
                None => "not checked".to_owned(),
            },
            healthy: c.healthy,
            checked: c.last_check.map_or_else(|| "-".to_owned(), timestamp),
            missing: joined(&c.missing_permissions),
            capability_count: c.capabilities.len(),
            capabilities: joined(
                &c.capabilities.iter().map(|k| format!("{}/{}", k.kind, k.grant_type)).collect::<Vec<_>>(),
            ),
            scope: format!("domains: {}; accounts: {}", joined(&c.scope.domains), joined(&c.scope.accounts)),
            secrets: joined(&c.secret_names),
            error: c.error.or(c.detail.filter(|_| c.healthy == Some(false))).unwrap_or_default(),
            id: c.id,
            type_name: c.type_name,
            source: c.source,
            enabled: c.enabled,
        })
        .collect();
    let admin = signed.actor.role == Role::Admin;
    html(StatusCode::OK, &ConnectionsPage { flash, me: Me::new(&signed, "connections"), rows, admin })
}

/// The add form. Secrets come as up to three name/value pairs typed into password fields.
#[derive(Deserialize)]
pub(super) struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default, rename = "type")]
    type_name: String,
    #[serde(default)]
    settings: String,
    #[serde(default)]
    domains: String,
    #[serde(default)]
    accounts: String,
    #[serde(default)]
    secret_name_1: String,
    secret_value_1: Option<SecretString>,
    #[serde(default)]
    secret_name_2: String,
    secret_value_2: Option<SecretString>,
    #[serde(default)]
    secret_name_3: String,
    secret_value_3: Option<SecretString>,
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Sets the flash and answers with a 303 to the connections page.
async fn done(ui: &Ui, signed: &Signed, flash: Flash) -> Response {
    match ui.set_flash(&signed.sid, flash).await {
        Ok(()) => see_other("/ui/connections"),
        Err(e) => error_page(&e),
    }
}

fn failed(e: remediation_service::ServiceError) -> Flash {
    Flash::error(format!("Not done: {}", ApiError::from(e).message))
}

/// `POST /ui/connections`: adds a managed connection (admin).
pub(super) async fn add(
    AxState(ui): AxState<Ui>,
    headers: HeaderMap,
    form: Result<Form<AddForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return super::forbidden("the form is missing its CSRF token") };
    let signed = match super::check_csrf(&ui, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let settings = if form.settings.trim().is_empty() {
        Ok(serde_json::json!({}))
    } else {
        serde_json::from_str::<serde_json::Value>(&form.settings)
    };
    let settings = match settings {
        Ok(v) if v.is_object() => v,
        _ => return done(&ui, &signed, Flash::error("Not added: the settings must be a JSON object.")).await,
    };
    let mut secrets = BTreeMap::new();
    for (name, value) in [
        (form.secret_name_1, form.secret_value_1),
        (form.secret_name_2, form.secret_value_2),
        (form.secret_name_3, form.secret_value_3),
    ] {
        let name = name.trim().to_owned();
        if let (false, Some(value)) = (name.is_empty(), value) {
            secrets.insert(name, value);
        }
    }
    let new = remediation_service::connections::NewConnection {
        id: form.id.trim().to_owned(),
        type_name: form.type_name.trim().to_owned(),
        settings,
        secrets,
        scope: ConnectionScope { domains: list(&form.domains), accounts: list(&form.accounts) },
    };
    let flash = match remediation_service::connections::add_connection(ui.api.runtime(), &signed.actor, new).await {
        Ok(c) => Flash::ok(format!("Connection {} added; its secrets are sealed and never shown again.", c.id)),
        Err(e) => failed(e),
    };
    done(&ui, &signed, flash).await
}

/// What a row's buttons send.
#[derive(Deserialize)]
pub(super) struct ButtonForm {
    #[serde(default)]
    csrf: String,
    /// The connection's id typed again to confirm a deletion.
    #[serde(default)]
    confirm: String,
}

/// `POST /ui/connections/{id}/{button}`: test, disable, enable or delete (admin).
pub(super) async fn button(
    AxState(ui): AxState<Ui>,
    Path((id, button)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<ButtonForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return super::forbidden("the form is missing its CSRF token") };
    let signed = match super::check_csrf(&ui, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let runtime = ui.api.runtime();
    let actor = &signed.actor;
    use remediation_service::connections as c;
    let flash = match button.as_str() {
        "test" => match c::test_connection(runtime, actor, &id).await {
            Ok(t) if t.healthy && t.missing_permissions.is_empty() => {
                Flash::ok(format!("Connection {id} is healthy and has every permission it needs."))
            }
            Ok(t) => Flash::error(format!(
                "Connection {id}: {}; missing permissions: {}",
                t.detail,
                joined(&t.missing_permissions)
            )),
            Err(e) => failed(e),
        },
        "disable" | "enable" => match c::set_connection_enabled(runtime, actor, &id, button == "enable").await {
            Ok(_) => Flash::ok(format!("Connection {id} {}d.", button)),
            Err(e) => failed(e),
        },
        "delete" if form.confirm.trim() != id => {
            Flash::error(format!("Not deleted: type the connection's id ({id}) to confirm."))
        }
        "delete" => match c::remove_connection(runtime, actor, &id).await {
            Ok(()) => Flash::ok(format!("Connection {id} deleted.")),
            Err(e) => failed(e),
        },
        _ => return super::message(StatusCode::NOT_FOUND, "Not found", "no such button"),
    };
    done(&ui, &signed, flash).await
}
