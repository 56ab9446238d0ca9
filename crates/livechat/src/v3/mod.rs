//! LiveChat's v3.x webhooks (API versions 3.5, 3.6 and 3.7), beside v2.
//!
//! What the Configuration API's webhook methods and a v3 receiver agree on:
//! the versions and their catalog of actions (`catalog`), a registration and
//! its checks (`register`), filters and the context they are evaluated on
//! (`filters`), an incoming v3 event (`event`) and the six-key body every
//! delivery of one has (`envelope`). Like the v2 modules, no I/O.

pub mod catalog;
pub mod envelope;
pub mod event;
pub mod filters;
pub mod register;
pub mod sample;

pub use catalog::PayloadKey;
pub use envelope::{render_envelope, EnvelopeParts};
pub use event::V3Event;
pub use filters::Context;
pub use filters::{Exclusion, Filters};
pub use register::{Registration, WebhookKind};

use crate::ValidationError;
use std::fmt;
use std::str::FromStr;

/// A v3.x API version hookwire speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    V3_5,
    V3_6,
    V3_7,
}

impl Version {
    pub const ALL: [Version; 3] = [Version::V3_5, Version::V3_6, Version::V3_7];
    /// What `list_webhook_names` answers when no `version` is given:
    /// LiveChat's stable version, as the SDK's `CONFIG["stable"]` says.
    pub const STABLE: Version = Version::V3_6;

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V3_5 => "3.5",
            Version::V3_6 => "3.6",
            Version::V3_7 => "3.7",
        }
    }

    /// The actions of this version's catalog.
    pub fn actions(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| a.in_version(self))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Version {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "version",
                    format!("unsupported version {s:?}; hookwire speaks 3.5, 3.6 and 3.7"),
                )
            })
    }
}

/// A v3 webhook action (what happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    IncomingChat,
    ChatDeactivated,
    ChatAccessUpdated,
    ChatTransferred,
    UserAddedToChat,
    UserRemovedFromChat,
    IncomingEvent,
    EventUpdated,
    IncomingRichMessagePostback,
    ChatPropertiesUpdated,
    ChatPropertiesDeleted,
    ThreadPropertiesUpdated,
    ThreadPropertiesDeleted,
    EventPropertiesUpdated,
    EventPropertiesDeleted,
    ThreadTagged,
    ThreadUntagged,
    RoutingStatusSet,
    IncomingCustomer,
    CustomerSessionFieldsUpdated,
    AgentCreated,
    AgentApproved,
    AgentUpdated,
    AgentSuspended,
    AgentUnsuspended,
    AgentDeleted,
    AutoAccessAdded,
    AutoAccessUpdated,
    AutoAccessDeleted,
    BotCreated,
    BotUpdated,
    BotDeleted,
    GroupCreated,
    GroupDeleted,
    GroupUpdated,
    TagCreated,
    TagDeleted,
    TagUpdated,
    EventsMarkedAsSeen,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "action",
                    format!("unknown action {s:?}; list_webhook_names lists the actions"),
                )
            })
    }
}

/// A filter a webhook may set (`filters.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterKind {
    AuthorType,
    OnlyMyChats,
    ChatPresence,
    SourceType,
    AgentIds,
}

impl FilterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterKind::AuthorType => "author_type",
            FilterKind::OnlyMyChats => "only_my_chats",
            FilterKind::ChatPresence => "chat_presence",
            FilterKind::SourceType => "source_type",
            FilterKind::AgentIds => "agent_ids",
        }
    }
}

/// Additional data a webhook may ask for (`additional_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdditionalData {
    ChatProperties,
    ChatPresenceUserIds,
}

impl AdditionalData {
    pub const ALL: [AdditionalData; 2] = [
        AdditionalData::ChatProperties,
        AdditionalData::ChatPresenceUserIds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AdditionalData::ChatProperties => "chat_properties",
            AdditionalData::ChatPresenceUserIds => "chat_presence_user_ids",
        }
    }

    fn bit(self) -> u8 {
        match self {
            AdditionalData::ChatProperties => 1,
            AdditionalData::ChatPresenceUserIds => 2,
        }
    }
}

/// The additional data a webhook asked for, as a small bit set (stored in
/// the `data_types` column of a v3 webhook and of its deliveries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AdditionalDataSet(u8);

impl AdditionalDataSet {
    pub fn from_bits(bits: u8) -> Self {
        AdditionalDataSet(bits & 3)
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn insert(&mut self, d: AdditionalData) {
        self.0 |= d.bit();
    }

    pub fn contains(self, d: AdditionalData) -> bool {
        self.0 & d.bit() != 0
    }

    /// The names, in the documentation's order.
    pub fn names(self) -> Vec<&'static str> {
        AdditionalData::ALL
            .into_iter()
            .filter(|d| self.contains(*d))
            .map(AdditionalData::as_str)
            .collect()
    }
}
