//! What the three receivers share: reading a webhook body and serving a
//! handler on every path.
//!
//! The envelope here is deliberately more tolerant than
//! [`hookwire_livechat::payload::WebhookPayload`]: LiveChat itself sends no
//! `event_unique_id`, and these examples are meant to work behind either
//! sender. The data sections reuse the domain crate's typed structs.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use hookwire_livechat::payload::{Chat, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::future::Future;
use tokio::net::TcpListener;

/// A webhook as the examples need it.
#[derive(Debug, Clone, Deserialize)]
pub struct Webhook {
    pub event_type: String,
    #[serde(default)]
    pub token: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub license_id: String,
    #[serde(default)]
    pub chat: Option<Chat>,
    #[serde(default)]
    pub visitor: Option<Visitor>,
    #[serde(default)]
    pub event_unique_id: Option<String>,
}

/// Reads a body. `Ok(None)` means well-formed but not `wanted`, which the
/// caller acknowledges and ignores: a webhook URL shared by several events
/// must not make the sender retry the ones this receiver does not handle.
pub fn parse(body: &[u8], wanted: &str) -> Result<Option<Webhook>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(event_type) = value.get("event_type") else {
        return Err("no event_type".into());
    };
    if event_type.as_str() != Some(wanted) {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("unexpected {wanted} body: {e}"))
}

/// Serves `handle` for POSTs on any path, answering 400 to bodies that are
/// not webhooks and 200 to everything else the handler accepts.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    wanted: &'static str,
    handle: F,
) -> std::io::Result<()>
where
    F: Fn(Webhook) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let handler = move |body: Bytes| {
        let handle = handle.clone();
        async move {
            match parse(&body, wanted) {
                Err(e) => {
                    tracing::warn!("rejected a webhook: {e}");
                    (StatusCode::BAD_REQUEST, e)
                }
                Ok(None) => (StatusCode::OK, "ignored".to_string()),
                Ok(Some(hook)) => match handle(hook).await {
                    Ok(()) => (StatusCode::OK, "ok".to_string()),
                    // Not 200, so the sender retries later.
                    Err(e) => {
                        tracing::error!("{wanted}: {e}");
                        (StatusCode::INTERNAL_SERVER_ERROR, e)
                    }
                },
            }
        }
    };
    // The webhook URL may carry any path (or none), so accept them all.
    let app = Router::new()
        .route("/", post(handler.clone()))
        .route("/{*path}", post(handler));
    axum::serve(listener, app).await
}

/// LiveChat documents `license_id` as a string, but a number is cheap to accept.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Removes control characters (terminal escapes among them) from text that
/// came from a visitor, before it reaches a terminal or a log line.
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wanted_ignores_others_rejects_garbage() {
        let body = br#"{"event_type":"chat_started","token":"t","license_id":1025707,
            "visitor":{"id":"S1","email":"a@b.c"}}"#;
        let hook = parse(body, "chat_started").unwrap().unwrap();
        assert_eq!(hook.license_id, "1025707");
        assert_eq!(hook.visitor.unwrap().email.as_deref(), Some("a@b.c"));
        assert!(parse(body, "chat_ended").unwrap().is_none());
        assert!(parse(b"{not json", "chat_started").is_err());
        assert!(parse(b"[1,2]", "chat_started").is_err());
        assert!(parse(br#"{"event_type":"chat_started","chat":7}"#, "chat_started").is_err());
    }

    #[test]
    fn printable_drops_escapes() {
        assert_eq!(printable("Mary\x1b[2J Brown\x07"), "Mary[2J Brown");
    }
}
