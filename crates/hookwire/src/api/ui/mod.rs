//! The web app: server-rendered pages under `/ui`, on the same
//! port as the API. No build step: the CSS and the small script are embedded.
//!
//! Pages sign in with a license's API key (or the platform key, as operator),
//! then reuse the API's validation and the store, like the JSON routes do.

pub mod html;
mod pages;
pub mod sample;
pub mod session;

use super::AppState;
use crate::service::ServiceError;
use crate::store::StoreError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use html::esc;
use serde_json::Value;
use session::{cookie, Session, SESSION_COOKIE};
use std::sync::Arc;

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

/// The web app's routes; `frame_ancestors` are the origins allowed to frame
/// it (`portal_frame_ancestors`), none when empty.
pub fn routes(frame_ancestors: &[String]) -> Router<AppState> {
    let csp: Arc<str> = content_security_policy(frame_ancestors).into();
    Router::new()
        // A browser opened at the server's address lands in the web app.
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui", get(|| async { Redirect::to("/ui/overview") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/overview") }))
        .route("/ui/assets/ui.css", get(css))
        .route("/ui/assets/ui.js", get(js))
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/portal/{token}", get(pages::open_portal_link))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/license", post(pages::switch_license))
        .route(
            "/ui/licenses",
            get(pages::licenses_page).post(pages::create_license),
        )
        .route("/ui/overview", get(pages::overview))
        .route(
            "/ui/webhooks",
            get(pages::webhooks_page).post(pages::create_webhook),
        )
        .route("/ui/webhooks/new", get(pages::new_webhook_form))
        .route(
            "/ui/webhooks/{id}",
            get(pages::edit_webhook_form).post(pages::update_webhook),
        )
        .route("/ui/webhooks/{id}/enabled", post(pages::set_enabled))
        .route("/ui/webhooks/{id}/enable", get(pages::enable_choice))
        .route(
            "/ui/webhooks/{id}/delete",
            get(pages::confirm_delete).post(pages::delete_webhook),
        )
        .route("/ui/webhooks/{id}/test", post(pages::send_test))
        .route("/ui/v3-webhooks", get(pages::v3_webhooks_page))
        .route(
            "/ui/v3-webhooks/switch",
            post(pages::switch_license_webhooks),
        )
        .route(
            "/ui/v3-webhooks/{id}/unregister",
            post(pages::unregister_v3_webhook),
        )
        .route("/ui/v3-webhooks/{id}", post(pages::switch_v3_webhook))
        .route("/ui/v3-webhooks/{id}/test", post(pages::send_v3_test))
        .route("/ui/deliveries", get(pages::deliveries_page))
        .route(
            "/ui/deliveries/redeliver-failed",
            post(pages::redeliver_failed),
        )
        .route("/ui/deliveries/{id}", get(pages::delivery_page))
        .route("/ui/deliveries/{id}/redeliver", post(pages::redeliver))
        .route("/ui/agents", get(pages::agents_page))
        .route("/ui/agents.json", get(pages::agents_json))
        // Under /ui a person is reading: an unknown page is an HTML page
        // with a way home, not the API's JSON.
        .route("/ui/{*rest}", axum::routing::any(page_not_found))
        .layer(axum::middleware::map_response(move |r| {
            let csp = csp.clone();
            async move { security_headers(r, &csp) }
        }))
}

/// The script and stylesheet come from here only, no page may be framed but
/// by the configured dashboards (clickjacking), forms post only here, and
/// pages are not cached (a new license's key is shown once).
fn content_security_policy(frame_ancestors: &[String]) -> String {
    let ancestors = if frame_ancestors.is_empty() {
        "'none'".to_string()
    } else {
        frame_ancestors.join(" ")
    };
    format!(
        "default-src 'self'; img-src 'self' https:; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    )
}

fn security_headers(mut response: Response, csp: &str) -> Response {
    let headers = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value| {
        h.insert(name, header::HeaderValue::from_static(value));
    };
    if let Ok(value) = header::HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

async fn page_not_found(uri: axum::http::Uri) -> UiError {
    UiError::NotFound(format!("There is no page at {}.", uri.path()))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        JS,
    )
        .into_response()
}

/// A signed-in browser: its session and the cookie value naming it. Without
/// one, pages redirect to the sign-in form.
pub struct SignedIn {
    pub cookie: String,
    pub session: Session,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let found = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(id) => state
                .sessions()
                .get(id)
                .await
                .map_err(|e| UiError::Store(e).into_response())?
                .map(|s| (id.to_string(), s)),
            None => None,
        };
        match found {
            Some((cookie, session)) => Ok(SignedIn { cookie, session }),
            // The agent view's script gets an answer it can read.
            None if parts.uri.path().ends_with(".json") => Err((
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": {"code": "unauthorized", "message": "sign in again"}})),
            )
                .into_response()),
            None => Err(Redirect::to("/ui/login").into_response()),
        }
    }
}

impl SignedIn {
    /// The license being looked at, or an error sending an operator to choose one.
    pub fn license(&self) -> Result<&str, UiError> {
        self.session.license.as_deref().ok_or(UiError::NoLicense)
    }

    /// Checks the form's CSRF token against the session's.
    pub fn check_csrf(&self, form: &Value) -> Result<(), UiError> {
        if session::csrf_ok(&self.session, form.get("csrf").and_then(Value::as_str)) {
            Ok(())
        } else {
            Err(UiError::Csrf)
        }
    }
}

/// Why a page could not be shown; answered as a small HTML page.
#[derive(Debug)]
pub enum UiError {
    Store(StoreError),
    NotFound(String),
    BadRequest(String),
    /// The change collides with what is stored (a taken id, a limit).
    Conflict(String),
    /// A POST without the CSRF token of the sign-in session it came with.
    Csrf,
    /// An operator has not chosen a license yet.
    NoLicense,
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        UiError::Store(e)
    }
}

impl From<ServiceError> for UiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(e) => UiError::Store(e),
            ServiceError::NotFound(m) => UiError::NotFound(m),
            ServiceError::Invalid(e) => UiError::BadRequest(e.to_string()),
            ServiceError::Conflict(m) => UiError::Conflict(m),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            UiError::NoLicense => return Redirect::to("/ui/licenses").into_response(),
            UiError::Store(StoreError::Unavailable { source }) => {
                tracing::error!(error = %source, "database unavailable in the web app");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database cannot be reached right now; nothing was changed. Try again shortly."
                        .to_string(),
                )
            }
            UiError::Store(StoreError::Closed) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "hookwire is shutting down; nothing was changed.".to_string(),
            ),
            UiError::Store(StoreError::Conflict(what)) => (
                StatusCode::CONFLICT,
                format!("That collides with something already stored ({what}); nothing was changed."),
            ),
            UiError::Store(StoreError::Corrupt(detail)) => {
                tracing::error!(%detail, "stored data cannot be read in the web app");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Stored data cannot be read; the server's log names it.".to_string(),
                )
            }
            UiError::Conflict(m) => (StatusCode::CONFLICT, m),
            UiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            UiError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Go back, reload the page and try again."
                    .to_string(),
            ),
        };
        let body = format!(
            r#"<main id="main" class="narrow"><h1>{}</h1><p>{}</p><p><a href="/ui/overview">Back to hookwire</a></p></main>"#,
            status.canonical_reason().unwrap_or("Error"),
            esc(&message)
        );
        (status, Html(html::document(status.as_str(), &body))).into_response()
    }
}

pub type UiResult<T = Response> = Result<T, UiError>;
