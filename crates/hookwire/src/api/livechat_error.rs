//! LiveChat's error shape on LiveChat's routes.
//!
//! LiveChat's own clients build their exception text from the body's
//! `error` when it is a string (or from `errors`, a list of strings):
//! `livechat/api-client-php` shows hookwire's structured error object as
//! "Bad Request. Array.". So on the routes LiveChat defines (`/webhooks`,
//! `/visitors/...`, both also under `/v2`) every error answers
//! `{"error": "<one sentence naming the problem>", "code": ..., "field": ...}`
//! with the same status and headers, while `/api/v1` keeps hookwire's
//! structured error. Handlers stay unaware of it: the answer is reshaped on
//! its way out, and only error answers (small by construction) are read.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Map, Value};

/// The most of an error body that is read to reshape it; hookwire's own
/// error bodies are a few hundred bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Whether `path` is one of LiveChat's routes (or would be, had it matched):
/// those answer LiveChat's error shape.
pub fn is_livechat_path(path: &str) -> bool {
    let path = path.strip_prefix("/v2").unwrap_or(path);
    ["/webhooks", "/visitors"]
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}/")))
}

/// Middleware: error answers on LiveChat's routes in LiveChat's shape.
pub async fn livechat_errors(req: Request, next: Next) -> Response {
    let livechat = is_livechat_path(req.uri().path());
    let response = next.run(req).await;
    let status = response.status();
    if !livechat || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        // Not one of hookwire's error bodies; say what the status says.
        let sentence = status.canonical_reason().unwrap_or("the request failed");
        return reshaped(parts, json!({ "error": sentence }));
    };
    let reshaped_body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(body)) => livechat_shape(body),
        _ => {
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            let sentence = if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("the request failed")
                    .to_string()
            } else {
                text
            };
            json!({ "error": sentence })
        }
    };
    parts.headers.remove(CONTENT_LENGTH);
    reshaped(parts, reshaped_body)
}

fn reshaped(mut parts: axum::http::response::Parts, body: Value) -> Response {
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// `{"error": {"code", "message", "field"}}` as `{"error": "<sentence>",
/// "code", "field"}`; a body already in LiveChat's shape is kept.
fn livechat_shape(mut body: Map<String, Value>) -> Value {
    let Some(Value::Object(detail)) = body.remove("error") else {
        return Value::Object(body);
    };
    let text = |key: &str| detail.get(key).and_then(Value::as_str);
    let message = text("message").unwrap_or("the request failed");
    let mut out = Map::new();
    out.insert("error".into(), json!(sentence(text("field"), message)));
    if let Some(code) = text("code") {
        out.insert("code".into(), json!(code));
    }
    if let Some(field) = text("field") {
        out.insert("field".into(), json!(field));
    }
    Value::Object(out)
}

/// One sentence that names the field: `url is required.`,
/// `data_types: chat_started does not support data type ticket.`
pub fn sentence(field: Option<&str>, message: &str) -> String {
    let mut s = match field {
        Some(f) if !f.is_empty() && !message.contains(f) => {
            let predicate = ["is ", "are ", "must ", "may ", "has ", "should "]
                .iter()
                .any(|p| message.starts_with(p));
            if predicate {
                format!("{f} {message}")
            } else {
                format!("{f}: {message}")
            }
        }
        _ => message.to_string(),
    };
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn livechat_paths_are_recognised_with_and_without_v2() {
        for p in [
            "/webhooks",
            "/webhooks/abc",
            "/v2/webhooks",
            "/v2/webhooks/x",
            "/visitors/S1/details",
            "/v2/visitors/S1/details",
        ] {
            assert!(is_livechat_path(p), "{p}");
        }
        for p in [
            "/api/v1/webhooks",
            "/webhooksx",
            "/v2",
            "/ui/webhooks",
            "/healthz",
            "/api/v1/visitors",
        ] {
            assert!(!is_livechat_path(p), "{p}");
        }
    }

    #[test]
    fn sentences_name_the_field_once_and_end_with_a_full_stop() {
        assert_eq!(sentence(Some("url"), "is required"), "url is required.");
        assert_eq!(
            sentence(
                Some("data_types"),
                "chat_started does not support data type ticket"
            ),
            "data_types: chat_started does not support data type ticket."
        );
        assert_eq!(sentence(None, "invalid API key"), "invalid API key.");
        assert_eq!(
            sentence(Some("event_type"), "unknown event_type \"x\""),
            "unknown event_type \"x\"."
        );
    }

    #[test]
    fn the_structured_error_becomes_a_string_with_its_siblings() {
        let body =
            json!({"error": {"code": "invalid_request", "message": "is required", "field": "url"}});
        let Value::Object(body) = body else {
            unreachable!()
        };
        assert_eq!(
            livechat_shape(body),
            json!({"error": "url is required.", "code": "invalid_request", "field": "url"})
        );
    }
}
