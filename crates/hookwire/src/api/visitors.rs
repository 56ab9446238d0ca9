//! The REST call-back: receivers push custom visitor details with the
//! `license_id` and `token` a webhook gave them, and agents read them back.

use super::auth::License;
use super::error::{ApiResult, AppError};
use super::extract::{json_or_form, Body};
use super::{views, AppState};
use crate::store::{now_millis, DetailsSet};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use hookwire_livechat::details::DetailsRequest;
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /visitors/{visitor_id}/details`, authenticated by the body's
/// `license_id` and `token`. Posting the same `id` again replaces that set.
#[utoipa::path(post, path = "/visitors/{visitor_id}/details", tag = "livechat-v2",
    params(("visitor_id" = String, Path, description = "1 to 200 characters")),
    request_body(content = crate::api::openapi::VisitorDetails, description = "JSON, or a form; authenticated by license_id and token"),
    responses((status = 200, description = "Stored", body = crate::api::openapi::ResultMessage)))]
pub async fn add_details(
    State(state): State<AppState>,
    Path(visitor_id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    if visitor_id.is_empty() || visitor_id.len() > 200 {
        return Err(AppError::invalid(
            "visitor_id",
            "must be 1 to 200 characters",
        ));
    }
    let value = json_or_form(&headers, &body)?;
    let (license_id, token) = DetailsRequest::credentials(&value)?;
    let grant = state.engine().token_grant(&token).await?.ok_or_else(|| {
        AppError::Unauthorized("invalid token: use the token from a webhook".into())
    })?;
    if grant.license_id != license_id {
        return Err(AppError::Unauthorized(
            "this token belongs to another license".into(),
        ));
    }
    let now = now_millis();
    if grant.expires_at <= now {
        return Err(AppError::Unauthorized("this token has expired".into()));
    }
    let request = DetailsRequest::parse(&value)?;
    let fields_json = serde_json::to_string(&request.fields).unwrap_or_else(|_| "[]".into());
    state
        .service()
        .put_visitor_details(
            &license_id,
            &visitor_id,
            DetailsSet {
                set_id: request.set_id,
                icon: request.icon,
                fields_json,
                updated_at: now,
            },
        )
        .await?;
    Ok(Json(json!({ "result": "Visitor details added" })))
}

/// `GET /visitors/{visitor_id}/details` (license key): what the agent app shows.
#[utoipa::path(get, path = "/visitors/{visitor_id}/details", tag = "livechat-v2", security(("license_key" = []), ("license_basic" = [])),
    params(("visitor_id" = String, Path)),
    responses((status = 200, description = "The visitor with their details", body = crate::api::openapi::VisitorView)))]
pub async fn get_details(
    State(state): State<AppState>,
    License(license): License,
    Path(visitor_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let visitor = state
        .store()
        .visitor(&license, &visitor_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no visitor {visitor_id}")))?;
    Ok(Json(views::visitor(&visitor)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/visitors`: the most recently seen visitors with their details.
#[utoipa::path(get, path = "/visitors", tag = "visitors", security(("license_key" = []), ("license_basic" = [])),
    params(("limit" = Option<u32>, Query, description = "1 to 500, default 50", minimum = 1, maximum = 500)),
    responses((status = 200, description = "The most recently seen visitors", body = crate::api::openapi::VisitorList)))]
pub async fn recent(
    State(state): State<AppState>,
    License(license): License,
    q: Result<Query<RecentQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(AppError::invalid("limit", "must be 1 to 500"));
    }
    let visitors = state.store().recent_visitors(&license, limit).await?;
    let list: Vec<Value> = visitors.iter().map(views::visitor).collect();
    Ok(Json(json!({ "visitors": list })))
}
