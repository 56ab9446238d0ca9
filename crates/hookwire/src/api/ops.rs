//! Operator endpoints: `/healthz`, `/readyz`, `/metrics` and `/api/openapi.json`. They need no
//! key (load balancers and Prometheus scrape them); `/metrics` shows counts
//! only, never a license's data.

use super::error::AppError;
use super::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// The process is up (it answers HTTP).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = crate::api::openapi::Status)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers (migrations ran before the port opened)
/// and, on PostgreSQL, this node's heartbeat is fresh: a node whose
/// heartbeat is stale claims and attempts nothing until it is written again.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "The database answers and this node's heartbeat is fresh", body = crate::api::openapi::Status)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    state
        .store()
        .ping()
        .await
        .map_err(|e| AppError::Unavailable(format!("the database is not reachable: {e}")))?;
    let node = state.engine().dispatcher().liveness().gauges();
    if !node.fresh {
        return Err(AppError::Unavailable(format!(
            "this node's heartbeat was last written {:.1} s ago: it claims and attempts nothing until the heartbeat is written again",
            node.heartbeat_age.as_secs_f64()
        )));
    }
    Ok(Json(json!({ "status": "ready" })))
}

/// Prometheus text format. The backlog gauges are read from the database
/// now; if it does not answer, the counters are still served and
/// `hookwire_database_up` says 0.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let ops = match state.store().ops_stats().await {
        Ok(ops) => Some(ops),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: reading the backlog failed");
            None
        }
    };
    let node = state.engine().dispatcher().liveness().gauges();
    let text = state
        .engine()
        .metrics()
        .render(ops, state.store().pool_stats(), node);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}

/// This API's OpenAPI 3.1 description, generated from the code.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1, JSON", body = serde_json::Value)))]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/json")],
        super::openapi::spec_json(),
    )
}
