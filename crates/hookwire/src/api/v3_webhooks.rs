//! hookwire's own routes for a license's LiveChat v3 webhooks
//! (`/api/v1/v3-webhooks`): listed and read with what LiveChat's
//! `list_webhooks` does not show (enabled, held deliveries, ordering), and
//! switched as v2 webhooks are: on and off (delivering or discarding what
//! was held), ordered, rate limited. Registering and unregistering stay
//! LiveChat's (`/v3.x/configuration/action/...`).

use super::auth::License;
use super::error::ApiResult;
use super::extract::{json_or_form, typed, Body};
use super::webhooks::{flag, present, rate_limit};
use super::{views, AppState};
use crate::service::WebhookChanges;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

#[utoipa::path(operation_id = "list_v3_webhooks", get, path = "/v3-webhooks", tag = "webhooks", security(("license_key" = []), ("license_basic" = [])),
    responses((status = 200, description = "The license's v3 webhooks, every Client ID's", body = V3WebhookList)))]
pub async fn list(
    State(state): State<AppState>,
    License(license): License,
) -> ApiResult<Json<Value>> {
    let hooks = state.store().list_v3_webhooks(&license, None).await?;
    let list: Vec<Value> = hooks.iter().map(views::v3_webhook).collect();
    Ok(Json(json!({ "webhooks": list })))
}

#[utoipa::path(operation_id = "get_v3_webhook", get, path = "/v3-webhooks/{id}", tag = "webhooks", security(("license_key" = []), ("license_basic" = [])), params(("id" = String, Path, description = "The v3 webhook id")),
    responses((status = 200, description = "The v3 webhook", body = V3WebhookView)))]
pub async fn get(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let hook = state.service().v3_webhook(&license, &id).await?;
    Ok(Json(views::v3_webhook(&hook)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchInput {
    enabled: Option<bool>,
    discard_held: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    max_per_second: Option<Option<Value>>,
    ordered: Option<Value>,
    log_filtered: Option<Value>,
}

#[utoipa::path(operation_id = "patch_v3_webhook", patch, path = "/v3-webhooks/{id}", tag = "webhooks", security(("license_key" = []), ("license_basic" = [])), params(("id" = String, Path, description = "The v3 webhook id")),
    request_body(content = Option<V3WebhookPatch>, description = "JSON, or a form; an empty body changes nothing"),
    responses((status = 200, description = "The updated v3 webhook", body = V3WebhookView)))]
pub async fn patch(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let input: PatchInput = typed(json_or_form(&headers, &body)?)?;
    let changes = WebhookChanges {
        enabled: input.enabled,
        discard_held: input.discard_held.unwrap_or(false),
        max_per_second: input.max_per_second.map(rate_limit).transpose()?,
        ordered: flag("ordered", input.ordered)?,
        log_filtered: flag("log_filtered", input.log_filtered)?,
        ..WebhookChanges::default()
    };
    let updated = state
        .service()
        .update_v3_webhook(&license, &id, changes)
        .await?;
    Ok(Json(views::v3_webhook(&updated)))
}

// The schemas of these routes' bodies, for the OpenAPI description
// (`openapi.rs`): they describe, nothing builds them.

/// A license's LiveChat v3 webhooks (`GET /api/v1/v3-webhooks`).
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
pub struct V3WebhookList {
    pub webhooks: Vec<V3WebhookView>,
}

/// A LiveChat v3 webhook as hookwire's own routes show it: what
/// `list_webhooks` shows but the secret key, and its switches.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
pub struct V3WebhookView {
    pub id: String,
    pub license_id: String,
    /// `3.5`, `3.6` or `3.7`.
    pub version: String,
    pub action: String,
    /// `license` or `bot`.
    #[serde(rename = "type")]
    pub kind: String,
    pub owner_client_id: String,
    /// The URL, with any password masked.
    pub url: String,
    pub description: Option<String>,
    pub filters: serde_json::Value,
    pub additional_data: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub ordered: bool,
    /// Events its filters exclude are logged, as `filtered` deliveries.
    pub log_filtered: bool,
    pub held_deliveries: u64,
    pub max_per_second: Option<u32>,
    pub signed: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// A v3 webhook's switches; those left out stay as they are. Its URL and
/// additional data are changed by registering it again.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct V3WebhookPatch {
    /// `true` delivers what was held while it was off, oldest first.
    pub enabled: Option<bool>,
    /// With `"enabled": true` only: discard the held deliveries instead.
    pub discard_held: Option<bool>,
    /// Ordered delivery per chat (the payload's `chat_id`).
    pub ordered: Option<bool>,
    /// Log each event its filters exclude: a delivery in the final state
    /// `filtered`, never sent, whose `filtered_by` says which filter and why.
    pub log_filtered: Option<bool>,
    /// Attempts per second (1 to 10000); `null` removes the limit.
    #[schema(minimum = 1, maximum = 10000)]
    pub max_per_second: Option<u32>,
}
