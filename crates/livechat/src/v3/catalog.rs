//! The v3.x webhook catalog: every action, the API versions that have it,
//! its payload's top-level keys (required or optional), and the filters and
//! additional data a webhook for it may ask for.
//!
//! The payload keys are those of the dataclasses in LiveChat's
//! `lc-sdk-python` (`livechat/webhooks/v35.py` to `v37.py`), whose
//! `parse_webhook` refuses a payload key it does not declare and a declared
//! key without a default that is missing. The three versions declare the same
//! keys for every action they share; 3.5 alone has `incoming_customer`.

use super::{Action, AdditionalData, FilterKind, Version};

/// One top-level key of an action's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadKey {
    pub name: &'static str,
    pub required: bool,
}

const fn req(name: &'static str) -> PayloadKey {
    PayloadKey {
        name,
        required: true,
    }
}

/// A payload-key table as a constant (a `const fn` call is not promoted
/// to a `'static` borrow by itself).
macro_rules! keys {
    ($($k:expr),* $(,)?) => {{
        const KEYS: &[PayloadKey] = &[$($k),*];
        KEYS
    }};
}

const fn opt(name: &'static str) -> PayloadKey {
    PayloadKey {
        name,
        required: false,
    }
}

impl Action {
    /// Every action of every version, in the documentation's order.
    pub const ALL: [Action; 39] = [
        Action::IncomingChat,
        Action::ChatDeactivated,
        Action::ChatAccessUpdated,
        Action::ChatTransferred,
        Action::UserAddedToChat,
        Action::UserRemovedFromChat,
        Action::IncomingEvent,
        Action::EventUpdated,
        Action::IncomingRichMessagePostback,
        Action::ChatPropertiesUpdated,
        Action::ChatPropertiesDeleted,
        Action::ThreadPropertiesUpdated,
        Action::ThreadPropertiesDeleted,
        Action::EventPropertiesUpdated,
        Action::EventPropertiesDeleted,
        Action::ThreadTagged,
        Action::ThreadUntagged,
        Action::RoutingStatusSet,
        Action::IncomingCustomer,
        Action::CustomerSessionFieldsUpdated,
        Action::AgentCreated,
        Action::AgentApproved,
        Action::AgentUpdated,
        Action::AgentSuspended,
        Action::AgentUnsuspended,
        Action::AgentDeleted,
        Action::AutoAccessAdded,
        Action::AutoAccessUpdated,
        Action::AutoAccessDeleted,
        Action::BotCreated,
        Action::BotUpdated,
        Action::BotDeleted,
        Action::GroupCreated,
        Action::GroupDeleted,
        Action::GroupUpdated,
        Action::TagCreated,
        Action::TagDeleted,
        Action::TagUpdated,
        Action::EventsMarkedAsSeen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::IncomingChat => "incoming_chat",
            Action::ChatDeactivated => "chat_deactivated",
            Action::ChatAccessUpdated => "chat_access_updated",
            Action::ChatTransferred => "chat_transferred",
            Action::UserAddedToChat => "user_added_to_chat",
            Action::UserRemovedFromChat => "user_removed_from_chat",
            Action::IncomingEvent => "incoming_event",
            Action::EventUpdated => "event_updated",
            Action::IncomingRichMessagePostback => "incoming_rich_message_postback",
            Action::ChatPropertiesUpdated => "chat_properties_updated",
            Action::ChatPropertiesDeleted => "chat_properties_deleted",
            Action::ThreadPropertiesUpdated => "thread_properties_updated",
            Action::ThreadPropertiesDeleted => "thread_properties_deleted",
            Action::EventPropertiesUpdated => "event_properties_updated",
            Action::EventPropertiesDeleted => "event_properties_deleted",
            Action::ThreadTagged => "thread_tagged",
            Action::ThreadUntagged => "thread_untagged",
            Action::RoutingStatusSet => "routing_status_set",
            Action::IncomingCustomer => "incoming_customer",
            Action::CustomerSessionFieldsUpdated => "customer_session_fields_updated",
            Action::AgentCreated => "agent_created",
            Action::AgentApproved => "agent_approved",
            Action::AgentUpdated => "agent_updated",
            Action::AgentSuspended => "agent_suspended",
            Action::AgentUnsuspended => "agent_unsuspended",
            Action::AgentDeleted => "agent_deleted",
            Action::AutoAccessAdded => "auto_access_added",
            Action::AutoAccessUpdated => "auto_access_updated",
            Action::AutoAccessDeleted => "auto_access_deleted",
            Action::BotCreated => "bot_created",
            Action::BotUpdated => "bot_updated",
            Action::BotDeleted => "bot_deleted",
            Action::GroupCreated => "group_created",
            Action::GroupDeleted => "group_deleted",
            Action::GroupUpdated => "group_updated",
            Action::TagCreated => "tag_created",
            Action::TagDeleted => "tag_deleted",
            Action::TagUpdated => "tag_updated",
            Action::EventsMarkedAsSeen => "events_marked_as_seen",
        }
    }

    /// Whether `version` has this action: all do but `incoming_customer`,
    /// which only 3.5 has.
    pub fn in_version(self, version: Version) -> bool {
        self != Action::IncomingCustomer || version == Version::V3_5
    }

    /// The payload's top-level keys, required ones first.
    pub fn payload_keys(self) -> &'static [PayloadKey] {
        use Action::*;
        match self {
            IncomingChat => keys![req("chat"), opt("transferred_from")],
            ChatDeactivated => keys![req("chat_id"), req("thread_id"), opt("user_id")],
            ChatAccessUpdated => keys![req("id"), req("access")],
            ChatTransferred => keys![
                req("chat_id"),
                req("reason"),
                req("transferred_to"),
                opt("thread_id"),
                opt("requester_id"),
                opt("queue"),
            ],
            UserAddedToChat => keys![
                req("chat_id"),
                req("reason"),
                req("requester_id"),
                opt("thread_id"),
                opt("user_type"),
                opt("user"),
            ],
            UserRemovedFromChat => keys![
                req("chat_id"),
                req("user_id"),
                req("reason"),
                req("requester_id"),
                opt("thread_id"),
                opt("user_type"),
            ],
            IncomingEvent => keys![req("chat_id"), req("thread_id"), opt("event")],
            EventUpdated => keys![req("chat_id"), req("thread_id"), req("event")],
            IncomingRichMessagePostback => keys![
                req("user_id"),
                req("chat_id"),
                req("thread_id"),
                req("event_id"),
                req("postback"),
            ],
            ChatPropertiesUpdated | ChatPropertiesDeleted => {
                keys![req("chat_id"), req("properties")]
            }
            ThreadPropertiesUpdated | ThreadPropertiesDeleted => {
                keys![req("chat_id"), req("thread_id"), req("properties")]
            }
            EventPropertiesUpdated | EventPropertiesDeleted => keys![
                req("chat_id"),
                req("thread_id"),
                req("event_id"),
                req("properties"),
            ],
            ThreadTagged | ThreadUntagged => keys![req("chat_id"), req("thread_id"), req("tag")],
            RoutingStatusSet => keys![req("agent_id"), req("status")],
            IncomingCustomer => keys![req("customer")],
            CustomerSessionFieldsUpdated => {
                keys![req("id"), req("session_fields"), opt("active_chat")]
            }
            AgentCreated => keys![
                req("id"),
                req("name"),
                req("awaiting_approval"),
                opt("role"),
                opt("avatar"),
                opt("job_title"),
                opt("mobile"),
                opt("max_chats_count"),
                opt("groups"),
                opt("notifications"),
                opt("email_subscriptions"),
                opt("work_scheduler"),
            ],
            AgentUpdated => keys![
                req("id"),
                opt("name"),
                opt("role"),
                opt("avatar"),
                opt("job_title"),
                opt("mobile"),
                opt("max_chats_count"),
                opt("groups"),
                opt("notifications"),
                opt("email_subscriptions"),
                opt("work_scheduler"),
            ],
            AgentApproved | AgentSuspended | AgentUnsuspended | AgentDeleted
            | AutoAccessDeleted | BotDeleted | GroupDeleted => keys![req("id")],
            AutoAccessAdded => keys![
                req("id"),
                req("description"),
                req("access"),
                req("conditions"),
                opt("next_id"),
            ],
            AutoAccessUpdated => keys![
                req("id"),
                opt("description"),
                opt("access"),
                opt("conditions"),
                opt("next_id"),
            ],
            BotCreated => keys![
                req("id"),
                req("name"),
                req("default_group_priority"),
                req("owner_client_id"),
                opt("avatar"),
                opt("max_chats_count"),
                opt("groups"),
                opt("work_scheduler"),
                opt("timezone"),
                opt("job_title"),
            ],
            BotUpdated => keys![
                req("id"),
                opt("name"),
                opt("avatar"),
                opt("max_chats_count"),
                opt("default_group_priority"),
                opt("groups"),
                opt("work_scheduler"),
                opt("timezone"),
                opt("job_title"),
            ],
            GroupCreated => keys![
                req("id"),
                req("name"),
                req("language_code"),
                req("agent_priorities"),
            ],
            GroupUpdated => keys![
                req("id"),
                opt("name"),
                opt("language_code"),
                opt("agent_priorities"),
            ],
            TagCreated => keys![
                req("name"),
                req("author_id"),
                req("created_at"),
                req("group_ids"),
            ],
            TagDeleted => keys![req("name")],
            TagUpdated => keys![
                req("name"),
                req("group_ids"),
                opt("author_id"),
                opt("created_at"),
            ],
            EventsMarkedAsSeen => keys![req("user_id"), req("chat_id"), req("seen_up_to")],
        }
    }

    /// Whether the action is about a chat: such events may carry the chat's
    /// presence and properties in their context.
    pub fn is_about_a_chat(self) -> bool {
        use Action::*;
        matches!(
            self,
            IncomingChat
                | ChatDeactivated
                | ChatAccessUpdated
                | ChatTransferred
                | UserAddedToChat
                | UserRemovedFromChat
                | IncomingEvent
                | EventUpdated
                | IncomingRichMessagePostback
                | ChatPropertiesUpdated
                | ChatPropertiesDeleted
                | ThreadPropertiesUpdated
                | ThreadPropertiesDeleted
                | EventPropertiesUpdated
                | EventPropertiesDeleted
                | ThreadTagged
                | ThreadUntagged
                | EventsMarkedAsSeen
        )
    }

    /// The filters a webhook for this action may set (the Configuration
    /// API's table of triggering actions): every action takes
    /// `source_type`; chat actions `chat_presence` and `only_my_chats`;
    /// events also `author_type`; `routing_status_set` `agent_ids`;
    /// `customer_session_fields_updated` `chat_presence`.
    pub fn filters(self) -> &'static [FilterKind] {
        use FilterKind::*;
        match self {
            Action::IncomingEvent | Action::EventUpdated => {
                &[ChatPresence, AuthorType, OnlyMyChats, SourceType]
            }
            Action::RoutingStatusSet => &[AgentIds, SourceType],
            Action::CustomerSessionFieldsUpdated => &[ChatPresence, SourceType],
            a if a.is_about_a_chat() => &[ChatPresence, OnlyMyChats, SourceType],
            _ => &[SourceType],
        }
    }

    /// The additional data a webhook for this action may ask for: both kinds
    /// for every action but `agent_deleted` and `incoming_customer`.
    pub fn additional_data(self) -> &'static [AdditionalData] {
        match self {
            Action::AgentDeleted | Action::IncomingCustomer => &[],
            _ => &[
                AdditionalData::ChatProperties,
                AdditionalData::ChatPresenceUserIds,
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_catalog_has_38_actions_in_3_6_and_3_7_and_39_in_3_5() {
        for (version, count) in [
            (Version::V3_5, 39),
            (Version::V3_6, 38),
            (Version::V3_7, 38),
        ] {
            assert_eq!(version.actions().count(), count, "{version}");
        }
        let names: HashSet<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), Action::ALL.len());
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
            let keys = a.payload_keys();
            let unique: HashSet<_> = keys.iter().map(|k| k.name).collect();
            assert_eq!(unique.len(), keys.len(), "{a}");
            // Required keys come first, as in the SDK's dataclasses.
            let first_optional = keys.iter().position(|k| !k.required).unwrap_or(keys.len());
            assert!(keys[first_optional..].iter().all(|k| !k.required), "{a}");
            assert!(a.filters().contains(&FilterKind::SourceType), "{a}");
        }
    }

    #[test]
    fn filters_follow_the_documented_table() {
        assert!(Action::IncomingEvent
            .filters()
            .contains(&FilterKind::AuthorType));
        assert!(!Action::IncomingChat
            .filters()
            .contains(&FilterKind::AuthorType));
        assert_eq!(
            Action::RoutingStatusSet.filters(),
            &[FilterKind::AgentIds, FilterKind::SourceType]
        );
        assert_eq!(Action::TagCreated.filters(), &[FilterKind::SourceType]);
        assert!(Action::AgentDeleted.additional_data().is_empty());
    }
}
