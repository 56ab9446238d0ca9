//! A v3 event as the chat platform reports it:
//! `{"action", "license_id", "payload", "context"?}`, validated.

use super::{Action, Version};
use crate::event::parse_license_id;
use crate::ValidationError;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub use super::filters::Context;

/// A v3 event that passed validation. `payload` keeps the platform's exact
/// JSON text: it is sent on byte for byte.
#[derive(Debug)]
pub struct V3Event {
    pub action: Action,
    pub license_id: String,
    pub payload: Box<RawValue>,
    pub context: Context,
    /// The payload's `agent_id` (`routing_status_set`), for `agent_ids`.
    pub agent_id: Option<String>,
    /// What orders it for an ordered webhook: its chat (see [`ordering_key`]).
    pub ordering_key: Option<String>,
}

/// A v3 event's ordering key: its chat, the payload's `chat_id`, or the id
/// of its `chat` (`incoming_chat`). `None` for actions about no chat (agents,
/// customers, routing statuses) and for an empty id: delivered unordered.
pub fn ordering_key(payload: &Map<String, Value>) -> Option<String> {
    payload
        .get("chat_id")
        .and_then(Value::as_str)
        .or_else(|| payload.get("chat")?.get("id")?.as_str())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

impl V3Event {
    /// Whether an ingested item is a v3 event (it has `action`) rather than
    /// a v2 one (`event_type`).
    pub fn is_v3(fields: &BTreeMap<String, Box<RawValue>>) -> bool {
        fields.contains_key("action")
    }

    /// Validates one event given as its top-level fields.
    pub fn from_fields(fields: BTreeMap<String, Box<RawValue>>) -> Result<Self, ValidationError> {
        let mut action = None;
        let mut license_id = None;
        let mut payload = None;
        let mut context = Context::default();
        for (key, value) in fields {
            match key.as_str() {
                "action" => {
                    let s: String = serde_json::from_str(value.get())
                        .map_err(|_| ValidationError::new("action", "must be a string"))?;
                    action = Some(s.parse::<Action>()?);
                }
                "license_id" => {
                    let v: Value = serde_json::from_str(value.get())
                        .map_err(|e| ValidationError::new("license_id", e.to_string()))?;
                    license_id = Some(parse_license_id(&v)?);
                }
                "payload" => payload = Some(value),
                "context" => {
                    if value.get() != "null" {
                        context = Context::from_json(&value)?;
                    }
                }
                other => {
                    return Err(ValidationError::new(
                        other,
                        "unknown field; a v3 event has action, license_id, payload and context",
                    ))
                }
            }
        }
        let action = action.ok_or_else(|| ValidationError::new("action", "is required"))?;
        let license_id =
            license_id.ok_or_else(|| ValidationError::new("license_id", "is required"))?;
        let payload = payload.ok_or_else(|| ValidationError::new("payload", "is required"))?;
        let keys: Map<String, Value> = serde_json::from_str(payload.get())
            .map_err(|_| ValidationError::new("payload", "must be a JSON object"))?;
        check_payload(action, &keys)?;
        let agent_id = match action {
            Action::RoutingStatusSet => keys
                .get("agent_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        };
        let ordering_key = ordering_key(&keys);
        Ok(V3Event {
            action,
            license_id,
            payload,
            context,
            agent_id,
            ordering_key,
        })
    }

    /// The versions whose catalog has this event's action: the webhooks it
    /// may go to are registered under one of them.
    pub fn versions(&self) -> Vec<Version> {
        Version::ALL
            .into_iter()
            .filter(|v| self.action.in_version(*v))
            .collect()
    }
}

/// The payload's top-level keys against the action's: every required key
/// present, nothing undeclared (what the SDK's `parse_webhook` demands). The
/// versions agree on every action they share, so one check serves them all.
pub fn check_payload(action: Action, keys: &Map<String, Value>) -> Result<(), ValidationError> {
    let declared = action.payload_keys();
    if let Some(k) = keys.keys().find(|k| !declared.iter().any(|d| d.name == *k)) {
        let names: Vec<_> = declared.iter().map(|d| d.name).collect();
        return Err(ValidationError::new(
            format!("payload.{k}"),
            format!(
                "{action}'s payload has no key {k}; it has: {}",
                names.join(", ")
            ),
        ));
    }
    if let Some(missing) = declared
        .iter()
        .find(|d| d.required && !keys.contains_key(d.name))
    {
        return Err(ValidationError::new(
            format!("payload.{}", missing.name),
            format!("is required for {action}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ordering_key_is_the_chat() {
        let key = |payload: serde_json::Value| ordering_key(payload.as_object().unwrap());
        assert_eq!(
            key(serde_json::json!({"chat_id": "C1", "thread_id": "T"})),
            Some("C1".into())
        );
        assert_eq!(
            key(serde_json::json!({"chat": {"id": "C2"}})),
            Some("C2".into())
        );
        assert_eq!(key(serde_json::json!({"agent": {"id": "a@b.c"}})), None);
        assert_eq!(key(serde_json::json!({"chat_id": ""})), None);
    }

    fn parse(text: &str) -> Result<V3Event, ValidationError> {
        V3Event::from_fields(serde_json::from_str(text).unwrap())
    }

    #[test]
    fn payload_keys_are_checked_and_the_text_kept() {
        let ev = parse(
            r#"{"action":"incoming_event","license_id":7,"payload":{"chat_id":"C","thread_id":"T","event":{"n":1.50}},
                "context":{"author_type":"customer"}}"#,
        )
        .unwrap();
        assert_eq!(ev.license_id, "7");
        assert!(ev.payload.get().contains("1.50"));
        assert_eq!(ev.versions().len(), 3);

        let err =
            parse(r#"{"action":"incoming_event","license_id":"7","payload":{"chat_id":"C"}}"#)
                .unwrap_err();
        assert_eq!(err.field, "payload.thread_id");
        let err = parse(
            r#"{"action":"incoming_event","license_id":"7","payload":{"chat_id":"C","thread_id":"T","extra":1}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "payload.extra");
        let err =
            parse(r#"{"action":"incoming_chatt","license_id":"7","payload":{}}"#).unwrap_err();
        assert_eq!(err.field, "action");
        let err = parse(r#"{"action":"incoming_chat","license_id":"7"}"#).unwrap_err();
        assert_eq!(err.field, "payload");
        let err =
            parse(r#"{"action":"incoming_chat","license_id":"7","payload":{"chat":{}},"ctx":{}}"#)
                .unwrap_err();
        assert_eq!(err.field, "ctx");
        let ev = parse(
            r#"{"action":"routing_status_set","license_id":"7","payload":{"agent_id":"a@x","status":"accepting_chats"}}"#,
        )
        .unwrap();
        assert_eq!(ev.agent_id.as_deref(), Some("a@x"));
        let ev =
            parse(r#"{"action":"incoming_customer","license_id":"7","payload":{"customer":{}}}"#)
                .unwrap();
        assert_eq!(ev.versions(), vec![Version::V3_5]);
    }
}
