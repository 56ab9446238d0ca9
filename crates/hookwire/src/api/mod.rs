//! The HTTP API. Only this module knows axum; handlers turn requests into
//! calls on the engine and the store, and every error into [`AppError`].

pub mod auth;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod extract;
pub mod licenses;
pub mod limit;
pub mod livechat_error;
pub mod livechat_v3;
pub mod openapi;
pub mod ops;
pub mod ui;
pub mod v3_webhooks;
pub mod views;
pub mod visitors;
pub mod webhooks;

use crate::config::{PortalSettings, Settings};
use crate::engine::Engine;
use crate::secret::Secret;
use crate::service::Service;
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, Request};
use axum::Router;
use error::AppError;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    service: Arc<Service>,
    platform_key: Secret,
    max_body_bytes: usize,
    rate_limiter: Option<limit::RateLimiter>,
    sessions: ui::session::Sessions,
    portal: PortalSettings,
    /// hookwire itself serves HTTPS (links it hands out say https).
    https: bool,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        service: Arc<Service>,
        platform_key: Secret,
        settings: &Settings,
    ) -> Self {
        AppState {
            inner: Arc::new(Inner {
                sessions: ui::session::Sessions::new(store.clone()),
                store,
                engine,
                service,
                platform_key,
                max_body_bytes: settings.max_body_bytes,
                rate_limiter: limit::RateLimiter::new(settings.rate_limit_per_second),
                portal: settings.portal.clone(),
                https: settings.tls.is_some(),
            }),
        }
    }

    /// How the web app may be embedded (portal links, framing).
    pub fn portal(&self) -> &PortalSettings {
        &self.inner.portal
    }

    /// Whether hookwire itself serves HTTPS.
    pub fn serves_https(&self) -> bool {
        self.inner.https
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Every write of configuration goes through here (see [`Service`]).
    pub fn service(&self) -> &Service {
        &self.inner.service
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
fn livechat_v2() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(webhooks::v2_list, webhooks::v2_create))
        .routes(routes!(webhooks::v2_delete))
        .routes(routes!(visitors::add_details, visitors::get_details))
}

/// Every API route, each registered with its OpenAPI operation (`routes!`
/// adds both at once, so the router and the description cannot drift).
pub fn api_routes() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(licenses::create))
        .routes(routes!(licenses::get, licenses::patch))
        .routes(routes!(licenses::create_portal_link))
        .routes(routes!(events::ingest_one))
        .routes(routes!(events::ingest_batch))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::patch, webhooks::delete))
        .routes(routes!(deliveries::for_webhook))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(deliveries::redeliver_failed))
        .routes(routes!(deliveries::replay))
        .routes(routes!(deliveries::for_license))
        .routes(routes!(visitors::recent))
        .routes(routes!(deliveries::redeliver))
        .routes(routes!(v3_webhooks::list))
        .routes(routes!(v3_webhooks::get, v3_webhooks::patch));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", v1)
        .merge(livechat_v2())
        .nest("/v2", livechat_v2())
        .routes(routes!(livechat_v3::v35))
        .routes(routes!(livechat_v3::v36))
        .routes(routes!(livechat_v3::v37))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi_json))
}

pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes();
    let (api, _) = api_routes().split_for_parts();
    // The web app's HTML pages are not part of the described API.
    api.merge(ui::routes(&state.portal().frame_ancestors))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit::rate_limit,
        ))
        .layer(DefaultBodyLimit::max(limit))
        // Outermost, so rate-limit and body-limit answers are reshaped too.
        .layer(axum::middleware::from_fn(livechat_error::livechat_errors))
        .layer(axum::middleware::from_fn(livechat_v3::errors::v3_errors))
        .with_state(state)
}

async fn not_found(req: Request) -> AppError {
    AppError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}
