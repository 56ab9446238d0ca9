//! Realistic sample events, shaped like the LiveChat v2 documentation's
//! examples: what the web app's "Send test", `hookwire trigger` and
//! `hookwire check-receiver` send. Each validates like any platform event.

use crate::EventType;
use serde_json::{json, Value};

/// The sample event's JSON as the platform would report it (also what
/// `hookwire trigger` sends and `check-receiver` builds on).
pub fn sample_json(event: EventType, license_id: &str) -> Value {
    let chat = json!({
        "id": "MH022RD0K5",
        "started_timestamp": 1358937653,
        "ended_timestamp": 1358939109,
        "messages": [
            {"user_type": "agent", "author_name": "John Doe", "agent_id": "john.doe@mycompany.com", "text": "Hello", "timestamp": 1358937653},
            {"user_type": "supervisor", "author_name": "James Doe", "agent_id": "james@mycompany.com", "text": "This is whispered message.", "timestamp": 1358937658},
            {"user_type": "visitor", "author_name": "Mary Brown", "text": "How are you?", "timestamp": 1358937661}
        ],
        "tags": ["sales", "support", "feedback"]
    });
    let visitor = json!({
        "id": "S1354547427.0c151b0e1b",
        "name": "Mary Brown",
        "email": "mary.brown@email.com",
        "custom_variables": [{"key": "Customer ID", "value": "POQ51023XZA"}]
    });
    let survey = json!([
        {"id": "2001", "type": "name", "label": "Your name:", "answer": "Mary Brown"},
        {"id": "2002", "type": "email", "label": "E-mail:", "answer": "mary.brown@email.com"}
    ]);
    let mut body = json!({
        "event_type": event.as_str(),
        "license_id": license_id,
    });
    match event {
        EventType::ChatStarted | EventType::ChatEnded | EventType::ChatChanged => {
            body["chat"] = chat;
            body["visitor"] = visitor;
            if event != EventType::ChatChanged {
                body["pre_chat_survey"] = survey;
            }
        }
        EventType::VisitorQueued => body["visitor"] = visitor,
        EventType::TicketCreated => {
            body["ticket"] = json!({
                "id": "6PB5W",
                "status": "open",
                "subject": "Chat with Mary Brown",
                "requester": {"mail": "mary.brown@email.com", "name": "Mary Brown", "ip": "192.0.2.10"},
                "events": [{"author": {"id": "mary.brown@email.com", "name": "Mary Brown", "type": "client"}, "date": "2013-01-23T10:40:53Z", "message": "I have a question about my order.", "type": "message"}],
                "groups": [{"id": 0, "name": "General"}],
                "tags": ["order"],
                "source": {"type": "chat-window", "url": "https://example.com/contact"}
            });
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IncomingEvent;

    #[test]
    fn every_event_type_has_a_valid_sample_with_its_required_sections() {
        for event in EventType::ALL {
            let text = sample_json(event, "1025707").to_string();
            let incoming = IncomingEvent::from_json(text.as_bytes()).expect("valid sample");
            assert_eq!(incoming.event_type, event);
            for t in event.required().iter() {
                assert!(incoming.sections[t.index()].is_some(), "{event} lacks {t}");
            }
        }
    }
}
