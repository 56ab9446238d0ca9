//! "Send test"'s events: the domain crate's samples
//! ([`hookwire_livechat::sample`]) as events ready to attempt.

use crate::secret::new_event_id;
use crate::store::{EventBody, EventName};
use hookwire_livechat::sample::sample_json;
use hookwire_livechat::{EventType, IncomingEvent, ValidationError};

/// A sample event of `event` for `license_id`, with a fresh unique id.
pub fn sample_event(event: EventType, license_id: &str) -> Result<EventBody, ValidationError> {
    let text = sample_json(event, license_id).to_string();
    let incoming = IncomingEvent::from_json(text.as_bytes())?;
    Ok(EventBody {
        unique_id: new_event_id(),
        license_id: incoming.license_id,
        event_type: EventName::V2(incoming.event_type),
        sections: incoming.sections,
        v3: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_valid_sample() {
        for event in EventType::ALL {
            let body = sample_event(event, "1025707").expect("valid sample");
            for t in event.required().iter() {
                assert!(body.sections[t.index()].is_some(), "{event} lacks {t}");
            }
        }
    }
}
