//! Request bodies: size-limited, JSON or PHP-style forms, rejections in our error format.

use super::error::AppError;
use super::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The raw body, within the configured size limit.
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let limit = state.max_body_bytes();
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(limit),
                _ => AppError::invalid("body", rejection.body_text()),
            })
    }
}

enum Kind {
    Json,
    Form,
}

fn kind(headers: &HeaderMap, body: &[u8]) -> Result<Kind, AppError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match content_type.as_deref() {
        Some("application/json") => Ok(Kind::Json),
        Some(t) if t.ends_with("+json") => Ok(Kind::Json),
        // `curl -d '{...}'` labels JSON as a form; no form key starts with
        // `{` or `[`, so such a body is read as the JSON it is.
        Some("application/x-www-form-urlencoded") | None => Ok(if looks_like_json(body) {
            Kind::Json
        } else {
            Kind::Form
        }),
        Some(other) => Err(AppError::UnsupportedMediaType(format!(
            "content type {other:?} is not accepted; send application/json or application/x-www-form-urlencoded"
        ))),
    }
}

fn looks_like_json(body: &[u8]) -> bool {
    body.trim_ascii_start()
        .first()
        .is_some_and(|b| matches!(b, b'{' | b'['))
}

/// Refuses bodies that are not JSON (by content type, or by their look when untyped).
pub fn require_json(headers: &HeaderMap, body: &[u8]) -> Result<(), AppError> {
    match kind(headers, body)? {
        Kind::Json => Ok(()),
        Kind::Form => Err(AppError::UnsupportedMediaType(
            "this route takes application/json".to_string(),
        )),
    }
}

/// Parses a JSON body (any content type ending in json) into `T`.
pub fn json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, AppError> {
    require_json(headers, body)?;
    from_json_bytes(body)
}

pub fn from_json_bytes<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.is_empty() {
        return Err(AppError::invalid("body", "a JSON body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| AppError::invalid("body", format!("invalid JSON: {e}")))
}

/// Parses a JSON or form-encoded body into a JSON value, so both share one
/// validation path (LiveChat's clients send PHP-style forms).
pub fn json_or_form(headers: &HeaderMap, body: &[u8]) -> Result<Value, AppError> {
    match kind(headers, body)? {
        Kind::Json => from_json_bytes(body),
        Kind::Form => {
            let text = std::str::from_utf8(body)
                .map_err(|_| AppError::invalid("body", "form body is not UTF-8"))?;
            Ok(hookwire_livechat::form::parse(text)?)
        }
    }
}

/// Reads a JSON value into `T`, naming the body when it does not fit.
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, AppError> {
    serde_json::from_value(value).map_err(|e| AppError::invalid("body", e.to_string()))
}
