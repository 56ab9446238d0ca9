//! Licenses: created by the chat platform, each with an API key shown once,
//! its retention, its organization id (the v3 envelope's `organization_id`),
//! and the portal links that sign its customers into the web app.

use super::auth::Platform;
use super::error::{ApiResult, AppError};
use super::extract::{json_or_form, typed, Body};
use super::views;
use super::AppState;
use crate::store::rules::retention::RetentionPeriod;
use axum::extract::{Path, State};
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

/// `GET /api/v1/licenses/{license_id}`: the license's retention and its
/// organization id (made the first time it is needed, as LiveChat makes one
/// per organization).
#[utoipa::path(operation_id = "get_license", get, path = "/licenses/{license_id}", tag = "licenses", security(("platform_key" = [])),
    params(("license_id" = String, Path, description = "The license")),
    responses((status = 200, description = "The license's settings", body = crate::api::openapi::LicenseSettings)))]
pub async fn get(
    State(state): State<AppState>,
    _: Platform,
    Path(license_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let view = state.service().license_retention(&license_id).await?;
    let organization_id = state.service().organization_id(&license_id).await?;
    Ok(Json(views::license(&view, &organization_id)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicensePatch {
    #[serde(default, deserialize_with = "super::webhooks::present")]
    retention: Option<Option<Value>>,
    #[serde(default)]
    organization_id: Option<String>,
}

/// `PATCH /api/v1/licenses/{license_id}`: `{"retention": "7d"}` gives the
/// license a retention of its own (`null` returns it to the default);
/// `{"organization_id": "..."}` sets the platform's own organization id, so
/// v3 webhooks carry the id its integrations know. Either or both.
#[utoipa::path(operation_id = "update_license", patch, path = "/licenses/{license_id}", tag = "licenses", security(("platform_key" = [])),
    params(("license_id" = String, Path, description = "The license")),
    request_body(content = crate::api::openapi::LicensePatch, description = "JSON, or a form"),
    responses((status = 200, description = "The license's settings, as changed", body = crate::api::openapi::LicenseSettings)))]
pub async fn patch(
    State(state): State<AppState>,
    _: Platform,
    Path(license_id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let input: LicensePatch = typed(json_or_form(&headers, &body)?)?;
    if input.retention.is_none() && input.organization_id.is_none() {
        return Err(AppError::invalid(
            "retention",
            "nothing to change: give \"retention\" (a duration such as \"7d\", or null \
             for the default) and/or \"organization_id\"",
        ));
    }
    let retention = match input.retention {
        None => None,
        Some(None | Some(Value::Null)) => Some(None),
        Some(Some(Value::String(text))) => Some(Some(
            RetentionPeriod::parse(&text).map_err(|m| AppError::invalid("retention", m))?,
        )),
        Some(Some(other)) => {
            return Err(AppError::invalid(
                "retention",
                format!("must be a duration string such as \"7d\", or null; got {other}"),
            ))
        }
    };
    if let Some(organization_id) = &input.organization_id {
        state
            .service()
            .set_organization_id(&license_id, organization_id)
            .await?;
    }
    let view = match retention {
        Some(retention) => {
            state
                .service()
                .set_license_retention(&license_id, retention)
                .await?
        }
        None => state.service().license_retention(&license_id).await?,
    };
    let organization_id = state.service().organization_id(&license_id).await?;
    Ok(Json(views::license(&view, &organization_id)))
}

/// `POST /api/v1/licenses/{license_id}/portal-links`: a single-use link that
/// signs a browser into the web app as the license, without its API key,
/// for a platform that embeds the webhooks settings in its own dashboard.
#[utoipa::path(operation_id = "create_portal_link", post, path = "/licenses/{license_id}/portal-links", tag = "licenses", security(("platform_key" = [])),
    params(("license_id" = String, Path, description = "The license the link signs in as")),
    responses((status = 201, description = "The link, valid once until expires_at", body = crate::api::openapi::PortalLinkCreated)))]
pub async fn create_portal_link(
    State(state): State<AppState>,
    _: Platform,
    Path(license_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let link = state.service().create_portal_link(&license_id).await?;
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let scheme = if state.serves_https() || super::ui::session::over_https(&headers) {
        "https"
    } else {
        "http"
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "url": format!("{scheme}://{host}/ui/portal/{}", link.token.expose()),
            "expires_at": views::rfc3339(link.expires_at),
        })),
    ))
}
