//! Idempotency by `event_unique_id`. hookwire delivers at least once: a
//! retry, a redelivery or a replay sends the same event again with the same
//! `event_unique_id` (and `webhook-id`), so a receiver remembers which ones it
//! has handled and answers 200 to repeats without doing the work twice.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// A bounded in-memory set of handled `event_unique_id`s, oldest forgotten
/// first. Cheap to clone (shared). A receiver running on several machines, or
/// one that must survive restarts, keeps the same key in its database
/// instead, e.g. as a unique column written in the same transaction as the
/// work.
///
/// ```
/// use hookwire_receiver::Deduplicator;
///
/// let seen = Deduplicator::new(10_000);
/// assert!(seen.first_time("0123456789abcdef0123456789abcdef"));
/// assert!(!seen.first_time("0123456789abcdef0123456789abcdef")); // a retry: skip the work
///
/// // If handling failed, forget it so the retry is handled again.
/// assert!(seen.first_time("fedcba9876543210fedcba9876543210"));
/// seen.forget("fedcba9876543210fedcba9876543210");
/// assert!(seen.first_time("fedcba9876543210fedcba9876543210"));
/// ```
#[derive(Clone, Debug)]
pub struct Deduplicator {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Deduplicator {
    /// Remembers at most `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        Deduplicator {
            inner: Arc::new(Mutex::new(Inner {
                capacity: capacity.max(1),
                order: VecDeque::new(),
                set: HashSet::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the set inconsistent; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `true` the first time `event_unique_id` is seen (and records it),
    /// `false` for a repeat.
    pub fn first_time(&self, event_unique_id: &str) -> bool {
        let mut inner = self.lock();
        if inner.set.contains(event_unique_id) {
            return false;
        }
        if inner.order.len() >= inner.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.set.remove(&old);
            }
        }
        inner.set.insert(event_unique_id.to_string());
        inner.order.push_back(event_unique_id.to_string());
        true
    }

    /// Forgets an id, so its next delivery counts as the first.
    pub fn forget(&self, event_unique_id: &str) {
        let mut inner = self.lock();
        if inner.set.remove(event_unique_id) {
            inner.order.retain(|id| id != event_unique_id);
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.lock().set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let d = Deduplicator::new(2);
        assert!(d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(d.first_time("c"));
        assert_eq!(d.len(), 2);
        assert!(d.first_time("a"), "a was evicted");
        assert!(!d.first_time("c"));
        let shared = d.clone();
        assert!(!shared.first_time("a"));
    }
}
