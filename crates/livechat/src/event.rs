//! An event as the chat platform reports it to hookwire, validated.

use crate::shape::{ChatShape, Obj, SurveyItemShape, TicketShape, VisitorShape};
use crate::types::{DataType, DataTypes, EventType};
use crate::ValidationError;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// The raw JSON of each data type, indexed by [`DataType::index`].
pub type Sections = [Option<Box<RawValue>>; 4];

/// The longest license id accepted; LiveChat's are short numbers.
pub const MAX_LICENSE_ID_LEN: usize = 64;

/// A platform event that passed validation. Its sections keep the exact JSON
/// the platform sent, so fields hookwire does not know pass through untouched.
#[derive(Debug)]
pub struct IncomingEvent {
    pub event_type: EventType,
    pub license_id: String,
    pub sections: Sections,
    /// For events that carry a chat: its id and its tags as a canonical set
    /// (a sorted JSON array without duplicates), for the `chat_changed` rule.
    pub chat_tags: Option<(String, String)>,
    pub visitor: Option<VisitorSummary>,
    /// What orders this event among its webhook's deliveries, for a webhook
    /// that asks for ordered delivery: see [`ordering_key`].
    pub ordering_key: Option<String>,
}

/// What hookwire remembers of a visitor seen in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorSummary {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl IncomingEvent {
    /// Parses and validates one event from its JSON text.
    pub fn from_json(body: &[u8]) -> Result<Self, ValidationError> {
        let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(body)
            .map_err(|e| ValidationError::new("body", format!("not a JSON object: {e}")))?;
        Self::from_fields(fields)
    }

    /// Validates one event given as its top-level fields, each still raw JSON
    /// so the data sections keep their exact text (numbers included).
    pub fn from_fields(fields: BTreeMap<String, Box<RawValue>>) -> Result<Self, ValidationError> {
        let mut event_type = None;
        let mut license_id = None;
        let mut sections: Sections = Default::default();
        for (key, value) in fields {
            match key.as_str() {
                "event_type" => {
                    let s: String = serde_json::from_str(value.get())
                        .map_err(|_| ValidationError::new("event_type", "must be a string"))?;
                    event_type = Some(s.parse::<EventType>()?);
                }
                "license_id" => {
                    let v: Value = serde_json::from_str(value.get())
                        .map_err(|e| ValidationError::new("license_id", e.to_string()))?;
                    license_id = Some(parse_license_id(&v)?);
                }
                other => {
                    let Ok(t) = other.parse::<DataType>() else {
                        return Err(ValidationError::new(
                            other,
                            "unknown field; an event has event_type, license_id, chat, visitor, pre_chat_survey and ticket",
                        ));
                    };
                    if value.get() != "null" {
                        sections[t.index()] = Some(value);
                    }
                }
            }
        }
        let event_type =
            event_type.ok_or_else(|| ValidationError::new("event_type", "is required"))?;
        let license_id =
            license_id.ok_or_else(|| ValidationError::new("license_id", "is required"))?;

        let supported = event_type.supported();
        let required = event_type.required();
        for t in DataType::ALL {
            let present = sections[t.index()].is_some();
            if present && !supported.contains(t) {
                return Err(ValidationError::new(
                    t.as_str(),
                    format!(
                        "{event_type} does not carry {t}; it carries: {}",
                        supported.names().join(", ")
                    ),
                ));
            }
            if !present && required.contains(t) {
                return Err(ValidationError::new(
                    t.as_str(),
                    format!("is required for {event_type}"),
                ));
            }
        }

        // Checked against the documented shapes, reading only what is kept.
        let chat: Option<ChatShape> = shaped(&sections, DataType::Chat)?;
        let visitor: Option<VisitorShape> = shaped(&sections, DataType::Visitor)?;
        let _: Option<Vec<Obj<SurveyItemShape>>> = typed(&sections, DataType::PreChatSurvey)?;
        let _: Option<Obj<TicketShape>> = typed(&sections, DataType::Ticket)?;
        let ticket_id = match &sections[DataType::Ticket.index()] {
            Some(raw) => serde_json::from_str::<IdOnly>(raw.get())
                .ok()
                .map(|t| t.id.into_owned()),
            None => None,
        };

        let ordering_key = ordering_key(
            event_type,
            chat.as_ref().map(|c| c.id.as_ref()),
            visitor.as_ref().map(|v| v.id.as_ref()),
            ticket_id.as_deref(),
        );
        let chat_tags = chat
            .filter(|_| event_type.tracks_chat_tags())
            .map(|chat| (chat.id.into_owned(), canonical_tags(&chat.tags)));
        let visitor = visitor.map(|v| VisitorSummary {
            id: v.id.into_owned(),
            name: v.name.map(Cow::into_owned),
            email: v.email.map(Cow::into_owned),
        });
        Ok(IncomingEvent {
            event_type,
            license_id,
            sections,
            chat_tags,
            visitor,
            ordering_key,
        })
    }

    /// The data types this event carries (the survey counts even when absent,
    /// since it is then sent as `[]`).
    pub fn carried(&self) -> DataTypes {
        let mut set = DataTypes::default();
        for t in self.event_type.supported().iter() {
            set.insert(t);
        }
        set
    }
}

/// A ticket's id, read apart from its shape (which checks it but keeps nothing).
#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

/// The ordering key of an event: the chat's id for the chat events
/// (`chat_started`, `chat_ended`, `chat_changed`), the visitor's id for
/// `visitor_queued`, the ticket's id for `ticket_created`. `None` when that
/// id is missing or empty: such an event is delivered unordered. A webhook
/// carries one event type, so keys of different kinds never meet.
pub fn ordering_key(
    event_type: EventType,
    chat_id: Option<&str>,
    visitor_id: Option<&str>,
    ticket_id: Option<&str>,
) -> Option<String> {
    let id = match event_type {
        EventType::ChatStarted | EventType::ChatEnded | EventType::ChatChanged => chat_id,
        EventType::VisitorQueued => visitor_id,
        EventType::TicketCreated => ticket_id,
    };
    id.filter(|id| !id.is_empty()).map(str::to_string)
}

fn typed<'a, T: Deserialize<'a>>(
    sections: &'a Sections,
    t: DataType,
) -> Result<Option<T>, ValidationError> {
    let Some(raw) = &sections[t.index()] else {
        return Ok(None);
    };
    serde_json::from_str(raw.get())
        .map(Some)
        .map_err(|e| ValidationError::new(t.as_str(), format!("invalid {t}: {e}")))
}

/// A section that must be a JSON object, read as its shape.
fn shaped<'a, T: Deserialize<'a>>(
    sections: &'a Sections,
    t: DataType,
) -> Result<Option<T>, ValidationError> {
    Ok(typed::<Obj<T>>(sections, t)?.map(|o| o.0))
}

/// License ids are strings in payloads; the platform may send them as numbers.
pub fn parse_license_id(value: &Value) -> Result<String, ValidationError> {
    let id = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => {
            return Err(ValidationError::new(
                "license_id",
                "must be a string or a whole number",
            ))
        }
    };
    validate_license_id(&id)?;
    Ok(id)
}

/// A license id: 1 to 64 characters of letters, digits, `-`, `_` and `.`.
pub fn validate_license_id(id: &str) -> Result<(), ValidationError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_LICENSE_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "license_id",
            "must be 1 to 64 letters, digits, '-', '_' or '.'",
        ))
    }
}

/// Tags compared as a set: sorted, without duplicates, as compact JSON.
pub fn canonical_tags<S: AsRef<str>>(tags: &[S]) -> String {
    let set: BTreeSet<&str> = tags.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&set).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_keys_follow_the_event_type() {
        let key = |body: &str| {
            IncomingEvent::from_json(body.as_bytes())
                .unwrap()
                .ordering_key
        };
        assert_eq!(
            key(
                r#"{"event_type":"chat_changed","license_id":"1","chat":{"id":"C1","tags":["a"]},"visitor":{"id":"V1"}}"#
            ),
            Some("C1".into())
        );
        assert_eq!(
            key(
                r#"{"event_type":"chat_ended","license_id":"1","chat":{"id":"C2"},"visitor":{"id":"V1"}}"#
            ),
            Some("C2".into())
        );
        assert_eq!(
            key(r#"{"event_type":"visitor_queued","license_id":"1","visitor":{"id":"V9"}}"#),
            Some("V9".into())
        );
        assert_eq!(
            key(
                r#"{"event_type":"ticket_created","license_id":"1","ticket":{"id":"T4","status":"open"}}"#
            ),
            Some("T4".into())
        );
        // An empty id orders nothing: delivered unordered.
        assert_eq!(
            key(
                r#"{"event_type":"chat_started","license_id":"1","chat":{"id":""},"visitor":{"id":"V1"}}"#
            ),
            None
        );
    }

    #[test]
    fn keeps_unknown_fields_and_checks_required_data() {
        let ev = IncomingEvent::from_json(
            br#"{"event_type":"chat_started","license_id":1025707,
                 "chat":{"id":"C1","tags":["b","a","b"],"future":{"x":1.50}},
                 "visitor":{"id":"V1","email":"m@x.io"}}"#,
        )
        .unwrap();
        assert_eq!(ev.license_id, "1025707");
        assert!(ev.sections[0]
            .as_ref()
            .unwrap()
            .get()
            .contains("\"future\":{\"x\":1.50}"));
        assert_eq!(ev.chat_tags, Some(("C1".into(), r#"["a","b"]"#.into())));

        let err = IncomingEvent::from_json(
            br#"{"event_type":"chat_started","license_id":"1","chat":{"id":"C"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "visitor");
        let err = IncomingEvent::from_json(br#"{"event_type":"visitor_queued","license_id":"1","visitor":{"id":"V"},"ticket":{"id":"T"}}"#)
            .unwrap_err();
        assert_eq!(err.field, "ticket");
        let err = IncomingEvent::from_json(
            br#"{"event_type":"ticket_created","license_id":"1","ticket":{"status":"open"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "ticket");
        let err = IncomingEvent::from_json(
            br#"{"event_type":"chat_started","license_id":"1","vistor":{}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "vistor");
    }
}
