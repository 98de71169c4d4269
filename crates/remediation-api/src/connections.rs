//! Managed connections over HTTP: `GET/POST /v1/connections`, `GET/PATCH/DELETE
//! /v1/connections/{id}`, `POST /v1/connections/{id}/test|disable|enable`. Adapters over
//! `remediation_service::connections`: viewers list and show, admins change. Secrets in
//! request bodies are write-only: sealed as they arrive, never echoed; answers carry
//! `secret_names` only.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use remediation_core::Role;
use remediation_core::store::ConnectionScope;
use remediation_service::connections::{ConnectionChange, ConnectionTest, ConnectionView, NewConnection};
use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::handlers::reply;

/// Secrets by name, write-only: read from a request, never serialised back, and shown by
/// `Debug` as their names only.
#[derive(Default, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct WriteOnlySecrets(
    /// The secrets by name (`{"token": "..."}`); never returned.
    #[schemars(extend("writeOnly" = true))]
    BTreeMap<String, String>,
);

impl std::fmt::Debug for WriteOnlySecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl WriteOnlySecrets {
    fn into_secrets(self) -> BTreeMap<String, SecretString> {
        self.0.into_iter().map(|(name, value)| (name, SecretString::from(value))).collect()
    }
}

/// `POST /v1/connections`: a new managed connection.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnectionBody {
    /// Its id, as actions name it (letters, digits, `-`, `_`, `.`; at most 64).
    pub id: String,
    /// The connector type (`okta`, `scim`, `sandbox`, ...).
    #[serde(rename = "type")]
    pub type_name: String,
    /// The connector's settings without `id` and `type`; secrets referenced as
    /// `{"sealed": "name"}`.
    pub settings: Value,
    /// Its secrets by name, write-only.
    #[serde(default)]
    pub secrets: WriteOnlySecrets,
    /// The targets it is meant for.
    #[serde(default)]
    pub scope: ConnectionScope,
}

/// `PATCH /v1/connections/{id}`: what changes; what is absent stays.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPatch {
    /// New settings.
    #[serde(default)]
    pub settings: Option<Value>,
    /// New secrets, write-only: they replace every secret the connection had.
    #[serde(default)]
    pub secrets: Option<WriteOnlySecrets>,
    /// A new scope.
    #[serde(default)]
    pub scope: Option<ConnectionScope>,
    /// The revision the change is based on (`409` when the connection changed since).
    #[serde(default)]
    pub revision: Option<u64>,
}

/// `GET /v1/connections`: every connection, the configuration file's then the managed ones.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionList {
    /// The connections.
    pub items: Vec<ConnectionView>,
}

/// `DELETE /v1/connections/{id}`: what was removed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionRemoved {
    /// The connection removed.
    pub removed: String,
}

pub(crate) async fn list(AxState(state): AxState<ApiState>, caller: Caller) -> Result<Json<ConnectionList>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(ConnectionList { items: remediation_service::connections::connections(state.runtime()).await? }))
}

pub(crate) async fn show(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(remediation_service::connections::connection(state.runtime(), &id).await?))
}

pub(crate) async fn create(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewConnectionBody>,
) -> Result<Response, ApiError> {
    let actor = caller.require(Role::Admin)?;
    let new = NewConnection {
        id: body.id,
        type_name: body.type_name,
        settings: body.settings,
        secrets: body.secrets.into_secrets(),
        scope: body.scope,
    };
    let view = remediation_service::connections::add_connection(state.runtime(), actor, new).await?;
    Ok(reply(StatusCode::CREATED, &view))
}

pub(crate) async fn update(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConnectionPatch>,
) -> Result<Json<ConnectionView>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    let change = ConnectionChange {
        settings: body.settings,
        secrets: body.secrets.map(WriteOnlySecrets::into_secrets),
        scope: body.scope,
        expected_revision: body.revision,
    };
    Ok(Json(remediation_service::connections::update_connection(state.runtime(), actor, &id, change).await?))
}

pub(crate) async fn remove(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionRemoved>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    remediation_service::connections::remove_connection(state.runtime(), actor, &id).await?;
    Ok(Json(ConnectionRemoved { removed: id }))
}

pub(crate) async fn test(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionTest>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    Ok(Json(remediation_service::connections::test_connection(state.runtime(), actor, &id).await?))
}

pub(crate) async fn disable(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    Ok(Json(remediation_service::connections::set_connection_enabled(state.runtime(), actor, &id, false).await?))
}

pub(crate) async fn enable(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let actor = caller.require(Role::Admin)?;
    Ok(Json(remediation_service::connections::set_connection_enabled(state.runtime(), actor, &id, true).await?))
}
