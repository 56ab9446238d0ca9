//! Ordered delivery's rules, once for both backends.
//!
//! A webhook may be *ordered*: its deliveries that share an ordering key (a
//! chat, a visitor or a ticket: `hookwire_livechat::event::ordering_key`)
//! are attempted one at a time, in the order their events were committed.
//! The backends keep three things true with these rules:
//!
//! - **The claim rule** (SQL in each backend's claim): a delivery with a key
//!   is claimed only if no unfinished (pending or held) delivery of its
//!   webhook and key has a smaller id. With ingest handing over only a
//!   delivery nothing unfinished precedes, this keeps the order and "one in
//!   flight per key"; the one way a later delivery can be in flight while
//!   an earlier one is due is a redelivery of an old one, which is parked
//!   while another of its key is in flight (`park_behind`).
//! - **Parking**: a delivery made behind an unfinished one of its key is
//!   inserted due at [`PARKED`], never due, so claims do not walk a long
//!   line on every poll. When a delivery of a key finishes (delivered,
//!   failed for good, discarded), the lowest unfinished one of its key is
//!   made due, if parked ([`BatchLine`] decides at ingest; the backends'
//!   "wake the head" statements at a finish).
//! - **Commit order**: on PostgreSQL, ingest and the finishing record of a
//!   key take a transaction-scoped advisory lock on [`lock_id`] (sorted, so
//!   two groups never wait on each other in a cycle) before anything of the
//!   key is read or written. So ids of one key are given in commit order,
//!   and a parked delivery never misses the finish that should wake it.
//!
//! A delivery that failed for good no longer blocks its key: the next one
//! goes, and the log says it went after the failed one.

use super::super::Millis;
use std::collections::HashSet;

/// The `next_attempt_at` of a parked delivery: waiting behind an earlier
/// one of its key, due only when that one finishes.
pub const PARKED: Millis = i64::MAX;

/// The advisory lock that serializes the writes of one (webhook, key) on
/// PostgreSQL: FNV-1a (64 bits) of the webhook id, a 0 byte and the key. Its
/// value must be the same on every node and in every version, so it is
/// written out here rather than taken from `std`'s hasher, which may change.
/// Two keys that collide only wait for each other; nothing is wrong.
pub fn lock_id(webhook_id: &str, key: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in webhook_id.bytes().chain([0]).chain(key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash as i64
}

/// The locks for these (webhook, key) pairs, sorted and without repeats:
/// the order every transaction takes them in.
pub fn sorted_lock_ids<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<i64> {
    let mut ids: Vec<i64> = pairs.into_iter().map(|(w, k)| lock_id(w, k)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Which new deliveries of one ingest are parked: those whose key already
/// has an unfinished delivery, in the database or earlier in the same
/// ingest.
#[derive(Debug, Default)]
pub struct BatchLine {
    seen: HashSet<(String, String)>,
}

impl BatchLine {
    /// Whether the next delivery to `webhook_id` with `key` is parked, given
    /// whether the database held an unfinished one of the pair before this
    /// ingest; records the delivery as unfinished for those that follow.
    pub fn parks(&mut self, webhook_id: &str, key: &str, unfinished_in_database: bool) -> bool {
        let first_here = self.seen.insert((webhook_id.to_string(), key.to_string()));
        unfinished_in_database || !first_here
    }
}

/// Where a delivery of an ordered webhook stands in its key's line, for the
/// delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinePlace {
    /// Its event had no key (no chat, visitor or ticket id): it was
    /// delivered as if the webhook were unordered.
    Unkeyed,
    Keyed {
        key: String,
        /// For a pending or held delivery: the earlier (or in-flight)
        /// delivery of its key it waits for.
        waits_for: Option<i64>,
        /// Earlier deliveries of its key that failed for good, the line went
        /// on past them (newest first, at most [`AFTER_FAILED_SHOWN`]).
        after_failed: Vec<i64>,
    },
}

/// How many of the failed deliveries a delivery went after the log names.
pub const AFTER_FAILED_SHOWN: usize = 3;

/// What a backend reads of a delivery to find its [`LinePlace`].
pub struct LineQuery<'a> {
    pub id: i64,
    pub webhook_id: &'a str,
    pub order_key: Option<&'a str>,
    /// Pending or held.
    pub unfinished: bool,
    /// Its webhook was ordered when it was made.
    pub ordered_when_made: bool,
}

impl LineQuery<'_> {
    /// The place of a delivery that has no key: unkeyed if its webhook was
    /// ordered when it was made, else not in any line.
    pub fn unkeyed_place(&self) -> Option<LinePlace> {
        self.ordered_when_made.then_some(LinePlace::Unkeyed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_are_fixed_and_depend_on_both_parts() {
        // Fixed values: nodes of different builds must agree.
        assert_eq!(lock_id("", ""), 0xaf63_bd4c_8601_b7df_u64 as i64);
        assert_ne!(lock_id("w1", "c1"), lock_id("w1", "c2"));
        assert_ne!(lock_id("w1", "c1"), lock_id("w2", "c1"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(lock_id("ab", "c"), lock_id("a", "bc"));
    }

    #[test]
    fn lock_ids_come_sorted_once() {
        let ids = sorted_lock_ids([("w", "b"), ("w", "a"), ("w", "b")]);
        assert_eq!(ids.len(), 2);
        assert!(ids[0] < ids[1]);
    }

    #[test]
    fn a_line_parks_what_follows_an_unfinished_delivery() {
        let mut line = BatchLine::default();
        // Nothing unfinished: the first goes, the second of the same key
        // in the same ingest waits for it.
        assert!(!line.parks("w", "c1", false));
        assert!(line.parks("w", "c1", false));
        // Another key, and the same key of another webhook, are their own.
        assert!(!line.parks("w", "c2", false));
        assert!(!line.parks("v", "c1", false));
        // Something unfinished in the database: parked from the first.
        assert!(line.parks("w", "c3", true));
    }
}
