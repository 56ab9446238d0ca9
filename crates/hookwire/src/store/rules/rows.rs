//! Rows read back: the strings and numbers a backend stores for webhooks,
//! events and deliveries, made typed values in one place.
//!
//! A backend's row reader only takes the columns out as plain values
//! ([`WebhookRow`], [`EventRow`], [`DeliveryRow`]); everything that can fail
//! on a stored value fails here, as [`StoreError::Corrupt`] naming the row
//! and the field ("delivery 42: state: ..."). Nothing unknown is read as
//! some default: a state read as `pending` would be attempted again, an
//! event type read as `chat_started` would be delivered as one, and a
//! section dropped would be delivered without it.

use super::ordering::{LinePlace, LineQuery, PARKED};
use crate::store::{
    AttemptView, DeliveryState, DeliveryView, EventBody, EventName, Millis, StoreError,
    StoreResult, Webhook,
};
use hookwire_livechat::{DataType, DataTypes, EventType, TargetUrl};
use serde_json::value::RawValue;
use std::fmt::Display;

/// A `webhooks` row as stored, column by column.
pub struct WebhookRow {
    pub id: String,
    pub license_id: String,
    pub event_type: String,
    pub data_types: i64,
    pub url: String,
    pub token: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: Millis,
    /// A signing secret is set.
    pub signed: bool,
    pub max_per_second: Option<i64>,
    /// `ordered_since` is set.
    pub ordered: bool,
    /// Its deliveries in state `held`.
    pub held_deliveries: i64,
}

impl WebhookRow {
    pub fn into_webhook(self) -> StoreResult<Webhook> {
        let row = || format!("webhook {}", self.id);
        let event_type = event_type(row(), &self.event_type)?;
        let data_types = data_types(row(), self.data_types)?;
        let url = TargetUrl::parse_stored(&self.url).map_err(|e| StoreError::corrupt(row(), e))?;
        let max_per_second = self
            .max_per_second
            .map(|n| {
                u32::try_from(n).map_err(|_| {
                    StoreError::corrupt(row(), format_args!("max_per_second: {n} is not a rate"))
                })
            })
            .transpose()?;
        Ok(Webhook {
            id: self.id,
            license_id: self.license_id,
            event_type,
            data_types,
            url,
            token: self.token,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            signed: self.signed,
            max_per_second,
            ordered: self.ordered,
            held_deliveries: self.held_deliveries.max(0) as u64,
            created_at: self.created_at,
        })
    }
}

/// An `events` row's body: the columns every delivery of it needs.
pub struct EventRow {
    pub unique_id: String,
    pub license_id: String,
    pub event_type: String,
    /// The sections' JSON texts, by [`DataType::index`] (chat, visitor,
    /// pre-chat survey, ticket: the columns' order).
    pub sections: [Option<String>; 4],
    /// A v3 event's `v3_payload` and `v3_extra` columns.
    pub v3_payload: Option<String>,
    pub v3_extra: Option<String>,
}

impl EventRow {
    /// The event body; a section is kept as its stored text (no copy), once
    /// checked to be JSON.
    pub fn into_body(self) -> StoreResult<EventBody> {
        let event_type = event_name(format_args!("event {}", self.unique_id), &self.event_type)?;
        let v3 = match event_type {
            EventName::V3(action) => Some(super::v3::body(
                &self.unique_id,
                action,
                self.v3_payload,
                self.v3_extra,
            )?),
            EventName::V2(_) => None,
        };
        let [chat, visitor, survey, ticket] = self.sections;
        let id = &self.unique_id;
        let sections = [
            section(id, DataType::Chat, chat)?,
            section(id, DataType::Visitor, visitor)?,
            section(id, DataType::PreChatSurvey, survey)?,
            section(id, DataType::Ticket, ticket)?,
        ];
        Ok(EventBody {
            unique_id: self.unique_id,
            license_id: self.license_id,
            event_type,
            sections,
            v3,
        })
    }
}

/// A delivery as the log lists it, with its event's id and type.
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub state: String,
    pub created_at: Millis,
    pub next_attempt_at: Millis,
    /// Its ordering key (an ordered webhook's delivery with one).
    pub order_key: Option<String>,
    /// Its webhook was ordered when it was made.
    pub ordered_when_made: bool,
    /// For a `filtered` one: the exclusion.
    pub filtered_by: Option<String>,
}

impl DeliveryRow {
    /// What the backend reads to find the delivery's place in its line.
    pub fn line_query(&self) -> LineQuery<'_> {
        LineQuery {
            id: self.id,
            webhook_id: &self.webhook_id,
            order_key: self.order_key.as_deref(),
            unfinished: matches!(self.state.as_str(), "pending" | "held"),
            ordered_when_made: self.ordered_when_made,
        }
    }

    /// The view, with the attempts and the place in its key's line the
    /// backend found for it.
    pub fn into_view(
        self,
        attempts: Vec<AttemptView>,
        line: Option<LinePlace>,
    ) -> StoreResult<DeliveryView> {
        let state = delivery_state(self.id, &self.state)?;
        let event_type = event_name(format_args!("delivery {}", self.id), &self.event_type)?;
        Ok(DeliveryView {
            id: self.id,
            event_id: self.event_id,
            webhook_id: self.webhook_id,
            event_type,
            state,
            created_at: self.created_at,
            // Only a pending delivery is waiting for an attempt, and a
            // parked one waits for the one before it, not for a time.
            next_attempt_at: (state == DeliveryState::Pending && self.next_attempt_at != PARKED)
                .then_some(self.next_attempt_at),
            attempts,
            line,
            filtered_by: self.filtered_by,
        })
    }
}

/// A stored event type; `row` names where it was read.
pub fn event_type(row: impl Display, text: &str) -> StoreResult<EventType> {
    text.parse()
        .map_err(|e: hookwire_livechat::ValidationError| StoreError::corrupt(row, e))
}

/// A stored event name: a v2 event type or a v3 action.
pub fn event_name(row: impl Display, text: &str) -> StoreResult<EventName> {
    EventName::parse(text)
        .map_err(|e: hookwire_livechat::ValidationError| StoreError::corrupt(row, e))
}

/// A delivery's stored state.
pub fn delivery_state(delivery_id: i64, text: &str) -> StoreResult<DeliveryState> {
    DeliveryState::parse(text).ok_or_else(|| {
        StoreError::corrupt(
            format_args!("delivery {delivery_id}"),
            format_args!("state: unknown delivery state {text:?}"),
        )
    })
}

/// A stored set of data types (their bits).
pub fn data_types(row: impl Display, bits: i64) -> StoreResult<DataTypes> {
    u8::try_from(bits)
        .ok()
        .and_then(DataTypes::try_from_bits)
        .ok_or_else(|| {
            StoreError::corrupt(
                row,
                format_args!("data_types: {bits} is not a set of data types"),
            )
        })
}

/// One stored section of event `event_id`: its text, checked to be JSON.
pub fn section(
    event_id: &str,
    data_type: DataType,
    text: Option<String>,
) -> StoreResult<Option<Box<RawValue>>> {
    text.map(|t| {
        RawValue::from_string(t).map_err(|e| {
            StoreError::corrupt(
                format_args!("event {event_id}"),
                format_args!("{}: not JSON ({e})", data_type.as_str()),
            )
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corrupt<T: std::fmt::Debug>(r: StoreResult<T>) -> String {
        match r {
            Err(StoreError::Corrupt(what)) => what,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    fn webhook_row() -> WebhookRow {
        WebhookRow {
            id: "w1".into(),
            license_id: "l".into(),
            event_type: "chat_changed".into(),
            data_types: DataTypes::of(&[DataType::Chat, DataType::Ticket]).bits() as i64,
            url: "https://user:pw@example.com/hook".into(),
            token: "t".into(),
            enabled: false,
            disabled_reason: Some("410".into()),
            created_at: 5,
            signed: true,
            max_per_second: Some(3),
            ordered: false,
            held_deliveries: 2,
        }
    }

    fn event_row() -> EventRow {
        EventRow {
            unique_id: "e1".into(),
            license_id: "l".into(),
            event_type: "ticket_created".into(),
            sections: [
                Some(r#"{"id":"C1"}"#.into()),
                None,
                None,
                Some(r#"{ "id" : 7 }"#.into()),
            ],
            v3_payload: None,
            v3_extra: None,
        }
    }

    fn delivery_row(state: &str) -> DeliveryRow {
        DeliveryRow {
            id: 42,
            event_id: "e1".into(),
            webhook_id: "w1".into(),
            event_type: "chat_started".into(),
            state: state.into(),
            created_at: 1,
            next_attempt_at: 9,
            order_key: None,
            ordered_when_made: false,
            filtered_by: None,
        }
    }

    #[test]
    fn a_webhook_row_reads_as_stored() {
        let w = webhook_row().into_webhook().unwrap();
        assert_eq!(w.event_type, EventType::ChatChanged);
        assert_eq!(w.data_types.names(), ["chat", "ticket"]);
        assert_eq!(w.url.as_stored(), "https://user:pw@example.com/hook");
        assert_eq!(w.max_per_second, Some(3));
        assert!(w.signed && !w.enabled);
        assert_eq!(w.disabled_reason.as_deref(), Some("410"));
        assert_eq!(w.held_deliveries, 2);
        let unlimited = WebhookRow {
            max_per_second: None,
            ordered: false,
            ..webhook_row()
        };
        assert_eq!(unlimited.into_webhook().unwrap().max_per_second, None);
    }

    #[test]
    fn a_webhook_row_with_an_unreadable_field_is_corrupt_naming_it() {
        let bad = |row: WebhookRow| corrupt(row.into_webhook());
        let msg = bad(WebhookRow {
            event_type: "chat_exploded".into(),
            ..webhook_row()
        });
        assert!(msg.starts_with("webhook w1: event_type:"), "{msg}");
        let msg = bad(WebhookRow {
            url: "not a url".into(),
            ..webhook_row()
        });
        assert!(msg.starts_with("webhook w1: url:"), "{msg}");
        for bits in [300, 16, -1] {
            let msg = bad(WebhookRow {
                data_types: bits,
                ..webhook_row()
            });
            assert!(msg.starts_with("webhook w1: data_types:"), "{bits}: {msg}");
        }
        let msg = bad(WebhookRow {
            max_per_second: Some(-1),
            ordered: false,
            ..webhook_row()
        });
        assert!(msg.starts_with("webhook w1: max_per_second:"), "{msg}");
    }

    #[test]
    fn an_event_row_keeps_its_sections_text() {
        let body = event_row().into_body().unwrap();
        assert_eq!(body.event_type, EventName::V2(EventType::TicketCreated));
        let text = |t: DataType| body.sections[t.index()].as_ref().map(|s| s.get());
        assert_eq!(text(DataType::Chat), Some(r#"{"id":"C1"}"#));
        assert_eq!(text(DataType::Visitor), None);
        assert_eq!(
            text(DataType::Ticket),
            Some(r#"{ "id" : 7 }"#),
            "byte for byte"
        );
    }

    #[test]
    fn an_event_row_with_an_unknown_type_or_a_section_not_json_is_corrupt() {
        let msg = corrupt(
            EventRow {
                event_type: "".into(),
                ..event_row()
            }
            .into_body(),
        );
        assert!(msg.starts_with("event e1: event_type:"), "{msg}");
        let mut row = event_row();
        row.sections[DataType::PreChatSurvey.index()] = Some("{not json".into());
        let msg = corrupt(row.into_body());
        assert!(
            msg.starts_with("event e1: pre_chat_survey: not JSON"),
            "{msg}"
        );
    }

    #[test]
    fn a_delivery_row_shows_when_it_is_due_only_while_pending() {
        let parked = DeliveryRow {
            next_attempt_at: PARKED,
            ..delivery_row("pending")
        };
        // Waiting behind the one before it: no time to show.
        assert_eq!(
            parked.into_view(Vec::new(), None).unwrap().next_attempt_at,
            None
        );
        let pending = delivery_row("pending").into_view(Vec::new(), None).unwrap();
        assert_eq!(pending.state, DeliveryState::Pending);
        assert_eq!(pending.next_attempt_at, Some(9));
        for (text, state) in [
            ("held", DeliveryState::Held),
            ("delivered", DeliveryState::Delivered),
            ("failed", DeliveryState::Failed),
            ("discarded", DeliveryState::Discarded),
        ] {
            let view = delivery_row(text).into_view(Vec::new(), None).unwrap();
            assert_eq!((view.state, view.next_attempt_at), (state, None));
        }
    }

    #[test]
    fn a_delivery_row_with_an_unknown_state_or_event_type_is_corrupt() {
        let msg = corrupt(delivery_row("Pending").into_view(Vec::new(), None));
        assert_eq!(
            msg,
            r#"delivery 42: state: unknown delivery state "Pending""#
        );
        let msg = corrupt(
            DeliveryRow {
                event_type: "chat".into(),
                ..delivery_row("failed")
            }
            .into_view(Vec::new(), None),
        );
        assert!(msg.starts_with("delivery 42: event_type:"), "{msg}");
    }
}
