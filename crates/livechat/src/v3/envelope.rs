//! The body of every v3 delivery: exactly six keys, in LiveChat's order,
//! `webhook_id`, `secret_key`, `action`, `organization_id`,
//! `additional_data` (always present, `{}` when nothing was asked for or
//! known) and `payload` (the platform's JSON text, byte for byte).
//!
//! LiveChat signs nothing: a receiver compares `secret_key` with the one it
//! registered. The SDK's `parse_webhook` refuses any other top-level key.

use super::{AdditionalData, AdditionalDataSet};
use serde_json::value::RawValue;

/// What one delivery's body is made of.
pub struct EnvelopeParts<'a> {
    pub webhook_id: &'a str,
    pub secret_key: &'a str,
    pub action: &'a str,
    pub organization_id: &'a str,
    pub additional_data: &'a str,
    pub payload: &'a RawValue,
}

/// Renders the six-key body.
pub fn render_envelope(p: &EnvelopeParts<'_>) -> Vec<u8> {
    let string = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    let mut out = String::with_capacity(
        128 + p.payload.get().len() + p.additional_data.len() + p.secret_key.len(),
    );
    out.push_str("{\"webhook_id\":");
    out.push_str(&string(p.webhook_id));
    out.push_str(",\"secret_key\":");
    out.push_str(&string(p.secret_key));
    out.push_str(",\"action\":");
    out.push_str(&string(p.action));
    out.push_str(",\"organization_id\":");
    out.push_str(&string(p.organization_id));
    out.push_str(",\"additional_data\":");
    out.push_str(p.additional_data);
    out.push_str(",\"payload\":");
    out.push_str(p.payload.get());
    out.push('}');
    out.into_bytes()
}

/// `additional_data` for a webhook that asked for `wanted`, from what the
/// event's context told: each asked-for key the context had, nothing else.
/// `chat_properties` is the context's JSON text; `user_ids` the present users.
pub fn additional_data(
    wanted: AdditionalDataSet,
    chat_properties: Option<&RawValue>,
    user_ids: Option<&[String]>,
) -> String {
    let mut parts = Vec::new();
    if let Some(props) = chat_properties.filter(|_| wanted.contains(AdditionalData::ChatProperties))
    {
        parts.push(format!("\"chat_properties\":{}", props.get()));
    }
    if let Some(ids) = user_ids.filter(|_| wanted.contains(AdditionalData::ChatPresenceUserIds)) {
        let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_string());
        parts.push(format!("\"chat_presence_user_ids\":{ids}"));
    }
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn six_keys_in_order_with_the_payload_as_sent() {
        let payload = RawValue::from_string(r#"{"chat_id":"C","n":1.50}"#.into()).unwrap();
        let body = render_envelope(&EnvelopeParts {
            webhook_id: "w1",
            secret_key: "s\"k",
            action: "incoming_event",
            organization_id: "org",
            additional_data: "{}",
            payload: &payload,
        });
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.ends_with(r#""payload":{"chat_id":"C","n":1.50}}"#),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 6);
        assert_eq!(v["secret_key"], "s\"k");
    }

    #[test]
    fn additional_data_has_what_was_asked_and_known() {
        let props = RawValue::from_string(r#"{"source":{"client_id":"a"}}"#.into()).unwrap();
        let ids = vec!["u1".to_string()];
        let all = AdditionalDataSet::from_bits(3);
        assert_eq!(
            additional_data(all, Some(&props), Some(&ids)),
            r#"{"chat_properties":{"source":{"client_id":"a"}},"chat_presence_user_ids":["u1"]}"#
        );
        assert_eq!(additional_data(all, None, None), "{}");
        assert_eq!(
            additional_data(AdditionalDataSet::default(), Some(&props), Some(&ids)),
            "{}"
        );
    }
}
