//! The delivery log and redelivery.

use super::auth::License;
use super::error::{ApiResult, AppError};
use super::views::{self, parse_rfc3339};
use super::AppState;
use crate::service::RedeliverySince;
use crate::store::{now_millis, DeliveryQuery, DeliveryState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    state: Option<String>,
    /// Only deliveries older than this delivery id (the previous page's `next_before`).
    before: Option<String>,
    limit: Option<usize>,
}

async fn page(
    state: &AppState,
    license: &str,
    webhook_id: Option<&str>,
    q: LogQuery,
) -> ApiResult<Json<Value>> {
    let wanted = q
        .state
        .as_deref()
        .map(|s| {
            DeliveryState::parse(s).ok_or_else(|| {
                AppError::invalid(
                    "state",
                    "must be pending, held, delivered, failed, discarded or filtered",
                )
            })
        })
        .transpose()?;
    let before = q
        .before
        .as_deref()
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| AppError::invalid("before", "must be a delivery id"))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(AppError::invalid(
            "limit",
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    let deliveries = state
        .store()
        .list_deliveries(DeliveryQuery {
            license_id: license,
            webhook_id,
            state: wanted,
            event_type: None,
            before,
            limit,
        })
        .await?;
    let next_before = (deliveries.len() == limit)
        .then(|| deliveries.last().map(|d| d.id.to_string()))
        .flatten();
    let list: Vec<Value> = deliveries.iter().map(views::delivery).collect();
    Ok(Json(
        json!({ "deliveries": list, "next_before": next_before }),
    ))
}

/// Query-string rejections answer in our error format too.
fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> ApiResult<T> {
    q.map(|Query(q)| q)
        .map_err(|e| AppError::invalid("query", e.body_text()))
}

#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "deliveries", security(("license_key" = []), ("license_basic" = [])),
    params(("id" = String, Path, description = "The webhook id"),
        ("state" = Option<crate::api::openapi::DeliveryStateName>, Query, description = "Only deliveries in this state"),
        ("before" = Option<String>, Query, description = "The previous page's next_before", pattern = "^[0-9]{1,18}$"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50", minimum = 1, maximum = 500)),
    responses((status = 200, description = "A page of the webhook's deliveries", body = crate::api::openapi::DeliveryPage)))]
pub async fn for_webhook(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q)?;
    if state.store().get_webhook(&license, &id).await?.is_none()
        && !super::livechat_v3::is_v3_webhook(&state, &license, &id).await?
    {
        return Err(AppError::NotFound(format!("no webhook {id}")));
    }
    page(&state, &license, Some(&id), q).await
}

#[utoipa::path(get, path = "/deliveries", tag = "deliveries", security(("license_key" = []), ("license_basic" = [])),
    params(("state" = Option<crate::api::openapi::DeliveryStateName>, Query, description = "Only deliveries in this state"),
        ("before" = Option<String>, Query, description = "The previous page's next_before", pattern = "^[0-9]{1,18}$"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50", minimum = 1, maximum = 500)),
    responses((status = 200, description = "A page of the license's deliveries", body = crate::api::openapi::DeliveryPage)))]
pub async fn for_license(
    State(state): State<AppState>,
    License(license): License,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q)?;
    page(&state, &license, None, q).await
}

#[utoipa::path(post, path = "/deliveries/{id}/redeliver", tag = "deliveries", security(("license_key" = []), ("license_basic" = [])),
    params(("id" = String, Path, description = "The delivery id")),
    responses((status = 202, description = "Pending again", body = crate::api::openapi::Redelivered),
        (status = 409, description = "Held: it waits for its webhook to be enabled", body = crate::api::openapi::ErrorBody)))]
pub async fn redeliver(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let delivery_id: i64 = id
        .parse()
        .map_err(|_| AppError::NotFound(format!("no delivery {id}")))?;
    state.service().redeliver(&license, delivery_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "state": "pending" })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinceQuery {
    since: Option<String>,
}

#[utoipa::path(post, path = "/webhooks/{id}/redeliver", tag = "deliveries", security(("license_key" = []), ("license_basic" = [])),
    params(("id" = String, Path, description = "The webhook id"), ("since" = String, Query, description = "RFC 3339: failed deliveries created since then", format = DateTime)),
    responses((status = 202, description = "How many deliveries are pending again", body = crate::api::openapi::RedeliveredCount)))]
pub async fn redeliver_failed(
    State(state): State<AppState>,
    License(license): License,
    Path(id): Path<String>,
    q: Result<Query<SinceQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let q = query(q)?;
    let since = q
        .since
        .as_deref()
        .ok_or_else(|| AppError::invalid("since", "is required (an RFC 3339 time)"))?;
    let since = parse_rfc3339("since", since)?;
    let count = state
        .service()
        .redeliver_failed_since(&license, RedeliverySince::Webhook(&id), since)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "redelivered": count }))))
}

const DEFAULT_REPLAY_BATCH: usize = 100;
const MAX_REPLAY_BATCH: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayParams {
    /// RFC 3339 time, or a duration back from now such as `2h` or `7d`.
    since: Option<String>,
    webhook_id: Option<String>,
    /// Also redeliver deliveries that succeeded (default: only failed ones).
    include_delivered: Option<bool>,
    /// Continue after this delivery id (the previous batch's `last_id`).
    after: Option<String>,
    limit: Option<usize>,
    /// If given, must be the API key's license: a guard against replaying
    /// with the wrong key.
    license_id: Option<String>,
}

/// `since` as a time: RFC 3339, or a duration back from `now`.
pub fn parse_since(text: &str, now: crate::store::Millis) -> ApiResult<crate::store::Millis> {
    let text = text.trim();
    if let Ok(at) = parse_rfc3339("since", text) {
        return Ok(at);
    }
    let back = humantime::parse_duration(text).map_err(|_| {
        AppError::invalid(
            "since",
            format!("{text:?} is neither an RFC 3339 time (2026-11-25T12:00:00Z) nor a duration (30m, 2h, 7d)"),
        )
    })?;
    Ok(now.saturating_sub(back.as_millis().min(i64::MAX as u128) as i64))
}

/// `POST /api/v1/deliveries/redeliver?since=..[&webhook_id=..][&include_delivered=true][&after=..][&limit=..]`:
/// redelivers one batch of the license's deliveries since a time, in id
/// order; a client loops with `after=last_id` (and the answer's `since`)
/// until `remaining` is 0.
#[utoipa::path(post, path = "/deliveries/redeliver", tag = "deliveries", security(("license_key" = []), ("license_basic" = [])),
    params(("since" = String, Query, description = "RFC 3339 time, or a duration back from now such as 2h or 7d"),
        ("webhook_id" = Option<String>, Query, description = "Only this webhook's deliveries"),
        ("include_delivered" = Option<bool>, Query, description = "Also redeliver deliveries that succeeded (default: only failed ones)"),
        ("after" = Option<String>, Query, description = "The previous batch's last_id", pattern = "^[0-9]{1,18}$"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100", minimum = 1, maximum = 1000),
        ("license_id" = Option<String>, Query, description = "If given, must be the API key's license")),
    responses((status = 202, description = "One batch is pending again", body = crate::api::openapi::ReplayBatch)))]
pub async fn replay(
    State(state): State<AppState>,
    License(license): License,
    q: Result<Query<ReplayParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let q = query(q)?;
    if q.license_id.as_deref().is_some_and(|id| id != license) {
        return Err(AppError::invalid(
            "license_id",
            "the API key belongs to another license",
        ));
    }
    let now = now_millis();
    let since = q.since.as_deref().ok_or_else(|| {
        AppError::invalid(
            "since",
            "is required (an RFC 3339 time or a duration such as 2h)",
        )
    })?;
    let since = parse_since(since, now)?;
    let after = q
        .after
        .as_deref()
        .map(|a| {
            a.parse::<i64>()
                .map_err(|_| AppError::invalid("after", "must be a delivery id"))
        })
        .transpose()?
        .unwrap_or(0);
    let limit = q.limit.unwrap_or(DEFAULT_REPLAY_BATCH);
    if limit == 0 || limit > MAX_REPLAY_BATCH {
        return Err(AppError::invalid(
            "limit",
            format!("must be 1 to {MAX_REPLAY_BATCH}"),
        ));
    }
    let batch = state
        .service()
        .redeliver_batch(
            &crate::store::ReplayQuery {
                license_id: &license,
                webhook_id: q.webhook_id.as_deref(),
                since,
                include_delivered: q.include_delivered.unwrap_or(false),
            },
            after,
            limit,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "redelivered": batch.redelivered,
            "last_id": batch.last_id.map(|id| id.to_string()),
            "remaining": batch.remaining,
            // A duration is resolved once: later batches pass this back so
            // the window does not move under them.
            "since": views::rfc3339(since),
        })),
    ))
}
