//! A visitor's custom details: named sets (LiveChat's `id`) that receivers
//! post, and the view agents get of a visitor.
//!
//! Both backends put a set with one upsert on `(license, visitor, set_id)`
//! (loading the sets to merge them here would cost a read and a lock per
//! put), and list the sets in [`details_order`]; [`merge_details`] is the
//! rule those statements implement, and the store tests hold both
//! backends to it.

use crate::store::{DetailsSet, VisitorView};
use std::cmp::Ordering;

/// The order a visitor's sets are listed in: the least recently updated
/// first, then by `set_id`.
pub fn details_order(a: &DetailsSet, b: &DetailsSet) -> Ordering {
    (a.updated_at, &a.set_id).cmp(&(b.updated_at, &b.set_id))
}

/// Puts `set` among a visitor's `sets`: it replaces the set with its
/// `set_id` (icon, fields and time alike), or is added; the sets stay in
/// [`details_order`].
pub fn merge_details(sets: &mut Vec<DetailsSet>, set: DetailsSet) {
    sets.retain(|s| s.set_id != set.set_id);
    let at = sets
        .binary_search_by(|s| details_order(s, &set))
        .unwrap_or_else(|i| i);
    sets.insert(at, set);
}

/// A visitor as agents see them: the visitor events told of (`seen`), with
/// `details`; a visitor known only from details posted for them has only
/// an id; `None` when neither is known.
pub fn visitor_view(
    visitor_id: &str,
    seen: Option<VisitorView>,
    details: Vec<DetailsSet>,
) -> Option<VisitorView> {
    match seen {
        Some(v) => Some(VisitorView { details, ..v }),
        None if !details.is_empty() => Some(VisitorView {
            visitor_id: visitor_id.to_string(),
            name: None,
            email: None,
            last_event_type: None,
            last_seen_at: None,
            details,
        }),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(id: &str, fields: &str, at: i64) -> DetailsSet {
        DetailsSet {
            set_id: id.into(),
            icon: None,
            fields_json: fields.into(),
            updated_at: at,
        }
    }

    #[test]
    fn a_new_set_is_added_in_order() {
        let mut sets = Vec::new();
        merge_details(&mut sets, set("b", "[1]", 20));
        merge_details(&mut sets, set("a", "[2]", 10));
        merge_details(&mut sets, set("c", "[3]", 20));
        let ids: Vec<&str> = sets.iter().map(|s| s.set_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn a_set_with_a_known_id_replaces_it_whole() {
        let mut sets = vec![set("a", "[1]", 10), set("b", "[2]", 20)];
        merge_details(
            &mut sets,
            DetailsSet {
                icon: Some("https://example.com/i.png".into()),
                ..set("a", "[9]", 30)
            },
        );
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0], set("b", "[2]", 20), "now the older one");
        assert_eq!(sets[1].fields_json, "[9]");
        assert_eq!(sets[1].icon.as_deref(), Some("https://example.com/i.png"));
        // Replaced without an icon: the icon goes too.
        merge_details(&mut sets, set("a", "[10]", 40));
        assert_eq!(sets[1], set("a", "[10]", 40));
    }

    #[test]
    fn a_visitor_is_known_from_events_or_from_details() {
        let seen = VisitorView {
            visitor_id: "v".into(),
            name: Some("Mary".into()),
            email: None,
            last_event_type: Some("chat_started".into()),
            last_seen_at: Some(5),
            details: Vec::new(),
        };
        let v = visitor_view("v", Some(seen.clone()), vec![set("a", "[]", 1)]).unwrap();
        assert_eq!((v.name.as_deref(), v.details.len()), (Some("Mary"), 1));
        let v = visitor_view("v", Some(seen), Vec::new()).unwrap();
        assert!(v.details.is_empty());
        let v = visitor_view("v", None, vec![set("a", "[]", 1)]).unwrap();
        assert_eq!((v.visitor_id.as_str(), v.name), ("v", None));
        assert!(visitor_view("v", None, Vec::new()).is_none());
    }
}
