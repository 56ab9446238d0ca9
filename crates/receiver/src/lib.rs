//! Receive hookwire's webhooks (LiveChat v2 compatible) in Rust.
//!
//! - Typed payloads: [`WebhookPayload`] and its parts are the very structs the
//!   server validates events with (re-exported from `hookwire-livechat`), so
//!   the two can never drift. They keep unknown fields in `extra`.
//! - [`Verifier`]: Standard Webhooks signatures (`webhook-id`,
//!   `webhook-timestamp`, `webhook-signature`), checked in constant time,
//!   with a timestamp tolerance and several secrets during a rotation.
//! - [`BasicAuth`]: the credentials hookwire sends when a webhook's URL has
//!   `user:password@`.
//! - [`Webhook`] (feature `axum`, on by default): an extractor that hands a
//!   handler a verified, typed webhook.
//! - [`Deduplicator`]: hookwire delivers at least once; retries keep
//!   `event_unique_id`, so a receiver drops what it has already handled.
//!
//! ```
//! use hookwire_receiver::{Verifier, WebhookPayload, EventType};
//!
//! let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let body = br#"{"event_type":"visitor_queued","token":"27f41c8da685c81a890f9e5f8ce48387",
//!   "license_id":"1025707","visitor":{"id":"S1354547427.0c151b0e1b","name":"Mary Brown"},
//!   "event_unique_id":"0123456789abcdef0123456789abcdef"}"#;
//! // What hookwire puts in the headers (normally read from the request):
//! let now = 1_700_000_000;
//! let signature = verifier.sign("0123456789abcdef0123456789abcdef", now, body);
//! verifier
//!     .verify_at("0123456789abcdef0123456789abcdef", &now.to_string(), &signature, body, now)
//!     .unwrap();
//!
//! let payload: WebhookPayload = serde_json::from_slice(body).unwrap();
//! assert_eq!(payload.event(), Some(EventType::VisitorQueued));
//! assert_eq!(payload.visitor.unwrap().name.as_deref(), Some("Mary Brown"));
//! ```

#![forbid(unsafe_code)]

mod auth;
mod dedup;
#[cfg(feature = "axum")]
mod extract;
mod verify;

pub use auth::{AuthError, BasicAuth};
pub use dedup::Deduplicator;
#[cfg(feature = "axum")]
pub use extract::{Receiver, Webhook, WebhookRejection};
pub use verify::{Verifier, VerifyError, DEFAULT_TOLERANCE};

pub use hookwire_livechat::payload::{
    Chat, CustomVariable, Extra, Message, SurveyChoice, SurveyItem, Ticket, Visitor, WebhookPayload,
};
pub use hookwire_livechat::{DataType, DataTypes, EventType};

/// The Standard Webhooks header with the message id (hookwire sends the
/// payload's `event_unique_id`).
pub const WEBHOOK_ID: &str = "webhook-id";
/// The Standard Webhooks header with the signing time, in Unix seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The Standard Webhooks header with space-separated `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_keep_unknown_fields_and_numbers_in_custom_variables() {
        let body = br#"{"event_type":"chat_changed","token":"t","license_id":"1025707",
            "chat":{"id":"C1","messages":[{"user_type":"supervisor","author_name":"J","text":"psst","timestamp":1,"future":true}],
                    "tags":["a"],"rating":"good"},
            "visitor":{"id":"V1","custom_variables":[{"key":"items","value":3},{"key":"total","value":9.5}]},
            "event_unique_id":"abc","new_top_level":{"x":1}}"#;
        let p: WebhookPayload = serde_json::from_slice(body).unwrap();
        assert_eq!(p.event(), Some(EventType::ChatChanged));
        assert_eq!(p.extra["new_top_level"]["x"], 1);
        let chat = p.chat.unwrap();
        assert_eq!(chat.extra["rating"], "good");
        assert!(chat.messages[0].is_whisper());
        assert_eq!(chat.messages[0].extra["future"], true);
        let vars = p.visitor.unwrap().custom_variables;
        assert_eq!(vars[0].value, 3);
        assert_eq!(vars[1].value, 9.5);
        // An event type from the future still parses; `event()` says it is unknown.
        let p: WebhookPayload = serde_json::from_slice(
            br#"{"event_type":"chat_paused","token":"t","license_id":"1","event_unique_id":"x"}"#,
        )
        .unwrap();
        assert_eq!(p.event(), None);
    }
}
