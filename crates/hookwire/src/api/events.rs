//! Ingest: the chat platform reports events; each is committed with its
//! deliveries before the answer. An item with `event_type` is a v2 event,
//! one with `action` a LiveChat v3 event (`{"action", "license_id",
//! "payload", "context"?}`); a batch may mix both.

use super::auth::Platform;
use super::error::{ApiResult, AppError};
use super::extract::{from_json_bytes, require_json, Body};
use super::AppState;
use crate::engine::IngestAnswer;
use crate::secret::hash_secret;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hookwire_livechat::v3::V3Event;
use hookwire_livechat::{IncomingEvent, ValidationError};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The most events one batch may carry.
pub const MAX_BATCH: usize = 1000;
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// One ingested item: a v2 event or a v3 one.
enum Incoming {
    V2(IncomingEvent),
    V3(V3Event),
}

impl Incoming {
    fn from_fields(fields: BTreeMap<String, Box<RawValue>>) -> Result<Self, ValidationError> {
        if V3Event::is_v3(&fields) {
            V3Event::from_fields(fields).map(Incoming::V3)
        } else {
            IncomingEvent::from_fields(fields).map(Incoming::V2)
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            AppError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
        })?;
    Ok(Some(key.to_string()))
}

fn answer_json(answer: &IngestAnswer) -> (StatusCode, Value) {
    match answer {
        IngestAnswer::Accepted {
            event_id,
            deliveries,
        } => (
            StatusCode::ACCEPTED,
            json!({ "id": event_id, "deliveries": deliveries }),
        ),
        IngestAnswer::UnknownLicense => error_json(AppError::NotFound("unknown license".into())),
        IngestAnswer::KeyReused => error_json(AppError::Unprocessable(
            "this Idempotency-Key was used before with a different request".into(),
        )),
    }
}

fn error_json(e: AppError) -> (StatusCode, Value) {
    (e.status(), json!({ "error": e.body() }))
}

#[utoipa::path(post, path = "/events", tag = "ingest", security(("platform_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays answer as the first time")),
    request_body = crate::api::livechat_v3::schemas::IngestItem,
    responses((status = 202, description = "Committed with its deliveries", body = crate::api::openapi::EventAccepted)))]
pub async fn ingest_one(
    State(state): State<AppState>,
    _: Platform,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = idempotency_key(&headers)?;
    require_json(&headers, &body)?;
    let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(&body)
        .map_err(|e| ValidationError::new("body", format!("not a JSON object: {e}")))?;
    let idempotency = key.map(|k| (k, hash_secret(&String::from_utf8_lossy(&body))));
    let incoming = Incoming::from_fields(fields)?;
    if state.engine().backlog_full() {
        return Err(AppError::Overloaded);
    }
    let answers = match incoming {
        Incoming::V2(event) => state.engine().ingest(vec![(event, idempotency)]).await?,
        Incoming::V3(event) => state.engine().ingest_v3(vec![(event, idempotency)]).await?,
    };
    let (status, value) = answer_json(&answers[0]);
    Ok((status, Json(value)))
}

/// Takes a JSON array of events and answers per item, in order:
/// `{"results": [{"status": 202, "id": ...}, {"status": 400, "error": {...}}]}`.
/// Valid items are committed together even when others are rejected.
#[utoipa::path(post, path = "/events/batch", tag = "ingest", security(("platform_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Applies per item")),
    request_body = Vec<crate::api::livechat_v3::schemas::IngestItem>,
    responses((status = 200, description = "One answer per item, in order", body = crate::api::openapi::BatchAnswer)))]
pub async fn ingest_batch(
    State(state): State<AppState>,
    _: Platform,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let key = idempotency_key(&headers)?;
    require_json(&headers, &body)?;
    let items: Vec<BTreeMap<String, Box<RawValue>>> = from_json_bytes(&body)?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(AppError::invalid(
            "body",
            format!("a batch holds 1 to {MAX_BATCH} events"),
        ));
    }
    let mut results: Vec<Option<(StatusCode, Value)>> = Vec::with_capacity(items.len());
    let mut valid = Vec::new();
    let mut valid_v3 = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        // Each item's idempotency key is derived from the batch's, so a
        // retried batch answers every item as the first time.
        let idempotency = key.as_ref().map(|k| {
            let text = serde_json::to_string(&item).unwrap_or_default();
            (format!("{k}#{i}"), hash_secret(&text))
        });
        match Incoming::from_fields(item) {
            Ok(Incoming::V2(event)) => {
                valid.push((i, event, idempotency));
                results.push(None);
            }
            Ok(Incoming::V3(event)) => {
                valid_v3.push((i, event, idempotency));
                results.push(None);
            }
            Err(e) => {
                let mut err = AppError::Invalid(e);
                if let AppError::Invalid(v) = &mut err {
                    v.field = format!("[{i}].{}", v.field);
                }
                results.push(Some(error_json(err)));
            }
        }
    }
    let (indexes, events): (Vec<usize>, Vec<_>) =
        valid.into_iter().map(|(i, e, k)| (i, (e, k))).unzip();
    let (indexes_v3, events_v3): (Vec<usize>, Vec<_>) =
        valid_v3.into_iter().map(|(i, e, k)| (i, (e, k))).unzip();
    if (!events.is_empty() || !events_v3.is_empty()) && state.engine().backlog_full() {
        return Err(AppError::Overloaded);
    }
    // v2 and v3 events commit in one transaction each: a failure of the
    // second answers an error for the whole batch, and a batch sent again
    // with its Idempotency-Key answers the first part as the first time.
    let answers = if events.is_empty() {
        Vec::new()
    } else {
        state.engine().ingest(events).await?
    };
    let answers_v3 = if events_v3.is_empty() {
        Vec::new()
    } else {
        state.engine().ingest_v3(events_v3).await?
    };
    for (i, answer) in indexes
        .into_iter()
        .zip(answers)
        .chain(indexes_v3.into_iter().zip(answers_v3))
    {
        results[i] = Some(answer_json(&answer));
    }
    let results: Vec<Value> = results
        .into_iter()
        .flatten()
        .map(|(status, mut value)| {
            value["status"] = json!(status.as_u16());
            value
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}
