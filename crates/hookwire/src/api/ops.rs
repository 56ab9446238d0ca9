//! Operator endpoints: `/healthz`, `/readyz` and `/metrics`. They need no
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
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers (migrations ran before the port opened).
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    state
        .store()
        .ping()
        .await
        .map_err(|e| AppError::Unavailable(format!("the database is not reachable: {e}")))?;
    Ok(Json(json!({ "status": "ready" })))
}

/// Prometheus text format. The backlog gauges are read from the database
/// now; if it does not answer, the counters are still served and
/// `hookwire_database_up` says 0.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let ops = match state.store().ops_stats().await {
        Ok(ops) => Some(ops),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: reading the backlog failed");
            None
        }
    };
    let text = state
        .engine()
        .metrics()
        .render(ops, state.store().pool_stats());
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}
