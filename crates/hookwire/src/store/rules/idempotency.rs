//! Idempotency keys: a caller that sends an event again with the same key
//! gets the first answer back instead of a second event, for
//! [`IDEMPOTENCY_WINDOW`] after the first; then the key is free again.

pub use super::retention::IDEMPOTENCY_WINDOW;
use crate::store::{IngestOutcome, Millis};

/// An idempotency key as stored: the hash of the request that claimed it,
/// and what that request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub body_hash: String,
    pub event_id: String,
    pub deliveries: i64,
    /// When the first request claimed the key.
    pub created_at: Millis,
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

/// Keys claimed before this time, at `now`, have expired.
pub fn expired_before(now: Millis) -> Millis {
    now.saturating_sub(IDEMPOTENCY_WINDOW.as_millis() as Millis)
}

/// Decides an event whose request hashes to `body_hash`, arriving at `now`,
/// given what is stored under its key (`None`: the key is new). An expired
/// key counts as new, whether or not a prune has removed it yet; the store
/// then overwrites it.
pub fn decide(stored: Option<StoredKey>, body_hash: &str, now: Millis) -> KeyDecision {
    match stored {
        None => KeyDecision::Accept,
        Some(key) if key.created_at < expired_before(now) => KeyDecision::Accept,
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

    const NOW: Millis = 100 * 86_400_000;

    fn stored(hash: &str, deliveries: i64) -> Option<StoredKey> {
        Some(StoredKey {
            body_hash: hash.into(),
            event_id: "e1".into(),
            deliveries,
            created_at: NOW - 1_000,
        })
    }

    #[test]
    fn a_new_key_is_accepted() {
        assert_eq!(decide(None, "h", NOW), KeyDecision::Accept);
        assert!(KeyDecision::Accept.outcome().is_none());
    }

    #[test]
    fn the_same_request_again_is_replayed_with_the_first_answer() {
        let d = decide(stored("h", 3), "h", NOW);
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
        let d = decide(stored("h", 3), "other", NOW);
        assert_eq!(d, KeyDecision::Reused);
        assert!(matches!(d.outcome(), Some(IngestOutcome::KeyReused)));
    }

    #[test]
    fn a_key_older_than_the_window_is_free_again() {
        let window = IDEMPOTENCY_WINDOW.as_millis() as Millis;
        let mut key = stored("h", 3).unwrap();
        key.created_at = NOW - window - 1;
        assert_eq!(decide(Some(key.clone()), "other", NOW), KeyDecision::Accept);
        assert_eq!(decide(Some(key.clone()), "h", NOW), KeyDecision::Accept);
        key.created_at = NOW - window;
        assert!(matches!(
            decide(Some(key), "h", NOW),
            KeyDecision::Replay { .. }
        ));
    }
}
