//! Filters a v3 webhook sets at registration, and the context of an event
//! they are evaluated on.
//!
//! LiveChat decides filters on what it knows of a chat; hookwire knows only
//! what the platform tells it, so an event carries a `context` beside its
//! payload (never sent on): who wrote it, which application's client caused
//! it, who is in the chat and the chat's properties. A filter that needs a
//! part of the context the event lacks excludes the event: hookwire never
//! guesses that a webhook wanted it. All filters a webhook sets must admit
//! an event for it to be delivered.

use super::{Action, FilterKind};
use crate::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// `filters.author_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorType {
    Customer,
    Agent,
}

/// One value of `filters.source_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceType {
    MyClient,
    OtherClients,
    System,
}

/// `filters.chat_presence.user_ids`: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserIds {
    Values(Vec<String>),
    ExcludeValues(Vec<String>),
}

/// `filters.chat_presence`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChatPresence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ids: Option<UserIds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_bots: Option<bool>,
}

/// A webhook's filters, as registered. Serialized, it is the `filters`
/// object `list_webhooks` answers (and what the store keeps).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_type: Option<AuthorType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_my_chats: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_presence: Option<ChatPresence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<Vec<SourceType>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_ids: Option<Vec<String>>,
}

/// A bot in a chat and the application (Client ID) that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresentBot {
    pub id: String,
    pub owner_client_id: String,
}

/// `context.chat_presence`: the users in the chat when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    /// Agents' and customers' ids (and bots', if the platform lists them here too).
    #[serde(default)]
    pub user_ids: Vec<String>,
    #[serde(default)]
    pub bots: Vec<PresentBot>,
}

impl Presence {
    /// Every present user's id, bots included, each once, in the order given.
    pub fn all_user_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::with_capacity(self.user_ids.len() + self.bots.len());
        for id in self
            .user_ids
            .iter()
            .map(String::as_str)
            .chain(self.bots.iter().map(|b| b.id.as_str()))
        {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

/// What the platform says about an event besides its payload: hookwire
/// evaluates filters and fills `additional_data` from it, and never sends
/// it on.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// The type of the event's author (`incoming_event`, `event_updated`).
    #[serde(default)]
    pub author_type: Option<AuthorType>,
    /// The Client ID of the application whose client caused the event;
    /// absent or null when the system did.
    #[serde(default)]
    pub source_client_id: Option<String>,
    /// Who was in the chat.
    #[serde(default)]
    pub chat_presence: Option<Presence>,
    /// The chat's properties (`{"<namespace>": {"<name>": value}}`).
    #[serde(default)]
    pub chat_properties: Option<Box<RawValue>>,
}

impl Context {
    /// Parses `context`, naming the key that is wrong.
    pub fn from_json(raw: &RawValue) -> Result<Self, ValidationError> {
        let fields: Map<String, Value> = serde_json::from_str(raw.get())
            .map_err(|_| ValidationError::new("context", "must be a JSON object"))?;
        const KEYS: [&str; 4] = [
            "author_type",
            "source_client_id",
            "chat_presence",
            "chat_properties",
        ];
        if let Some(k) = fields.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(ValidationError::new(
                format!("context.{k}"),
                format!("unknown key; a context has {}", KEYS.join(", ")),
            ));
        }
        if let Some(p) = fields.get("chat_properties") {
            if !p.is_object() && !p.is_null() {
                return Err(ValidationError::new(
                    "context.chat_properties",
                    "must be an object",
                ));
            }
        }
        serde_json::from_str(raw.get()).map_err(|e| {
            let key = KEYS
                .iter()
                .find(|k| e.to_string().contains(*k))
                .map(|k| format!("context.{k}"))
                .unwrap_or_else(|| "context".to_string());
            ValidationError::new(key, e.to_string())
        })
    }

    /// The chat's `source.client_id` property (what `only_my_chats` compares).
    pub fn chat_source_client_id(&self) -> Option<String> {
        let props: Value = serde_json::from_str(self.chat_properties.as_ref()?.get()).ok()?;
        props
            .get("source")?
            .get("client_id")?
            .as_str()
            .map(str::to_string)
    }

    /// Whether a bot owned by `client_id` was in the chat.
    pub fn has_bot_of(&self, client_id: &str) -> bool {
        self.chat_presence
            .as_ref()
            .is_some_and(|p| p.bots.iter().any(|b| b.owner_client_id == client_id))
    }
}

/// Why a filter kept an event from a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    pub filter: &'static str,
    pub reason: String,
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.filter, self.reason)
    }
}

fn excluded(filter: FilterKind, reason: impl Into<String>) -> Result<(), Exclusion> {
    Err(Exclusion {
        filter: filter.as_str(),
        reason: reason.into(),
    })
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// Parses and checks `filters` of a registration for `action`, naming
    /// the field that is wrong (`filters.chat_presence.user_ids`).
    pub fn parse(action: Action, value: &Value) -> Result<Filters, ValidationError> {
        let obj = value
            .as_object()
            .ok_or_else(|| ValidationError::new("filters", "must be an object"))?;
        let mut filters = Filters::default();
        for (key, v) in obj {
            let field = format!("filters.{key}");
            let kind = [
                FilterKind::AuthorType,
                FilterKind::OnlyMyChats,
                FilterKind::ChatPresence,
                FilterKind::SourceType,
                FilterKind::AgentIds,
            ]
            .into_iter()
            .find(|k| k.as_str() == key)
            .ok_or_else(|| {
                ValidationError::new(
                    &field,
                    "unknown filter; the filters are author_type, only_my_chats, chat_presence, source_type and agent_ids",
                )
            })?;
            if !action.filters().contains(&kind) {
                let supported: Vec<_> = action.filters().iter().map(|k| k.as_str()).collect();
                return Err(ValidationError::new(
                    &field,
                    format!(
                        "{action} does not support the {key} filter; it supports: {}",
                        supported.join(", ")
                    ),
                ));
            }
            match kind {
                FilterKind::AuthorType => {
                    filters.author_type = Some(serde_json::from_value(v.clone()).map_err(|_| {
                        ValidationError::new(&field, "must be \"customer\" or \"agent\"")
                    })?)
                }
                FilterKind::OnlyMyChats => {
                    filters.only_my_chats = Some(
                        v.as_bool()
                            .ok_or_else(|| ValidationError::new(&field, "must be true or false"))?,
                    )
                }
                FilterKind::ChatPresence => filters.chat_presence = Some(chat_presence(v)?),
                FilterKind::SourceType => {
                    let types: Vec<SourceType> =
                        serde_json::from_value(v.clone()).map_err(|_| {
                            ValidationError::new(
                                &field,
                                "must be a list of \"my_client\", \"other_clients\" and \"system\"",
                            )
                        })?;
                    if types.is_empty() {
                        return Err(ValidationError::new(&field, "must name a source type"));
                    }
                    filters.source_type = Some(types);
                }
                FilterKind::AgentIds => {
                    filters.agent_ids = Some(strings(&field, v)?);
                }
            }
        }
        Ok(filters)
    }

    /// Whether the filters admit an event of `action` with `context`, for a
    /// webhook owned by `owner_client_id`; `agent_id` is the payload's, for
    /// `agent_ids`.
    pub fn admits(
        &self,
        context: &Context,
        agent_id: Option<&str>,
        owner_client_id: &str,
    ) -> Result<(), Exclusion> {
        if let Some(want) = self.author_type {
            match context.author_type {
                Some(got) if got == want => {}
                Some(_) => {
                    return excluded(FilterKind::AuthorType, "the author is of another type")
                }
                None => {
                    return excluded(FilterKind::AuthorType, "the context names no author_type")
                }
            }
        }
        if self.only_my_chats == Some(true) {
            match context.chat_source_client_id() {
                Some(id) if id == owner_client_id => {}
                Some(_) => {
                    return excluded(
                        FilterKind::OnlyMyChats,
                        "the chat comes from another client",
                    )
                }
                None => {
                    return excluded(
                        FilterKind::OnlyMyChats,
                        "the context's chat_properties have no source.client_id",
                    )
                }
            }
        }
        if let Some(presence) = &self.chat_presence {
            let Some(present) = &context.chat_presence else {
                return excluded(FilterKind::ChatPresence, "the context has no chat_presence");
            };
            let ids = present.all_user_ids();
            match &presence.user_ids {
                Some(UserIds::Values(values))
                    if !values.iter().any(|v| ids.contains(&v.as_str())) =>
                {
                    return excluded(
                        FilterKind::ChatPresence,
                        "none of user_ids.values is in the chat",
                    )
                }
                Some(UserIds::ExcludeValues(values))
                    if values.iter().any(|v| ids.contains(&v.as_str())) =>
                {
                    return excluded(
                        FilterKind::ChatPresence,
                        "a user of user_ids.exclude_values is in the chat",
                    )
                }
                _ => {}
            }
            if presence.my_bots == Some(true) && !context.has_bot_of(owner_client_id) {
                return excluded(FilterKind::ChatPresence, "none of my bots is in the chat");
            }
        }
        if let Some(types) = &self.source_type {
            let source = match context.source_client_id.as_deref() {
                None => SourceType::System,
                Some(id) if id == owner_client_id => SourceType::MyClient,
                Some(_) => SourceType::OtherClients,
            };
            if !types.contains(&source) {
                return excluded(
                    FilterKind::SourceType,
                    format!("the source is {}", serde_json::json!(source)),
                );
            }
        }
        if let Some(agents) = &self.agent_ids {
            if !agent_id.is_some_and(|a| agents.iter().any(|x| x == a)) {
                return excluded(FilterKind::AgentIds, "the agent is not one of agent_ids");
            }
        }
        Ok(())
    }
}

fn strings(field: &str, v: &Value) -> Result<Vec<String>, ValidationError> {
    let list: Vec<String> = serde_json::from_value(v.clone())
        .map_err(|_| ValidationError::new(field, "must be a list of strings"))?;
    if list.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    Ok(list)
}

fn chat_presence(v: &Value) -> Result<ChatPresence, ValidationError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ValidationError::new("filters.chat_presence", "must be an object"))?;
    let mut presence = ChatPresence::default();
    for (key, v) in obj {
        let field = format!("filters.chat_presence.{key}");
        match key.as_str() {
            "my_bots" => {
                presence.my_bots = Some(
                    v.as_bool()
                        .ok_or_else(|| ValidationError::new(&field, "must be true or false"))?,
                )
            }
            "user_ids" => {
                let ids = v
                    .as_object()
                    .ok_or_else(|| ValidationError::new(&field, "must be an object"))?;
                if ids.len() != 1 {
                    return Err(ValidationError::new(
                        &field,
                        "must have exactly one of values and exclude_values",
                    ));
                }
                let (k, list) = ids.iter().next().expect("one key");
                let inner = format!("{field}.{k}");
                presence.user_ids = Some(match k.as_str() {
                    "values" => UserIds::Values(strings(&inner, list)?),
                    "exclude_values" => UserIds::ExcludeValues(strings(&inner, list)?),
                    _ => {
                        return Err(ValidationError::new(
                            &inner,
                            "unknown key; user_ids has values or exclude_values",
                        ))
                    }
                });
            }
            _ => {
                return Err(ValidationError::new(
                    &field,
                    "unknown key; chat_presence has user_ids and my_bots",
                ))
            }
        }
    }
    Ok(presence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(v: Value) -> Context {
        let raw = serde_json::value::to_raw_value(&v).unwrap();
        Context::from_json(&raw).unwrap()
    }

    #[test]
    fn filters_are_checked_against_the_action_and_name_the_field() {
        let err =
            Filters::parse(Action::IncomingChat, &json!({"author_type": "agent"})).unwrap_err();
        assert_eq!(err.field, "filters.author_type");
        assert!(
            err.message.contains("incoming_chat does not support"),
            "{err}"
        );
        let err =
            Filters::parse(Action::IncomingEvent, &json!({"author_type": "bot"})).unwrap_err();
        assert_eq!(err.field, "filters.author_type");
        let err = Filters::parse(
            Action::IncomingChat,
            &json!({"chat_presence": {"user_ids": {"values": ["a"], "exclude_values": ["b"]}}}),
        )
        .unwrap_err();
        assert_eq!(err.field, "filters.chat_presence.user_ids");
        let err = Filters::parse(Action::IncomingChat, &json!({"colour": 1})).unwrap_err();
        assert_eq!(err.field, "filters.colour");
        let f = Filters::parse(
            Action::IncomingEvent,
            &json!({"author_type": "customer", "source_type": ["my_client", "system"],
                    "chat_presence": {"user_ids": {"exclude_values": ["x"]}, "my_bots": true}}),
        )
        .unwrap();
        let back: Filters = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert_eq!(
            serde_json::to_value(&f).unwrap()["chat_presence"],
            json!({"user_ids": {"exclude_values": ["x"]}, "my_bots": true})
        );
    }

    #[test]
    fn every_filter_decides_on_the_context() {
        let ctx = context(json!({
            "author_type": "customer",
            "source_client_id": "app-1",
            "chat_presence": {"user_ids": ["agent@x", "cust-1"],
                              "bots": [{"id": "bot-9", "owner_client_id": "app-1"}]},
            "chat_properties": {"source": {"client_id": "app-1"}}
        }));
        let admits = |f: Value, owner: &str| {
            Filters::parse(Action::IncomingEvent, &f)
                .unwrap()
                .admits(&ctx, None, owner)
        };
        assert!(admits(json!({"author_type": "customer"}), "app-1").is_ok());
        assert!(admits(json!({"author_type": "agent"}), "app-1").is_err());
        assert!(admits(json!({"only_my_chats": true}), "app-1").is_ok());
        assert!(admits(json!({"only_my_chats": true}), "app-2").is_err());
        assert!(admits(json!({"source_type": ["my_client"]}), "app-1").is_ok());
        assert!(admits(json!({"source_type": ["my_client"]}), "app-2").is_err());
        assert!(admits(json!({"source_type": ["other_clients"]}), "app-2").is_ok());
        assert!(admits(
            json!({"chat_presence": {"user_ids": {"values": ["bot-9"]}}}),
            "x"
        )
        .is_ok());
        assert!(admits(
            json!({"chat_presence": {"user_ids": {"values": ["nobody"]}}}),
            "x"
        )
        .is_err());
        assert!(admits(
            json!({"chat_presence": {"user_ids": {"exclude_values": ["cust-1"]}}}),
            "x"
        )
        .is_err());
        assert!(admits(json!({"chat_presence": {"my_bots": true}}), "app-1").is_ok());
        let err = admits(json!({"chat_presence": {"my_bots": true}}), "app-2").unwrap_err();
        assert_eq!(err.filter, "chat_presence");

        let empty = Context::default();
        let f = Filters::parse(Action::IncomingEvent, &json!({"author_type": "agent"})).unwrap();
        assert!(f.admits(&empty, None, "x").is_err(), "no context, no guess");
        let f = Filters::parse(Action::TagCreated, &json!({"source_type": ["system"]})).unwrap();
        assert!(f.admits(&empty, None, "x").is_ok());
        let f = Filters::parse(Action::RoutingStatusSet, &json!({"agent_ids": ["a@x"]})).unwrap();
        assert!(f.admits(&empty, Some("a@x"), "x").is_ok());
        assert!(f.admits(&empty, Some("b@x"), "x").is_err());
    }

    #[test]
    fn the_context_refuses_unknown_keys_by_name() {
        let raw = serde_json::value::to_raw_value(&json!({"author": "x"})).unwrap();
        assert_eq!(
            Context::from_json(&raw).unwrap_err().field,
            "context.author"
        );
        let raw = serde_json::value::to_raw_value(&json!({"chat_properties": [1]})).unwrap();
        assert_eq!(
            Context::from_json(&raw).unwrap_err().field,
            "context.chat_properties"
        );
    }
}
