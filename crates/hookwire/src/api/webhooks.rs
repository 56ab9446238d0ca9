//! Webhook configuration: LiveChat's v2 routes (`/webhooks`, `/v2/webhooks`)
//! and hookwire's own (`/api/v1/webhooks`), over one validation path.

use super::auth::License;
use super::error::{ApiResult, AppError};
use super::extract::{json_or_form, typed, Body};
use super::{views, AppState};
use crate::service::{WebhookChanges, WebhookSpec};
use crate::store::Webhook;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hookwire_livechat::{DataTypes, EventType, TargetUrl};
use serde::Deserialize;
use serde_json::{json, Value};

/// `data_types` as JSON lists it, as a lone string, or as PHP's `data_types[]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Names {
    Many(Vec<String>),
    One(String),
}

impl Names {
    fn into_vec(self) -> Vec<String> {
        match self {
            Names::Many(v) => v,
            Names::One(s) if s.is_empty() => Vec::new(),
            Names::One(s) => vec![s],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhookInput {
    event_type: Option<String>,
    #[serde(default)]
    data_types: Option<Names>,
    url: Option<String>,
    /// hookwire's own routes only: LiveChat's have no such field.
    ordered: Option<Value>,
}

/// Which route a new webhook comes through: LiveChat's v2 routes keep
/// LiveChat's fields; hookwire's own (and the web app) add `ordered`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    LiveChat,
    Hookwire,
}

/// Reads a new webhook from a JSON or form body (API and web app) and
/// creates it through the service.
pub(crate) async fn create_webhook(
    state: &AppState,
    license_id: String,
    value: Value,
    surface: Surface,
) -> ApiResult<Webhook> {
    let input: NewWebhookInput = typed(value)?;
    if surface == Surface::LiveChat && input.ordered.is_some() {
        return Err(AppError::invalid(
            "ordered",
            "unknown field; LiveChat's webhooks have event_type, data_types and url (ordered delivery is set through /api/v1/webhooks)",
        ));
    }
    let ordered = flag("ordered", input.ordered)?.unwrap_or(false);
    let event_type: EventType = input
        .event_type
        .ok_or_else(|| AppError::invalid("event_type", "is required"))?
        .parse()?;
    let names = input.data_types.map(Names::into_vec).unwrap_or_default();
    let spec = WebhookSpec {
        event_type,
        data_types: DataTypes::parse_for(event_type, &names)?,
        url: TargetUrl::parse(input.url.as_deref().unwrap_or(""))?,
        ordered,
    };
    Ok(state.service().create_webhook(&license_id, spec).await?)
}

// LiveChat v2.

#[utoipa::path(get, path = "/webhooks", tag = "livechat-v2", security(("license_key" = []), ("license_basic" = [])),
    responses((status = 200, description = "The license's webhooks, LiveChat's format", body = crate::api::openapi::LivechatWebhooks)))]
pub async fn v2_list(
    State(state): State<AppState>,
    License(license): License,
) -> ApiResult<Json<Value>> {
    let webhooks = state.store().list_webhooks(&license).await?;
    let events: Vec<Value> = webhooks.iter().map(views::livechat_webhook).collect();
    Ok(Json(json!({ "events": events })))
}

#[utoipa::path(post, path = "/webhooks", tag = "livechat-v2", security(("license_key" = []), ("license_basic" = [])),
    request_body(content = crate::api::openapi::NewWebhook, description = "JSON, or a PHP-style form"),
    responses((status = 200, description = "Created, LiveChat's format", body = crate::api::openapi::LivechatWebhooks)))]
pub async fn v2_create(
    State(state): State<AppState>,
    License(license): License,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let value = json_or_form(&headers, &body)?;
    let webhook = create_webhook(&state, license, value, Surface::LiveChat).await?;
    Ok(Json(
        json!({ "events": [views::livechat_webhook(&webhook)] }),
    ))
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "livechat-v2", security(("license_key" = []), ("license_basic" = [])), params(("id" = String, Path, description = "The webhook id")),
    responses((status = 200, description = "Deleted", body = crate::api::openapi::ResultMessage)))]
pub async fn v2_delete(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.service().delete_webhook(&license, &id).await?;
    Ok(Json(
        json!({ "result": "Push notification removed successfully" }),
    ))
}

// hookwire's own API.

#[utoipa::path(operation_id = "list_webhooks", get, path = "/webhooks", tag = "webhooks", security(("license_key" = []), ("license_basic" = [])),
    responses((status = 200, description = "The license's webhooks", body = crate::api::openapi::WebhookList)))]
pub async fn list(
    State(state): State<AppState>,
    License(license): License,
) -> ApiResult<Json<Value>> {
    let webhooks = state.store().list_webhooks(&license).await?;
    let list: Vec<Value> = webhooks.iter().map(views::webhook).collect();
    Ok(Json(json!({ "webhooks": list })))
}

#[utoipa::path(operation_id = "create_webhook", post, path = "/webhooks", tag = "webhooks", security(("license_key" = []), ("license_basic" = [])),
    request_body(content = crate::api::openapi::NewWebhookV1, description = "JSON, or a PHP-style form"),
    responses((status = 201, description = "Created", body = crate::api::openapi::WebhookView)))]
pub async fn create(
    State(state): State<AppState>,
    License(license): License,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let value = json_or_form(&headers, &body)?;
    let webhook = create_webhook(&state, license, value, Surface::Hookwire).await?;
    Ok((StatusCode::CREATED, Json(views::webhook(&webhook))))
}

#[utoipa::path(operation_id = "get_webhook", get, path = "/webhooks/{id}", tag = "webhooks", security(("license_key" = []), ("license_basic" = [])), params(("id" = String, Path, description = "The webhook id")),
    responses((status = 200, description = "The webhook", body = crate::api::openapi::WebhookView)))]
pub async fn get(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(views::webhook(
        &state.service().webhook(&license, &id).await?,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchInput {
    url: Option<String>,
    data_types: Option<Names>,
    enabled: Option<bool>,
    /// With `enabled: true`: drop the deliveries held while the webhook was
    /// disabled instead of delivering them.
    discard_held: Option<bool>,
    /// Attempts per second to this webhook; `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    max_per_second: Option<Option<Value>>,
    /// Ordered delivery per chat (visitor, ticket).
    ordered: Option<Value>,
}

/// A yes-or-no field: a JSON boolean, or as a form sends one (`true`,
/// `false`, a checkbox's `on`, `1`, `0`); anything else is refused naming
/// the field. `None`: not sent.
pub(super) fn flag(field: &str, value: Option<Value>) -> ApiResult<Option<bool>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if matches!(s.as_str(), "true" | "on" | "1") => Ok(Some(true)),
        Some(Value::String(s)) if matches!(s.as_str(), "false" | "off" | "0") => Ok(Some(false)),
        Some(other) => Err(AppError::invalid(
            field,
            format!("must be true or false, not {other}"),
        )),
    }
}

/// Tells a field sent as `null` (`Some(None)`) from one not sent (`None`).
pub(super) fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Value>>, D::Error> {
    Option::<Value>::deserialize(d).map(Some)
}

/// The most attempts per second a webhook's rate limit may name.
const MAX_RATE: u64 = 10_000;

/// A rate limit as JSON or a form sends it: a whole number of attempts per
/// second (1 to 10,000), or null/empty to remove it.
pub(super) fn rate_limit(value: Option<Value>) -> ApiResult<Option<u32>> {
    let bad = || {
        AppError::invalid(
            "max_per_second",
            format!("must be a whole number from 1 to {MAX_RATE}, or null"),
        )
    };
    let n = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| bad())?,
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    if (1..=MAX_RATE).contains(&n) {
        Ok(Some(n as u32))
    } else {
        Err(bad())
    }
}

#[utoipa::path(operation_id = "patch_webhook", patch, path = "/webhooks/{id}", tag = "webhooks", security(("license_key" = []), ("license_basic" = [])), params(("id" = String, Path, description = "The webhook id")),
    request_body(content = Option<crate::api::openapi::WebhookPatch>, description = "JSON, or a form; an empty body changes nothing"),
    responses((status = 200, description = "The updated webhook", body = crate::api::openapi::WebhookView)))]
pub async fn patch(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let input: PatchInput = typed(json_or_form(&headers, &body)?)?;
    let changes = WebhookChanges {
        url: input.url.as_deref().map(TargetUrl::parse).transpose()?,
        data_types: input.data_types.map(Names::into_vec),
        enabled: input.enabled,
        discard_held: input.discard_held.unwrap_or(false),
        max_per_second: input.max_per_second.map(rate_limit).transpose()?,
        ordered: flag("ordered", input.ordered)?,
        // v2 webhooks have no filters.
        log_filtered: None,
    };
    let updated = state
        .service()
        .update_webhook(&license, &id, changes)
        .await?;
    Ok(Json(views::webhook(&updated)))
}

#[utoipa::path(operation_id = "delete_webhook", delete, path = "/webhooks/{id}", tag = "webhooks", security(("license_key" = []), ("license_basic" = [])), params(("id" = String, Path, description = "The webhook id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.service().delete_webhook(&license, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/secret`: creates or rotates the webhook's
/// signing secret and answers it, once: `{"secret": "whsec_..."}`.
#[utoipa::path(post, path = "/webhooks/{id}/secret", tag = "webhooks", security(("license_key" = []), ("license_basic" = [])), params(("id" = String, Path, description = "The webhook id")),
    responses((status = 200, description = "The new signing secret, shown once; the previous one signs too during the grace period", body = crate::api::openapi::SigningSecret)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let secret = state.service().rotate_signing_secret(&license, &id).await?;
    Ok(Json(json!({ "secret": secret.expose() })))
}
