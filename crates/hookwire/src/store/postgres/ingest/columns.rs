//! The columns of a run's set-based inserts: each statement takes one
//! array per column (`UNNEST`), borrowed from the run's events.

use super::super::*;
use tokio_postgres::types::ToSql;

/// The columns of a run's events insert.
pub(super) struct EventColumns<'a> {
    ids: Vec<&'a str>,
    lics: Vec<&'a str>,
    types: Vec<&'a str>,
    sections: [Vec<Option<&'a str>>; 4],
    tokens: Vec<Option<&'a str>>,
    expiries: Vec<Millis>,
    received: Vec<Millis>,
}

impl<'a> EventColumns<'a> {
    pub(super) fn new(events: &[(&'a NewEvent, Option<&Handoff>)]) -> Self {
        let mut cols = EventColumns {
            ids: Vec::with_capacity(events.len()),
            lics: Vec::with_capacity(events.len()),
            types: Vec::with_capacity(events.len()),
            sections: Default::default(),
            tokens: Vec::with_capacity(events.len()),
            expiries: Vec::with_capacity(events.len()),
            received: Vec::with_capacity(events.len()),
        };
        for (ev, _) in events {
            cols.ids.push(ev.unique_id.as_str());
            cols.lics.push(ev.license_id.as_str());
            cols.types.push(ev.event_type.as_str());
            for (col, section) in cols.sections.iter_mut().zip(&ev.sections) {
                col.push(section.as_ref().map(|r| r.get()));
            }
            cols.tokens.push(ev.token_hash.as_deref());
            cols.expiries.push(ev.token_expires_at);
            cols.received.push(ev.received_at);
        }
        cols
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        let [chat, visitor, survey, ticket] = &self.sections;
        [
            &self.ids,
            &self.lics,
            &self.types,
            chat,
            visitor,
            survey,
            ticket,
            &self.tokens,
            &self.expiries,
            &self.received,
        ]
    }
}

/// A visitor's name, email, last event type and when it was seen.
type VisitorSeen<'a> = (Option<&'a str>, Option<&'a str>, &'a str, Millis);

/// What a run tells of its visitors, folded per visitor as one upsert after
/// another would leave it (the latest name and email given, the last
/// event), in key order.
pub(super) struct VisitorColumns<'a> {
    lics: Vec<&'a str>,
    ids: Vec<&'a str>,
    names: Vec<Option<&'a str>>,
    emails: Vec<Option<&'a str>>,
    kinds: Vec<&'a str>,
    seen: Vec<Millis>,
}

impl<'a> VisitorColumns<'a> {
    pub(super) fn new(events: &[(&'a NewEvent, Option<&Handoff>)]) -> Self {
        let mut folded: HashMap<(&str, &str), VisitorSeen> = HashMap::new();
        for (ev, _) in events {
            let Some(v) = &ev.visitor else { continue };
            let seen = (
                v.name.as_deref(),
                v.email.as_deref(),
                ev.event_type.as_str(),
                ev.received_at,
            );
            folded
                .entry((ev.license_id.as_str(), v.id.as_str()))
                .and_modify(|f| {
                    *f = (seen.0.or(f.0), seen.1.or(f.1), seen.2, seen.3);
                })
                .or_insert(seen);
        }
        let mut rows: Vec<_> = folded.into_iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut cols = VisitorColumns {
            lics: vec![],
            ids: vec![],
            names: vec![],
            emails: vec![],
            kinds: vec![],
            seen: vec![],
        };
        for ((lic, vid), (n, e, k, t)) in rows {
            cols.lics.push(lic);
            cols.ids.push(vid);
            cols.names.push(n);
            cols.emails.push(e);
            cols.kinds.push(k);
            cols.seen.push(t);
        }
        cols
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lics.is_empty()
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.lics,
            &self.ids,
            &self.names,
            &self.emails,
            &self.kinds,
            &self.seen,
        ]
    }
}
