//! The `chat_changed` tag rule.
//!
//! The platform reports `chat_changed` for many changes, and receivers of
//! that type want tag changes only: an event is delivered unless it is a
//! `chat_changed` whose tags equal the ones last seen of its chat. Every
//! event that reports a chat's tags (of any type) updates what was seen, so
//! a chat's first `chat_changed` is compared with what `chat_started` said.

use hookwire_livechat::EventType;
use std::collections::HashMap;
use std::hash::Hash;

/// Whether an event reporting `tags` for its chat is delivered, given the
/// tags last seen of that chat (`None`: the chat was never seen). After it,
/// the chat's tags are `tags`, delivered or not.
pub fn delivers(event_type: EventType, previous: Option<&str>, tags: &str) -> bool {
    !(event_type == EventType::ChatChanged && previous == Some(tags))
}

/// Whether deciding an event of `event_type` needs the tags last seen of its
/// chat. Only a `chat_changed` is ever held back, so a store need not read
/// them for the other types (it still keeps what they report).
pub fn needs_previous(event_type: EventType) -> bool {
    event_type == EventType::ChatChanged
}

/// Whether what is kept of a chat's tags changes: a store need not write
/// them again when the event reports what was last seen.
pub fn changes_what_is_kept(previous: Option<&str>, tags: &str) -> bool {
    previous != Some(tags)
}

/// The rule over several events of one transaction, in order, as one at a
/// time would apply it: each event is decided against the tags the event
/// before it left for its chat, or (its chat's first in the sequence)
/// against the stored ones. `K` names a chat (license and chat id).
pub struct TagSequence<'a, K> {
    /// Each chat's tags as the events so far left them.
    last: HashMap<K, &'a str>,
}

impl<'a, K: Eq + Hash> TagSequence<'a, K> {
    pub fn new() -> Self {
        TagSequence {
            last: HashMap::new(),
        }
    }

    /// Decides one event of chat `key`; `stored` is asked for the tags the
    /// store held before the sequence only when the sequence has not seen
    /// the chat yet.
    pub fn decide<'s>(
        &mut self,
        key: K,
        event_type: EventType,
        tags: &'a str,
        stored: impl FnOnce() -> Option<&'s str>,
    ) -> bool {
        let deliver = match self.last.get(&key) {
            Some(previous) => delivers(event_type, Some(previous), tags),
            None => delivers(event_type, stored(), tags),
        };
        self.last.insert(key, tags);
        deliver
    }

    /// Each chat the sequence saw, with the tags its last event left: what
    /// the store keeps afterwards.
    pub fn into_last(self) -> HashMap<K, &'a str> {
        self.last
    }
}

impl<K: Eq + Hash> Default for TagSequence<'_, K> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::{ChatChanged, ChatEnded, ChatStarted};

    #[test]
    fn a_chat_changed_with_the_tags_last_seen_is_not_delivered() {
        assert!(!delivers(ChatChanged, Some("a,b"), "a,b"));
        assert!(delivers(ChatChanged, Some("a"), "a,b"));
        assert!(delivers(ChatChanged, Some(""), "a"));
        assert!(delivers(ChatChanged, Some("a"), ""));
    }

    #[test]
    fn a_chat_never_seen_is_delivered() {
        assert!(delivers(ChatChanged, None, ""));
        assert!(delivers(ChatChanged, None, "a"));
    }

    #[test]
    fn other_event_types_are_always_delivered() {
        for t in [ChatStarted, ChatEnded, EventType::VisitorQueued] {
            assert!(delivers(t, Some("a"), "a"), "{t:?}");
        }
    }

    #[test]
    fn only_chat_changed_needs_the_tags_last_seen() {
        assert!(needs_previous(ChatChanged));
        for t in [
            ChatStarted,
            ChatEnded,
            EventType::VisitorQueued,
            EventType::TicketCreated,
        ] {
            assert!(!needs_previous(t), "{t:?}");
            // What `delivers` answers without them is what it answers with any.
            for previous in [None, Some(""), Some("a")] {
                assert!(delivers(t, previous, "a"), "{t:?} {previous:?}");
            }
        }
    }

    #[test]
    fn tags_equal_to_the_ones_kept_change_nothing() {
        assert!(!changes_what_is_kept(Some("a,b"), "a,b"));
        assert!(changes_what_is_kept(Some("a"), "a,b"));
        assert!(changes_what_is_kept(None, ""));
        assert!(changes_what_is_kept(Some(""), "a"));
    }

    #[test]
    fn a_sequence_decides_each_event_against_the_one_before() {
        let mut seq = TagSequence::new();
        let stored = |t: &'static str| move || Some(t);
        // Chat 1 was stored with "a"; chat 2 is new.
        assert!(!seq.decide(1, ChatChanged, "a", stored("a")), "as stored");
        assert!(seq.decide(1, ChatChanged, "b", || panic!("not asked again")));
        assert!(
            !seq.decide(1, ChatChanged, "b", || None),
            "as the one before"
        );
        assert!(seq.decide(2, ChatChanged, "x", || None), "a new chat");
        assert!(seq.decide(2, ChatEnded, "x", || None), "not chat_changed");
        assert!(seq.decide(1, ChatChanged, "a", || None), "back to a");
        let last = seq.into_last();
        assert_eq!(last.len(), 2);
        assert_eq!((last[&1], last[&2]), ("a", "x"));
    }

    #[test]
    fn a_sequence_matches_one_event_at_a_time() {
        // The same events, once through a sequence with a stored state and
        // once one at a time against a map that plays the table.
        let events = [
            (1, ChatStarted, "a"),
            (1, ChatChanged, "a"),
            (2, ChatChanged, "b"),
            (1, ChatChanged, "c"),
            (2, ChatChanged, "b"),
            (1, ChatEnded, "c"),
            (1, ChatChanged, "c"),
        ];
        let table: HashMap<i32, &str> = [(2, "b")].into();
        let mut seq = TagSequence::new();
        let batched: Vec<bool> = events
            .iter()
            .map(|(k, t, tags)| seq.decide(*k, *t, tags, || table.get(k).copied()))
            .collect();
        let mut one_by_one = table.clone();
        let single: Vec<bool> = events
            .iter()
            .map(|(k, t, tags)| {
                let d = delivers(*t, one_by_one.get(k).copied(), tags);
                one_by_one.insert(*k, tags);
                d
            })
            .collect();
        assert_eq!(batched, single);
        assert_eq!(batched, [true, false, false, true, false, true, false]);
        assert_eq!(seq.into_last(), one_by_one);
    }
}
