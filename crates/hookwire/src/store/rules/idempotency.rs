//! Idempotency keys: a caller that sends an event again with the same key
//! gets the first answer back instead of a second event.

use crate::store::IngestOutcome;

/// An idempotency key as stored: the hash of the request that claimed it,
/// and what that request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub body_hash: String,
    pub event_id: String,
    pub deliveries: i64,
}

/// What an event with an idempotency key does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyDecision {
    /// A new key: the event is ingested and the key kept with it.
    Accept,
    /// The same key with the same request: answered as the first time,
    /// nothing is written.
    Replay {
        event_id: String,
        delivery_count: usize,
    },
    /// The same key with a different request: refused.
    Reused,
}

impl KeyDecision {
    /// The answer for the caller, when the event goes no further.
    pub fn outcome(self) -> Option<IngestOutcome> {
        match self {
            KeyDecision::Accept => None,
            KeyDecision::Replay {
                event_id,
                delivery_count,
            } => Some(IngestOutcome::Replayed {
                event_id,
                delivery_count,
            }),
            KeyDecision::Reused => Some(IngestOutcome::KeyReused),
        }
    }
}

/// Decides an event whose request hashes to `body_hash`, given what is
/// stored under its key (`None`: the key is new).
pub fn decide(stored: Option<StoredKey>, body_hash: &str) -> KeyDecision {
    match stored {
        None => KeyDecision::Accept,
        Some(key) if key.body_hash == body_hash => KeyDecision::Replay {
            event_id: key.event_id,
            // Written by ingest as its delivery count: never negative.
            delivery_count: key.deliveries as usize,
        },
        Some(_) => KeyDecision::Reused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(hash: &str, deliveries: i64) -> Option<StoredKey> {
        Some(StoredKey {
            body_hash: hash.into(),
            event_id: "e1".into(),
            deliveries,
        })
    }

    #[test]
    fn a_new_key_is_accepted() {
        assert_eq!(decide(None, "h"), KeyDecision::Accept);
        assert!(KeyDecision::Accept.outcome().is_none());
    }

    #[test]
    fn the_same_request_again_is_replayed_with_the_first_answer() {
        let d = decide(stored("h", 3), "h");
        assert_eq!(
            d,
            KeyDecision::Replay {
                event_id: "e1".into(),
                delivery_count: 3
            }
        );
        assert!(matches!(
            d.outcome(),
            Some(IngestOutcome::Replayed { event_id, delivery_count: 3 }) if event_id == "e1"
        ));
    }

    #[test]
    fn another_request_under_the_key_is_refused() {
        let d = decide(stored("h", 3), "other");
        assert_eq!(d, KeyDecision::Reused);
        assert!(matches!(d.outcome(), Some(IngestOutcome::KeyReused)));
    }
}
