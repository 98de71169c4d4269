//! Request extractors whose rejections use the API's error shape: JSON bodies (strict, the
//! offending field named), optional bodies, query strings and action ids in paths.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use remediation_core::ActionId;

/// A JSON body, required.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub T);

/// A JSON body that may be left out (empty), in which case `T::default()` is used.
#[derive(Debug)]
pub(crate) struct OptionalJson<T>(pub T);

async fn read<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
    optional: bool,
) -> Result<Option<T>, ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status();
        let (code, message) = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ("payload_too_large", "the request body is larger than the server accepts".to_owned())
        } else {
            ("invalid_request", format!("cannot read the request body: {}", rejection.body_text()))
        };
        ApiError::new(status, code, message)
    })?;
    if bytes.is_empty() {
        return if optional { Ok(None) } else { Err(ApiError::invalid("body", "a JSON body is required")) };
    }
    let is_json = content_type.as_deref().is_some_and(|c| {
        let mime = c.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        mime == "application/json" || mime.ends_with("+json")
    });
    if !is_json {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON: send `Content-Type: application/json`",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path.is_empty() || path == "." { field_of(e.inner()) } else { path };
        ApiError::invalid(&field, format!("invalid request body at `{field}`: {}", e.inner()))
    })?;
    Ok(Some(value))
}

/// `T` from a JSON value already read, with the same errors as [`ApiJson`] (the offending
/// field named).
pub(crate) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path.is_empty() || path == "." { field_of(e.inner()) } else { path };
        ApiError::invalid(&field, format!("invalid request body at `{field}`: {}", e.inner()))
    })
}

/// For errors at the top level, the field serde names (`missing field `reason``).
fn field_of(e: &serde_json::Error) -> String {
    let text = e.to_string();
    for marker in ["missing field `", "unknown field `"] {
        if let Some(rest) = text.split_once(marker).map(|(_, r)| r)
            && let Some((name, _)) = rest.split_once('`')
        {
            return name.to_owned();
        }
    }
    "body".to_owned()
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match read(req, state, false).await? {
            Some(v) => Ok(Self(v)),
            None => Err(ApiError::invalid("body", "a JSON body is required")),
        }
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(read(req, state, true).await?.unwrap_or_default()))
    }
}

/// A query string, strict: unknown parameters are refused, the offending one named.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded_de(query);
        de.map(Self)
    }
}

fn serde_urlencoded_de<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}").parse().map_err(|_| ApiError::invalid("query", "invalid query string"))?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        let text = e.body_text();
        let field = text
            .split_once("unknown field `")
            .or_else(|| text.split_once("missing field `"))
            .and_then(|(_, r)| r.split_once('`'))
            .map_or_else(|| "query".to_owned(), |(f, _)| f.to_owned());
        ApiError::invalid(&field, text)
    })
}

/// The `{id}` of an action route: its id, or its handle (`1234`, or `%231234` for `#1234`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActionPath(pub ActionId);

impl FromRequestParts<crate::ApiState> for ActionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &crate::ApiState) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid("id", "the action id in the path is missing"))?;
        if let Ok(id) = raw.parse() {
            return Ok(Self(id));
        }
        let Some(handle) = remediation_core::parse_handle(&raw) else {
            return Err(ApiError::invalid("id", format!("`{raw}` is not an action id (a UUID) or handle (#1234)")));
        };
        match state.runtime().store().action_by_handle(handle).await? {
            Some(id) => Ok(Self(id)),
            None => {
                Err(ApiError::not_found(format!("no action #{handle}"))
                    .with_details(serde_json::json!({"handle": handle})))
            }
        }
    }
}
