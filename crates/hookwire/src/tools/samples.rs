//! The webhooks `check-receiver` sends: every event type with every data
//! type combination its webhooks may ask for, then the edge cases real
//! deliveries bring (an empty `pre_chat_survey`, supervisor whispers,
//! unicode, a long transcript, numbers in `custom_variables`). Bodies are
//! rendered by the server's own `render_payload`, from events validated like
//! any platform event, so they are byte for byte what hookwire would send.

use crate::secret::{new_event_id, random_hex};
use hookwire_livechat::sample::sample_json;
use hookwire_livechat::{
    render_payload, DataTypes, EventType, IncomingEvent, PayloadParts, ValidationError,
};
use serde_json::{json, Value};

/// One webhook to send.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub event_unique_id: String,
    pub body: Vec<u8>,
}

/// Every subset of the event's supported data types, the empty one included.
pub fn combinations(event: EventType) -> Vec<DataTypes> {
    let supported = event.supported();
    (0u8..16)
        .map(DataTypes::from_bits)
        .filter(|set| set.is_subset_of(supported))
        .collect()
}

/// Renders `event_json` (a platform event) as the webhook body for `data_types`.
pub fn render(event_json: &Value, data_types: DataTypes) -> Result<Case, ValidationError> {
    let incoming = IncomingEvent::from_json(event_json.to_string().as_bytes())?;
    // Shaped like real ones (`secret::new_event_id`, `secret::event_token`).
    let unique_id = new_event_id();
    let token = format!("{unique_id}{}", random_hex(16));
    let body = render_payload(&PayloadParts {
        event_type: incoming.event_type,
        token: &token,
        license_id: &incoming.license_id,
        sections: &incoming.sections,
        data_types,
        event_unique_id: &unique_id,
    });
    let names = data_types.names();
    Ok(Case {
        name: format!(
            "{} [{}]",
            incoming.event_type,
            if names.is_empty() {
                "no data".to_string()
            } else {
                names.join(", ")
            }
        ),
        event_unique_id: unique_id,
        body,
    })
}

fn all_of(event: EventType) -> DataTypes {
    event.supported()
}

/// The whole conformance run, in order (without the duplicate delivery,
/// which the runner adds by resending one of these).
pub fn conformance_cases(license: &str) -> Result<Vec<Case>, ValidationError> {
    let mut cases = Vec::new();
    for event in EventType::ALL {
        let sample = sample_json(event, license);
        for set in combinations(event) {
            cases.push(render(&sample, set)?);
        }
    }
    let edge = |name: &str, event: EventType, json: Value| -> Result<Case, ValidationError> {
        let mut case = render(&json, all_of(event))?;
        case.name = name.to_string();
        Ok(case)
    };

    let mut empty_survey = sample_json(EventType::ChatStarted, license);
    empty_survey["pre_chat_survey"] = json!([]);
    cases.push(edge(
        "edge: empty pre_chat_survey",
        EventType::ChatStarted,
        empty_survey,
    )?);

    let mut whispers = sample_json(EventType::ChatEnded, license);
    whispers["chat"]["messages"] = json!([
        {"user_type": "visitor", "author_name": "Mary Brown", "text": "Can I get a refund?", "timestamp": 1358937653},
        {"user_type": "supervisor", "author_name": "James Doe", "agent_id": "james@mycompany.com", "text": "Offer store credit first.", "timestamp": 1358937655},
        {"user_type": "supervisor", "author_name": "James Doe", "agent_id": "james@mycompany.com", "text": "Then the refund if she insists.", "timestamp": 1358937656},
        {"user_type": "agent", "author_name": "John Doe", "agent_id": "john.doe@mycompany.com", "text": "Would store credit work for you?", "timestamp": 1358937660}
    ]);
    cases.push(edge(
        "edge: supervisor whispers",
        EventType::ChatEnded,
        whispers,
    )?);

    let mut unicode = sample_json(EventType::ChatStarted, license);
    unicode["visitor"]["name"] = json!("Zoë Ångström-Łukasz 山田太郎");
    unicode["visitor"]["email"] = json!("zoë@exämple.com");
    unicode["chat"]["messages"] = json!([
        {"user_type": "visitor", "author_name": "山田太郎", "text": "こんにちは 👋🏽 — naïve café, שלום, مرحبا, Привет", "timestamp": 1358937653},
        {"user_type": "agent", "author_name": "Jöhn Dœ", "agent_id": "john.doe@mycompany.com", "text": "Emoji: 🧑‍💻🇵🇱 and escapes: \"quotes\" \\ back\\slash \u{2028} line separator", "timestamp": 1358937654}
    ]);
    unicode["chat"]["tags"] = json!(["ünïcödé", "日本"]);
    cases.push(edge("edge: unicode", EventType::ChatStarted, unicode)?);

    let mut long = sample_json(EventType::ChatEnded, license);
    let messages: Vec<Value> = (0..2000)
        .map(|i| {
            let (user_type, author) = if i % 2 == 0 { ("visitor", "Mary Brown") } else { ("agent", "John Doe") };
            json!({"user_type": user_type, "author_name": author, "text": format!("Message {i}: {}", "lorem ipsum dolor sit amet ".repeat(4)), "timestamp": 1358937653 + i})
        })
        .collect();
    long["chat"]["messages"] = Value::Array(messages);
    cases.push(edge(
        "edge: long transcript (2000 messages)",
        EventType::ChatEnded,
        long,
    )?);

    let mut numbers = sample_json(EventType::VisitorQueued, license);
    numbers["visitor"]["custom_variables"] = json!([
        {"key": "Customer ID", "value": "POQ51023XZA"},
        {"key": "cart_items", "value": 3},
        {"key": "cart_value", "value": 149.99},
        {"key": "big_id", "value": 12345678901234567u64}
    ]);
    cases.push(edge(
        "edge: numbers in custom_variables",
        EventType::VisitorQueued,
        numbers,
    )?);
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookwire_livechat::payload::WebhookPayload;
    use hookwire_livechat::DataType;

    #[test]
    fn every_case_is_a_valid_payload_with_the_right_sections() {
        let cases = conformance_cases("1025707").unwrap();
        // 8 + 8 + 2 + 4 + 2 combinations, plus 5 edge cases.
        assert_eq!(cases.len(), 24 + 5);
        for case in &cases {
            let p: WebhookPayload = serde_json::from_slice(&case.body).unwrap();
            assert_eq!(p.event_unique_id, case.event_unique_id);
        }
        let survey = cases
            .iter()
            .find(|c| c.name.contains("empty pre_chat"))
            .unwrap();
        let p: WebhookPayload = serde_json::from_slice(&survey.body).unwrap();
        assert_eq!(p.pre_chat_survey, Some(vec![]));
        assert!(combinations(EventType::TicketCreated)
            .iter()
            .all(|s| s.iter().all(|t| t == DataType::Ticket)));
    }
}
