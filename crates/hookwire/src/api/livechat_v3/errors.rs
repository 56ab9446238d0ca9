//! The Configuration API's error shape on its routes (`/v3.5`, `/v3.6`,
//! `/v3.7`): `{"error": {"type": "<validation|authentication|...>",
//! "message": "<sentence>"}}`, as LiveChat's v3 clients read it. Like the v2
//! routes' shape (`livechat_error`), handlers stay unaware of it: error
//! answers are reshaped on their way out.

use crate::api::livechat_error::sentence;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};

/// The most of an error body that is read to reshape it.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Whether `path` is under one of the v3 versions' roots.
pub fn is_v3_path(path: &str) -> bool {
    super::VERSION_ROOTS
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}/")))
}

/// LiveChat's error type for a status.
pub fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication",
        403 => "authorization",
        404 => "not_found",
        429 => "too_many_requests",
        400..=499 => "validation",
        _ => "internal",
    }
}

/// Middleware: error answers on the v3 routes in the Configuration API's shape.
pub async fn v3_errors(req: Request, next: Next) -> Response {
    let v3 = is_v3_path(req.uri().path());
    let response = next.run(req).await;
    let status = response.status();
    if !v3 || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let message = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => {
                let detail = &v["error"];
                let text = |k: &str| detail.get(k).and_then(Value::as_str);
                text("message").map(|m| sentence(text("field"), m))
            }
            Err(_) => None,
        },
        Err(_) => None,
    }
    .unwrap_or_else(|| {
        sentence(
            None,
            status.canonical_reason().unwrap_or("the request failed"),
        )
    });
    let body = json!({ "error": { "type": error_type(status), "message": message } });
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_paths_and_types() {
        for p in ["/v3.5/configuration/action/x", "/v3.6/x", "/v3.7"] {
            assert!(is_v3_path(p), "{p}");
        }
        for p in [
            "/v3.8/configuration",
            "/v3.55/x",
            "/v2/webhooks",
            "/api/v1/x",
        ] {
            assert!(!is_v3_path(p), "{p}");
        }
        assert_eq!(error_type(StatusCode::BAD_REQUEST), "validation");
        assert_eq!(error_type(StatusCode::UNAUTHORIZED), "authentication");
        assert_eq!(error_type(StatusCode::SERVICE_UNAVAILABLE), "internal");
    }
}
