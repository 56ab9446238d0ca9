//! Licenses: created by the chat platform, each with an API key shown once.

use super::auth::Platform;
use super::error::ApiResult;
use super::extract::{json_or_form, typed, Body};
use super::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLicense {
    license_id: Value,
}

/// Creates a license and its API key; the key is only ever shown here.
#[utoipa::path(operation_id = "create_license", post, path = "/licenses", tag = "licenses", security(("platform_key" = [])),
    request_body(content = crate::api::openapi::NewLicense, description = "JSON, or a form"),
    responses((status = 201, description = "Created; the API key is shown only here", body = crate::api::openapi::LicenseCreated)))]
pub async fn create(
    State(state): State<AppState>,
    _: Platform,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input: NewLicense = typed(json_or_form(&headers, &body)?)?;
    let license_id = hookwire_livechat::event::parse_license_id(&input.license_id)?;
    let api_key = state.service().create_license(&license_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "license_id": license_id, "api_key": api_key.expose() })),
    ))
}
