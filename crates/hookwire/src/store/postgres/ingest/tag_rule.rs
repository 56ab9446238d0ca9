//! The `chat_changed` rule inside a set-based run: the chats' stored tags
//! loaded and locked, each event decided by `rules::tags` as if the events
//! came one at a time, and the tags the run changed written back.

use super::super::*;
use rules::tags::TagSequence;
use tokio_postgres::types::ToSql;

type ChatKey<'a> = (&'a str, &'a str);

/// The `chat_changed` rule for a run. The first tags seen of each chat are
/// inserted if the chat is new, every chat of the run is locked and read,
/// then every event is decided in order against the tags the one before it
/// left, as if one at a time.
pub(super) struct TagRule<'a> {
    /// Each chat of the run with the first tags seen of it, in key order.
    lics: Vec<&'a str>,
    chats: Vec<&'a str>,
    first_tags: Vec<&'a str>,
}

impl<'a> TagRule<'a> {
    pub(super) fn new(events: &[(&'a NewEvent, Option<&Handoff>)]) -> Self {
        let mut first: Vec<(ChatKey, &str)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (ev, _) in events {
            if let Some((chat, tags)) = &ev.chat_tags {
                if seen.insert((ev.license_id.as_str(), chat.as_str())) {
                    first.push(((ev.license_id.as_str(), chat.as_str()), tags.as_str()));
                }
            }
        }
        first.sort_unstable();
        let (lics, chats, first_tags) = first.iter().map(|((l, c), t)| (*l, *c, *t)).collect();
        TagRule {
            lics,
            chats,
            first_tags,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lics.is_empty()
    }

    pub(super) fn insert_params(&self) -> [&(dyn ToSql + Sync); 3] {
        [&self.lics, &self.chats, &self.first_tags]
    }

    pub(super) fn lock_params(&self) -> [&(dyn ToSql + Sync); 2] {
        [&self.lics, &self.chats]
    }

    /// Which events are delivered, and the chats whose tags the run changed
    /// (to write back), given the chats `inserted` and the `locked` rows.
    pub(super) fn decide(
        &self,
        events: &[(&'a NewEvent, Option<&Handoff>)],
        accepted: &[bool],
        inserted: &[Row],
        locked: &[Row],
    ) -> (Vec<bool>, Vec<(&'a str, &'a str, &'a str)>) {
        let mut deliver = vec![true; events.len()];
        if self.is_empty() {
            return (deliver, Vec::new());
        }
        // The run's own keys, looked up by the database's answers (a map
        // to itself, so what is found borrows from the run, not from rows).
        let asked: HashMap<ChatKey, ChatKey> = self
            .lics
            .iter()
            .zip(&self.chats)
            .map(|(l, c)| ((*l, *c), (*l, *c)))
            .collect();
        let known = |r: &Row| -> Option<ChatKey<'a>> {
            asked
                .get(&(r.get::<_, &str>(0), r.get::<_, &str>(1)))
                .copied()
        };
        let new: std::collections::HashSet<ChatKey> = inserted.iter().filter_map(known).collect();
        // current: the chat's tags as the events so far left them; stored:
        // in the table before the run. A new chat is in neither.
        let mut stored: HashMap<ChatKey, String> = HashMap::new();
        for row in locked {
            if let Some(key) = known(row).filter(|k| !new.contains(k)) {
                stored.insert(key, row.get(2));
            }
        }
        // Each event against the tags the one before it left.
        let mut sequence = TagSequence::new();
        for (i, ((ev, _), ok)) in events.iter().zip(accepted).enumerate() {
            let Some((chat, tags)) = ev.chat_tags.as_ref().filter(|_| *ok) else {
                continue;
            };
            let key = (ev.license_id.as_str(), chat.as_str());
            // A new chat's first event inserted it, and is delivered.
            deliver[i] = sequence.decide(key, ev.event_type, tags.as_str(), || {
                stored.get(&key).map(String::as_str)
            });
        }
        let current = sequence.into_last();
        // Write back the chats whose tags the run changed.
        let first: HashMap<ChatKey, &str> = self
            .lics
            .iter()
            .zip(&self.chats)
            .zip(&self.first_tags)
            .map(|((l, c), t)| ((*l, *c), *t))
            .collect();
        let mut changed: Vec<(&'a str, &'a str, &'a str)> = current
            .into_iter()
            .filter(|(key, tags)| {
                let before = stored
                    .get(key)
                    .map(String::as_str)
                    .or(first.get(key).copied());
                before != Some(*tags)
            })
            .map(|((l, c), t)| (l, c, t))
            .collect();
        changed.sort_unstable();
        (deliver, changed)
    }
}
