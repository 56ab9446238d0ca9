//! Realistic sample payloads of every v3 action, with or without their
//! optional keys: what the tests and tools send through hookwire.

use super::Action;
use serde_json::{json, Map, Value};

/// A plausible value for a payload key (objects, lists, numbers and flags
/// where LiveChat's payloads have them).
fn value(action: Action, key: &str) -> Value {
    match key {
        "chat" | "active_chat" => json!({
            "id": "PJ0MRSHTDG",
            "users": [{"id": "smith@example.com", "type": "agent"},
                      {"id": "b7eff798-f8df-4364-8059-649c35c9ed0c", "type": "customer"}],
            "thread": {"id": "K600PKZON8", "active": true, "events": []}
        }),
        "event" => {
            json!({"id": "Q20N9CKRX2_1", "type": "message", "text": "Hello", "author_id": "smith@example.com"})
        }
        "user" => json!({"id": "smith@example.com", "type": "agent", "name": "Agent Smith"}),
        "customer" => {
            json!({"id": "b7eff798-f8df-4364-8059-649c35c9ed0c", "type": "customer", "name": "Thomas"})
        }
        "access" => json!({"group_ids": [0, 1]}),
        "transferred_to" => json!({"group_ids": [19], "agent_ids": ["smith@example.com"]}),
        "transferred_from" => json!({"group_ids": [1], "agent_ids": ["jones@example.com"]}),
        "queue" => {
            json!({"position": 42, "wait_time": 1337, "queued_at": "2019-12-09T12:01:18.909000Z"})
        }
        "postback" => json!({"id": "action_yes", "toggled": true}),
        "properties" => json!({"rating": {"score": {"value": 1}}}),
        "session_fields" => json!([{"custom_key": "custom_value"}]),
        "conditions" => {
            json!({"domain": {"values": [{"value": "example.com", "exact_match": true}]}})
        }
        "work_scheduler" => json!({"monday": [{"start": "08:00", "end": "16:00"}]}),
        "agent_priorities" => json!({"smith@example.com": "first"}),
        "groups" => json!([{"id": 5, "priority": "first"}]),
        "notifications" | "email_subscriptions" => json!(["new_chat"]),
        "group_ids" => json!([0, 5]),
        "awaiting_approval" => json!(false),
        "max_chats_count" => json!(6),
        "id" if matches!(action, Action::GroupCreated | Action::GroupUpdated) => json!(5),
        "id" if matches!(action, Action::GroupDeleted) => json!("5"),
        "reason" => json!("manual"),
        "status" => json!("accepting_chats"),
        "user_type" => json!("agent"),
        "role" => json!("administrator"),
        "seen_up_to" => json!("2019-12-09T12:01:18.909000Z"),
        "created_at" => json!("2019-12-09T12:01:18.909000Z"),
        "tag" | "name" => json!("sales"),
        "default_group_priority" => json!("first"),
        "language_code" => json!("en"),
        "timezone" => json!("Europe/Warsaw"),
        "chat_id" => json!("PJ0MRSHTDG"),
        "thread_id" => json!("K600PKZON8"),
        "event_id" => json!("Q20N9CKRX2_1"),
        "owner_client_id" => json!("asXdesldiAJSq9padj"),
        k if k.ends_with("_id") => json!("smith@example.com"),
        _ => json!(format!("{key} of {action}")),
    }
}

/// A payload of `action` with every required key, and every optional one
/// if `optional`.
pub fn payload(action: Action, optional: bool) -> Value {
    let mut obj = Map::new();
    for k in action.payload_keys() {
        if k.required || optional {
            obj.insert(k.name.to_string(), value(action, k.name));
        }
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::event::check_payload;

    #[test]
    fn every_sample_passes_the_payload_check() {
        for a in Action::ALL {
            for optional in [false, true] {
                let p = payload(a, optional);
                check_payload(a, p.as_object().unwrap()).unwrap();
            }
        }
    }
}
