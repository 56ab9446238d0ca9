//! Event types, data types, and the table of which data types each event supports.

use crate::ValidationError;
use std::fmt;
use std::str::FromStr;

/// An event a webhook can be configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    ChatStarted,
    ChatEnded,
    VisitorQueued,
    ChatChanged,
    TicketCreated,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::ChatStarted,
        EventType::ChatEnded,
        EventType::VisitorQueued,
        EventType::ChatChanged,
        EventType::TicketCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ChatStarted => "chat_started",
            EventType::ChatEnded => "chat_ended",
            EventType::VisitorQueued => "visitor_queued",
            EventType::ChatChanged => "chat_changed",
            EventType::TicketCreated => "ticket_created",
        }
    }

    /// The documentation's table: the data types a webhook for this event may ask for.
    pub fn supported(self) -> DataTypes {
        use DataType::*;
        match self {
            EventType::VisitorQueued => DataTypes::of(&[Visitor]),
            EventType::ChatStarted | EventType::ChatEnded => {
                DataTypes::of(&[Chat, Visitor, PreChatSurvey])
            }
            EventType::ChatChanged => DataTypes::of(&[Chat, Visitor]),
            EventType::TicketCreated => DataTypes::of(&[Ticket]),
        }
    }

    /// The data an incoming platform event of this type must carry. Every
    /// supported type is required except the pre-chat survey, which defaults
    /// to `[]` (the documented value when the visitor skipped it).
    pub fn required(self) -> DataTypes {
        let mut required = self.supported();
        required.remove(DataType::PreChatSurvey);
        required
    }

    /// Whether this event's chat tags feed the `chat_changed` rule.
    pub fn tracks_chat_tags(self) -> bool {
        matches!(
            self,
            EventType::ChatStarted | EventType::ChatEnded | EventType::ChatChanged
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "event_type",
                    format!(
                        "unknown event type {s:?}; expected one of chat_started, chat_ended, visitor_queued, chat_changed, ticket_created"
                    ),
                )
            })
    }
}

/// A piece of data a webhook can carry besides `event_type`, `token` and `license_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Chat,
    Visitor,
    PreChatSurvey,
    Ticket,
}

impl DataType {
    /// In the order they appear in a payload.
    pub const ALL: [DataType; 4] = [
        DataType::Chat,
        DataType::Visitor,
        DataType::PreChatSurvey,
        DataType::Ticket,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Chat => "chat",
            DataType::Visitor => "visitor",
            DataType::PreChatSurvey => "pre_chat_survey",
            DataType::Ticket => "ticket",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DataType::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown data type {s:?}; expected chat, visitor, pre_chat_survey or ticket"
                )
            })
    }
}

/// A set of data types, stored as a bit mask so it fits one database column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DataTypes(u8);

impl DataTypes {
    pub fn of(types: &[DataType]) -> Self {
        let mut set = DataTypes::default();
        for t in types {
            set.insert(*t);
        }
        set
    }

    pub fn from_bits(bits: u8) -> Self {
        DataTypes(bits & 0b1111)
    }

    /// The set `bits` names, or `None` when it has a bit no data type has
    /// (a stored value that was not written by [`DataTypes::bits`]).
    pub fn try_from_bits(bits: u8) -> Option<Self> {
        (bits & !0b1111 == 0).then_some(DataTypes(bits))
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn insert(&mut self, t: DataType) {
        self.0 |= t.bit();
    }

    pub fn remove(&mut self, t: DataType) {
        self.0 &= !t.bit();
    }

    pub fn contains(self, t: DataType) -> bool {
        self.0 & t.bit() != 0
    }

    pub fn is_subset_of(self, other: DataTypes) -> bool {
        self.0 & !other.0 == 0
    }

    /// The members in payload order.
    pub fn iter(self) -> impl Iterator<Item = DataType> {
        DataType::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(DataType::as_str).collect()
    }

    /// Parses a webhook's requested data types and checks them against the
    /// table for `event`. Duplicates are folded; order does not matter.
    pub fn parse_for<S: AsRef<str>>(
        event: EventType,
        names: &[S],
    ) -> Result<Self, ValidationError> {
        let mut set = DataTypes::default();
        for name in names {
            let name = name.as_ref();
            let t: DataType = name
                .parse()
                .map_err(|msg| ValidationError::new("data_types", msg))?;
            if !event.supported().contains(t) {
                return Err(ValidationError::new(
                    "data_types",
                    format!(
                        "{event} does not support data type {t}; it supports: {}",
                        event.supported().names().join(", ")
                    ),
                ));
            }
            set.insert(t);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_documentation() {
        assert_eq!(EventType::VisitorQueued.supported().names(), ["visitor"]);
        assert_eq!(
            EventType::ChatStarted.supported().names(),
            ["chat", "visitor", "pre_chat_survey"]
        );
        assert_eq!(
            EventType::ChatChanged.supported().names(),
            ["chat", "visitor"]
        );
        assert_eq!(EventType::TicketCreated.supported().names(), ["ticket"]);
    }

    #[test]
    fn data_types_are_checked_against_the_event() {
        let err = DataTypes::parse_for(EventType::VisitorQueued, &["chat"]).unwrap_err();
        assert_eq!(err.field, "data_types");
        assert!(
            DataTypes::parse_for(EventType::ChatEnded, &["pre_chat_survey", "chat", "chat"])
                .is_ok()
        );
        assert!(DataTypes::parse_for(EventType::ChatEnded, &["nope"]).is_err());
    }
}
