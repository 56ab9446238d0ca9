//! Payload shapes of the documentation, and the one function that renders a
//! webhook body.
//!
//! The typed structs are tolerant: every known field the documentation or real
//! deliveries show is named, and anything else is kept in `extra`, so a
//! receiver that reads them loses nothing. The server validates incoming data
//! against their allocation-free twins in [`shape`](crate::shape) (keep the
//! two in step) but sends the platform's raw JSON, so unknown fields pass
//! through byte for byte.

use crate::types::{DataType, DataTypes, EventType};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Unknown fields, kept as they came.
pub type Extra = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_timestamp: Option<i64>,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `agent`, `supervisor` (a whisper only agents see) or `visitor`.
    pub user_type: String,
    #[serde(default)]
    pub author_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    /// Supervisors' messages are whispers: agents see them, the visitor does not.
    pub fn is_whisper(&self) -> bool {
        self.user_type == "supervisor"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visitor {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_variables: Vec<CustomVariable>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomVariable {
    pub key: String,
    /// Usually a string, sometimes a number in real deliveries.
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyItem {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<SurveyChoice>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyChoice {
    pub label: String,
    #[serde(default)]
    pub chosen: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A webhook as a receiver gets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub event_type: String,
    pub token: String,
    pub license_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<Chat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor: Option<Visitor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_chat_survey: Option<Vec<SurveyItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    pub event_unique_id: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl WebhookPayload {
    pub fn event(&self) -> Option<EventType> {
        self.event_type.parse().ok()
    }
}

/// Everything a webhook body is made of.
pub struct PayloadParts<'a> {
    pub event_type: EventType,
    pub token: &'a str,
    pub license_id: &'a str,
    /// The raw JSON of each data type the event carries, indexed by [`DataType::index`].
    pub sections: &'a [Option<Box<RawValue>>; 4],
    /// The webhook's chosen data types: exactly these are sent.
    pub data_types: DataTypes,
    pub event_unique_id: &'a str,
}

/// Renders the body: `event_type`, `token`, `license_id`, the chosen data
/// types in table order, then `event_unique_id`, and nothing else. The data
/// sections are copied verbatim from what the platform reported.
pub fn render_payload(parts: &PayloadParts<'_>) -> Vec<u8> {
    let section_len: usize = parts
        .sections
        .iter()
        .flatten()
        .map(|raw| raw.get().len() + 24)
        .sum();
    let mut out = Vec::with_capacity(160 + section_len);
    out.extend_from_slice(b"{\"event_type\":");
    push_json_str(&mut out, parts.event_type.as_str());
    out.extend_from_slice(b",\"token\":");
    push_json_str(&mut out, parts.token);
    out.extend_from_slice(b",\"license_id\":");
    push_json_str(&mut out, parts.license_id);
    for t in parts.data_types.iter() {
        out.push(b',');
        push_json_str(&mut out, t.as_str());
        out.push(b':');
        match &parts.sections[t.index()] {
            Some(raw) => out.extend_from_slice(raw.get().as_bytes()),
            // Only the survey may be absent from an event; the documented
            // value for a skipped survey is an empty list.
            None if t == DataType::PreChatSurvey => out.extend_from_slice(b"[]"),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"event_unique_id\":");
    push_json_str(&mut out, parts.event_unique_id);
    out.push(b'}');
    out
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's string escaping cannot fail when writing into a Vec.
    serde_json::to_writer(&mut *out, s).expect("writing a JSON string into memory");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Option<Box<RawValue>> {
        Some(RawValue::from_string(s.to_string()).unwrap())
    }

    #[test]
    fn renders_exactly_the_chosen_types_in_order() {
        let sections = [
            raw(r#"{"id":"C1","x":1.50}"#),
            raw(r#"{"id":"V1"}"#),
            None,
            None,
        ];
        let body = render_payload(&PayloadParts {
            event_type: EventType::ChatStarted,
            token: "t0k",
            license_id: "1025707",
            sections: &sections,
            data_types: DataTypes::of(&[DataType::PreChatSurvey, DataType::Chat]),
            event_unique_id: "abc",
        });
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"event_type":"chat_started","token":"t0k","license_id":"1025707","chat":{"id":"C1","x":1.50},"pre_chat_survey":[],"event_unique_id":"abc"}"#
        );
    }

    #[test]
    fn payload_round_trips_documentation_example() {
        let doc = r#"{"event_type":"chat_started","token":"27f41c8da685c81a890f9e5f8ce48387","license_id":"1025707",
            "visitor":{"id":"S1354547427.0c151b0e1b","name":"John","email":"john.smith@gmail.com","country":"PL"},
            "event_unique_id":"0123456789abcdef0123456789abcdef"}"#;
        let p: WebhookPayload = serde_json::from_str(doc).unwrap();
        assert_eq!(
            p.visitor.as_ref().unwrap().email.as_deref(),
            Some("john.smith@gmail.com")
        );
        assert_eq!(p.visitor.as_ref().unwrap().extra["country"], "PL");
        assert_eq!(p.event(), Some(EventType::ChatStarted));
    }
}
