//! The HTTP API. Only this module knows axum; handlers turn requests into
//! calls on the engine and the store, and every error into [`AppError`].

pub mod auth;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod extract;
pub mod licenses;
pub mod limit;
pub mod ops;
pub mod ui;
pub mod views;
pub mod visitors;
pub mod webhooks;

use crate::engine::Engine;
use crate::secret::Secret;
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, Request};
use axum::routing::{delete, get, post};
use axum::Router;
use error::AppError;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    platform_key: Secret,
    max_body_bytes: usize,
    rate_limiter: Option<limit::RateLimiter>,
    sessions: ui::session::Sessions,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        platform_key: Secret,
        max_body_bytes: usize,
        rate_limit_per_second: f64,
    ) -> Self {
        AppState {
            inner: Arc::new(Inner {
                store,
                engine,
                platform_key,
                max_body_bytes,
                rate_limiter: limit::RateLimiter::new(rate_limit_per_second),
                sessions: ui::session::Sessions::default(),
            }),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn platform_key(&self) -> &Secret {
        &self.inner.platform_key
    }

    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    pub fn rate_limiter(&self) -> Option<&limit::RateLimiter> {
        self.inner.rate_limiter.as_ref()
    }

    /// The web app's signed-in sessions.
    pub fn sessions(&self) -> &ui::session::Sessions {
        &self.inner.sessions
    }
}

/// LiveChat's v2 REST routes (webhooks, custom visitor details), mounted at
/// `/` and at `/v2`. `X-API-Version` is accepted and not required.
fn livechat_v2() -> Router<AppState> {
    Router::new()
        .route(
            "/webhooks",
            get(webhooks::v2_list).post(webhooks::v2_create),
        )
        .route("/webhooks/{id}", delete(webhooks::v2_delete))
        .route(
            "/visitors/{visitor_id}/details",
            post(visitors::add_details).get(visitors::get_details),
        )
}

pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes();
    let v1 = Router::new()
        .route("/licenses", post(licenses::create))
        .route("/events", post(events::ingest_one))
        .route("/events/batch", post(events::ingest_batch))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::patch)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/deliveries", get(deliveries::for_webhook))
        .route("/webhooks/{id}/secret", post(webhooks::rotate_secret))
        .route(
            "/webhooks/{id}/redeliver",
            post(deliveries::redeliver_failed),
        )
        .route("/deliveries", get(deliveries::for_license))
        .route("/visitors", get(visitors::recent))
        .route("/deliveries/{id}/redeliver", post(deliveries::redeliver));
    Router::new()
        .nest("/api/v1", v1)
        .merge(livechat_v2())
        .nest("/v2", livechat_v2())
        .merge(ui::routes())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit::rate_limit,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn not_found(req: Request) -> AppError {
    AppError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}
