//! The store's contract, on both backends: the store opened as the server
//! opens it (`server::open_store`) and driven through `dyn Store` alone,
//! with the database written straight with SQL where a test needs what
//! hookwire never writes (rows from an older version, corrupt values).

use crate::backend_tests;
use crate::support::*;
use hookwire::config::DatabaseUrl;
use hookwire::secret::Cipher;
use hookwire::server::open_store;
use hookwire::store::rules;
use hookwire::store::{
    now_millis, AttemptRecord, Backlog, DeliveryQuery, DeliveryState, DetailsSet, Handoff,
    HeldDeliveries, IngestOutcome, LicenseRows, Millis, NewEvent, NewWebhook, NextState,
    PruneScope, QueueStats, Redelivery, Store, StoreError, StoreResult, WebSession, WebhookPatch,
};
use hookwire_livechat::{DataType, DataTypes, EventType, IncomingEvent, TargetUrl};
use serde_json::json;
use std::sync::Arc;
use tempfile::TempDir;

/// A store on a fresh database of the test's backend, and where it is.
pub(crate) struct TestStore {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) database: DatabaseUrl,
    _dir: TempDir,
}

pub(crate) async fn open() -> TestStore {
    let dir = TempDir::new().unwrap();
    let mut settings = test_settings(&dir);
    settings.database = fresh_database(&dir).await;
    let store = open_store(&settings, false).await.unwrap();
    TestStore {
        store,
        database: settings.database,
        _dir: dir,
    }
}

impl TestStore {
    /// Runs `statements` straight on the database, behind the store's back.
    pub(crate) async fn sql(&self, statements: &str) {
        match &self.database {
            DatabaseUrl::Sqlite(path) => {
                let (path, statements) = (path.clone(), statements.to_string());
                tokio::task::spawn_blocking(move || {
                    let c = rusqlite::Connection::open(path).unwrap();
                    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                    c.execute_batch(&statements).unwrap();
                })
                .await
                .unwrap();
            }
            DatabaseUrl::Postgres(url) => {
                let (client, connection) =
                    tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
                        .await
                        .unwrap();
                tokio::spawn(connection);
                client.batch_execute(statements).await.unwrap();
            }
        }
    }

    /// The rows of `attempts` as `(delivery_id, at)`, oldest first.
    async fn attempt_rows(&self) -> Vec<(i64, Millis)> {
        const SQL: &str = "SELECT delivery_id, at FROM attempts ORDER BY at";
        match &self.database {
            DatabaseUrl::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                let mut stmt = c.prepare(SQL).unwrap();
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
                rows.collect::<Result<_, _>>().unwrap()
            }
            DatabaseUrl::Postgres(url) => {
                let (client, connection) =
                    tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
                        .await
                        .unwrap();
                tokio::spawn(connection);
                let rows = client.query(SQL, &[]).await.unwrap();
                rows.iter().map(|r| (r.get(0), r.get(1))).collect()
            }
        }
    }
}

/// An event of `kind` about chat `C1` (with `tags`) and visitor `V1`.
fn event_of(license: &str, unique_id: &str, kind: &str, tags: &[&str], now: Millis) -> NewEvent {
    let body = json!({
        "event_type": kind, "license_id": license,
        "chat": {"id": "C1", "messages": [], "tags": tags},
        "visitor": {"id": "V1", "name": "Mary", "email": "m@example.com"}
    });
    let ev = IncomingEvent::from_json(body.to_string().as_bytes()).unwrap();
    NewEvent {
        unique_id: unique_id.into(),
        license_id: ev.license_id,
        event_type: ev.event_type,
        sections: ev.sections,
        token_hash: None,
        token_expires_at: now + 1000,
        chat_tags: ev.chat_tags,
        visitor: ev.visitor,
        order_key: ev.ordering_key,
        idempotency: None,
        received_at: now,
    }
}

pub(crate) fn event(license: &str, unique_id: &str, now: Millis) -> NewEvent {
    event_of(license, unique_id, "chat_started", &[], now)
}

/// A webhook for `event_type` that wants `data_types`.
fn webhook_for(
    id: &str,
    license: &str,
    event_type: EventType,
    data_types: &[DataType],
    now: Millis,
) -> NewWebhook {
    NewWebhook {
        id: id.into(),
        license_id: license.into(),
        event_type,
        data_types: DataTypes::of(data_types),
        url: Cipher::new(&[7; 32]).seal_url(&TargetUrl::parse("https://example.com/h").unwrap()),
        token: "t".into(),
        ordered: false,
        created_at: now,
    }
}

/// A `chat_started` webhook that wants the visitor.
pub(crate) fn visitor_webhook(id: &str, license: &str, now: Millis) -> NewWebhook {
    webhook_for(
        id,
        license,
        EventType::ChatStarted,
        &[DataType::Visitor],
        now,
    )
}

pub(crate) fn all_of(license: &str) -> DeliveryQuery<'_> {
    DeliveryQuery {
        license_id: license,
        webhook_id: None,
        state: None,
        event_type: None,
        before: None,
        limit: 10,
    }
}

/// The message of a `Corrupt` error; anything else fails the test.
pub(crate) fn corrupt<T: std::fmt::Debug>(result: StoreResult<T>) -> String {
    match result {
        Err(StoreError::Corrupt(what)) => what,
        other => panic!("expected StoreError::Corrupt, got {other:?}"),
    }
}

/// One license with a visitor webhook and one event delivered to it:
/// returns the store and the delivery's id.
async fn one_delivery() -> (TestStore, i64) {
    let t = open().await;
    let now = now_millis();
    t.store.create_license("7", "k7", now).await.unwrap();
    t.store
        .create_webhook(visitor_webhook("w", "7", now))
        .await
        .unwrap();
    t.store
        .ingest(vec![event("7", "e1", now)], None)
        .await
        .unwrap();
    let id = t.store.list_deliveries(all_of("7")).await.unwrap()[0].id;
    (t, id)
}

backend_tests! {
    async fn licenses_bodies_samples_and_queue() {
        let t = open().await;
        let store = &t.store;
        let now = now_millis();
        for l in ["2002", "1025707"] {
            store.create_license(l, &format!("k{l}"), now).await.unwrap();
        }
        assert_eq!(store.list_licenses().await.unwrap(), ["1025707", "2002"]);
        store
            .create_webhook(visitor_webhook("w1", "1025707", now))
            .await
            .unwrap();
        store
            .ingest(
                vec![event("1025707", "e1", now - 10), event("1025707", "e2", now)],
                None,
            )
            .await
            .unwrap();
        let queue = store.queue_stats("1025707").await.unwrap();
        assert_eq!(queue.pending, 2);
        assert!(queue.oldest_pending_at.is_some());
        assert_eq!(store.queue_stats("2002").await.unwrap(), QueueStats::default());

        let list = store
            .list_deliveries(DeliveryQuery {
                event_type: Some(EventType::ChatStarted),
                ..all_of("1025707")
            })
            .await
            .unwrap();
        assert_eq!(list.len(), 2);
        let none = store
            .list_deliveries(DeliveryQuery {
                event_type: Some(EventType::TicketCreated),
                ..all_of("1025707")
            })
            .await
            .unwrap();
        assert!(none.is_empty());

        let (newest, oldest) = (list[0].id, list[1].id);
        let (body, types) = store.delivery_body("1025707", newest).await.unwrap().unwrap();
        assert_eq!(body.unique_id, "e2");
        assert_eq!(types.names(), ["visitor"]);
        assert!(body.sections[DataType::Visitor.index()]
            .as_ref()
            .unwrap()
            .get()
            .contains("Mary"));
        assert!(store.delivery_body("2002", newest).await.unwrap().is_none());

        // An attempt is recorded for a delivery this node holds.
        let claimed = store.claim_due(now, 10, now + 60_000, vec![]).await.unwrap();
        assert_eq!(claimed.len(), 2);
        for (id, at, error, next) in [
            (oldest, now - 5, Some("HTTP 500".to_string()), NextState::Failed),
            (newest, now - 1, None, NextState::Delivered),
        ] {
            store
                .record_attempt(AttemptRecord {
                    delivery_id: id,
                    webhook_id: "W1".to_string(),
                    at,
                    status: Some(if error.is_some() { 500 } else { 200 }),
                    latency_ms: 7,
                    error,
                    response_excerpt: None,
                    next,
                    order_key: None,
                })
                .await
                .unwrap();
        }
        let samples = store.attempt_samples("1025707", now - 60_000, 10).await.unwrap();
        assert_eq!(samples.webhook_ids, ["w1"]);
        let seen: Vec<(bool, Millis)> = samples.samples.iter().map(|s| (s.ok, s.at)).collect();
        assert_eq!(seen, [(false, now - 5), (true, now - 1)], "oldest first");
        assert!(!samples.truncated);
        let newest_only = store.attempt_samples("1025707", 0, 1).await.unwrap();
        assert!(newest_only.truncated);
        assert_eq!(newest_only.samples[0].at, now - 1);
        assert_eq!(store.queue_stats("1025707").await.unwrap().pending, 0);
    }

    /// On SQLite attempts live in two places (schema_8.sql): the first
    /// recorded one in its delivery's row, later ones in `attempts`, and a
    /// delivery from before version 8 may have rows older than the one in
    /// its row; PostgreSQL keeps them all in `attempts`. Every reader sees
    /// one list, in the order the attempts were made.
    async fn attempts_read_as_one_log_in_the_order_they_were_made() {
        let t = open().await;
        let store = &t.store;
        let now = now_millis();
        store.create_license("7", "k7", now).await.unwrap();
        store.create_webhook(visitor_webhook("w", "7", now)).await.unwrap();
        store
            .ingest(vec![event("7", "old", now), event("7", "new", now)], None)
            .await
            .unwrap();
        let list = store.list_deliveries(all_of("7")).await.unwrap();
        let (new, old) = (list[0].id, list[1].id);
        // The attempt an older version logged for `old`.
        t.sql(&format!(
            "INSERT INTO attempts (delivery_id, at, status, latency_ms, error)
             VALUES ({old}, {}, 503, 4, 'HTTP 503')",
            now - 30
        ))
        .await;
        let record = |id, at, ok: bool, next| AttemptRecord {
            delivery_id: id,
            webhook_id: "w".into(),
            at,
            status: Some(if ok { 200 } else { 500 }),
            latency_ms: 5,
            error: (!ok).then(|| "HTTP 500".to_string()),
            response_excerpt: Some(format!("at {at}")),
            next,
            order_key: None,
        };
        // Recorded as the dispatcher would: each attempt of a delivery
        // this node claimed, `old` claimed again for its retry.
        assert_eq!(store.claim_due(now, 10, now + 60_000, vec![]).await.unwrap().len(), 2);
        for r in [
            record(old, now - 20, false, NextState::RetryAt(now - 10)),
            record(new, now - 15, true, NextState::Delivered),
        ] {
            store.record_attempt(r).await.unwrap();
        }
        let again = store.claim_due(now, 10, now + 60_000, vec![]).await.unwrap();
        assert_eq!(again.iter().map(|j| j.delivery_id).collect::<Vec<_>>(), [old]);
        store
            .record_attempt(record(old, now - 10, true, NextState::Delivered))
            .await
            .unwrap();

        let list = store.list_deliveries(all_of("7")).await.unwrap();
        let log = |i: usize| -> Vec<(Millis, Option<u16>, Option<String>)> {
            list[i]
                .attempts
                .iter()
                .map(|a| (a.at, a.status, a.response_excerpt.clone()))
                .collect()
        };
        assert_eq!(log(0), [(now - 15, Some(200), Some(format!("at {}", now - 15)))]);
        assert_eq!(
            log(1),
            [
                (now - 30, Some(503), None),
                (now - 20, Some(500), Some(format!("at {}", now - 20))),
                (now - 10, Some(200), Some(format!("at {}", now - 10))),
            ]
        );
        assert_eq!(list[1].attempts[1].error.as_deref(), Some("HTTP 500"));
        assert!(list.iter().all(|d| d.state == DeliveryState::Delivered));
        assert!(list.iter().all(|d| d.next_attempt_at.is_none()));
        // Where they were written: on SQLite `new`'s only attempt and
        // `old`'s first since the upgrade in the rows, the rest in `attempts`.
        let expected = match backend() {
            Backend::Sqlite => vec![(old, now - 30), (old, now - 10)],
            Backend::Postgres => vec![
                (old, now - 30),
                (old, now - 20),
                (new, now - 15),
                (old, now - 10),
            ],
        };
        assert_eq!(t.attempt_rows().await, expected);

        let samples = store.attempt_samples("7", now - 60_000, 10).await.unwrap();
        let seen: Vec<(Millis, bool)> = samples.samples.iter().map(|s| (s.at, s.ok)).collect();
        assert_eq!(
            seen,
            [(now - 30, false), (now - 20, false), (now - 15, true), (now - 10, true)],
            "both places, oldest first"
        );
        assert!(!samples.truncated);
        let newest = store.attempt_samples("7", now - 60_000, 2).await.unwrap();
        assert!(newest.truncated);
        let kept: Vec<Millis> = newest.samples.iter().map(|s| s.at).collect();
        assert_eq!(kept, [now - 15, now - 10], "the newest two, from either place");
        let since = store.attempt_samples("7", now - 20, 10).await.unwrap();
        assert_eq!(since.samples.len(), 3, "the window applies to both places");
    }

    /// Events in one call (one transaction, set based on PostgreSQL) and in
    /// calls of their own are decided as `rules::tags` decides them one at
    /// a time.
    async fn chat_changed_is_delivered_as_the_tag_rule_decides() {
        let t = open().await;
        let store = &t.store;
        let now = now_millis();
        store.create_license("7", "k7", now).await.unwrap();
        store
            .create_webhook(webhook_for("w", "7", EventType::ChatChanged, &[DataType::Chat], now))
            .await
            .unwrap();
        let batches: &[&[(&str, &[&str])]] = &[
            &[
                ("chat_started", &["a"]),
                ("chat_changed", &["a"]),
                ("chat_changed", &["b", "a"]),
                ("chat_changed", &["a", "b"]),
                ("chat_ended", &["c"]),
                ("chat_changed", &["c"]),
            ],
            &[("chat_changed", &["c"])],
            &[("chat_changed", &[])],
            &[("chat_changed", &[]), ("chat_changed", &["d"])],
        ];
        let mut last_seen: Option<String> = None;
        let mut n = 0;
        for batch in batches {
            let mut events = Vec::new();
            let mut expected = Vec::new();
            for (kind, tags) in batch.iter() {
                n += 1;
                let ev = event_of("7", &format!("e{n}"), kind, tags, now + n);
                let (_, tags) = ev.chat_tags.clone().unwrap();
                let delivers = rules::tags::delivers(ev.event_type, last_seen.as_deref(), &tags);
                let matches = ev.event_type == EventType::ChatChanged;
                expected.push(usize::from(delivers && matches));
                last_seen = Some(tags);
                events.push(ev);
            }
            let counts: Vec<usize> = store
                .ingest(events, None)
                .await
                .unwrap()
                .into_iter()
                .map(|o| match o {
                    hookwire::store::IngestOutcome::Accepted { delivery_count, .. } => {
                        delivery_count
                    }
                    other => panic!("not accepted: {other:?}"),
                })
                .collect();
            assert_eq!(counts, expected, "batch {batch:?}");
        }
    }

    async fn an_idempotency_key_replays_the_same_request_and_refuses_another() {
        use hookwire::store::IngestOutcome;
        let t = open().await;
        let store = &t.store;
        let now = now_millis();
        store.create_license("7", "k7", now).await.unwrap();
        store.create_webhook(visitor_webhook("w", "7", now)).await.unwrap();
        let keyed = |id: &str, hash: &str| NewEvent {
            idempotency: Some(("key-1".into(), hash.into())),
            ..event("7", id, now)
        };
        let outcomes = store
            .ingest(vec![keyed("e1", "h1"), keyed("e2", "h1"), keyed("e3", "h2")], None)
            .await
            .unwrap();
        assert!(
            matches!(&outcomes[0], IngestOutcome::Accepted { event_id, delivery_count: 1, .. } if event_id == "e1"),
            "{outcomes:?}"
        );
        assert!(
            matches!(&outcomes[1], IngestOutcome::Replayed { event_id, delivery_count: 1 } if event_id == "e1"),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[2], IngestOutcome::KeyReused), "{outcomes:?}");
        let again = store.ingest(vec![keyed("e4", "h1")], None).await.unwrap();
        assert!(matches!(&again[0], IngestOutcome::Replayed { event_id, .. } if event_id == "e1"));
        assert_eq!(store.list_deliveries(all_of("7")).await.unwrap().len(), 1);
    }

    /// Puts and replaces details sets as `rules::visitors::merge_details`
    /// does, and lists them in its order.
    async fn visitor_details_merge_by_set_id() {
        let t = open().await;
        let store = &t.store;
        let now = now_millis();
        store.create_license("7", "k7", now).await.unwrap();
        assert!(store.visitor("7", "V1").await.unwrap().is_none());
        let set = |id: &str, icon: Option<&str>, fields: &str, at: Millis| DetailsSet {
            set_id: id.into(),
            icon: icon.map(str::to_string),
            fields_json: fields.into(),
            updated_at: at,
        };
        let puts = [
            set("orders", Some("https://example.com/o.png"), r#"[{"name":"n","value":"1"}]"#, now),
            set("crm", None, "[]", now + 1),
            set("orders", None, r#"[{"name":"n","value":"2"}]"#, now + 2),
            set("billing", None, "[]", now + 1),
        ];
        let mut expected = Vec::new();
        for put in puts {
            rules::visitors::merge_details(&mut expected, put.clone());
            store.put_visitor_details("7", "V1", put).await.unwrap();
            let v = store.visitor("7", "V1").await.unwrap().expect("known by its details");
            assert_eq!(v.details, expected);
            assert_eq!((v.visitor_id.as_str(), v.name.as_deref()), ("V1", None));
        }
        // Seen in an event too: the details stay with the visitor.
        store.create_webhook(visitor_webhook("w", "7", now)).await.unwrap();
        store.ingest(vec![event("7", "e1", now)], None).await.unwrap();
        let v = store.visitor("7", "V1").await.unwrap().unwrap();
        assert_eq!(v.name.as_deref(), Some("Mary"));
        assert_eq!(v.details, expected);
        let recent = store.recent_visitors("7", 10).await.unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].details, expected);
        assert!(store.visitor("8", "V1").await.unwrap().is_none(), "per license");
    }

    async fn an_unknown_delivery_state_is_corrupt() {
        let (t, id) = one_delivery().await;
        t.sql(&format!("UPDATE deliveries SET state = 'resting' WHERE id = {id}")).await;
        let what = corrupt(t.store.list_deliveries(all_of("7")).await);
        assert_eq!(what, format!(r#"delivery {id}: state: unknown delivery state "resting""#));
    }

    async fn an_unknown_event_type_is_corrupt() {
        let (t, id) = one_delivery().await;
        t.sql("UPDATE events SET event_type = 'chat_paused' WHERE unique_id = 'e1'").await;
        let what = corrupt(t.store.list_deliveries(all_of("7")).await);
        assert!(what.starts_with(&format!("delivery {id}: event_type:")), "{what}");
        let what = corrupt(t.store.delivery_body("7", id).await);
        assert!(what.starts_with("event e1: event_type:"), "{what}");
        let what = corrupt(t.store.claim_due(now_millis() + 1, 10, now_millis() + 60_000, vec![]).await);
        assert!(what.starts_with("event e1: event_type:"), "{what}");
    }

    async fn a_section_that_is_not_json_is_corrupt() {
        let (t, id) = one_delivery().await;
        t.sql("UPDATE events SET visitor = '{\"id\": \"V1\"' WHERE unique_id = 'e1'").await;
        let what = corrupt(t.store.delivery_body("7", id).await);
        assert!(what.starts_with("event e1: visitor: not JSON"), "{what}");
        let what = corrupt(t.store.claim_due(now_millis() + 1, 10, now_millis() + 60_000, vec![]).await);
        assert!(what.starts_with("event e1: visitor: not JSON"), "{what}");
    }

    async fn a_webhook_that_cannot_be_read_is_corrupt() {
        let (t, _) = one_delivery().await;
        t.sql("UPDATE webhooks SET event_type = 'chat_paused' WHERE id = 'w'").await;
        let what = corrupt(t.store.list_webhooks("7").await);
        assert!(what.starts_with("webhook w: event_type:"), "{what}");
        t.sql("UPDATE webhooks SET event_type = 'chat_started', url = 'ftp://example.com/' WHERE id = 'w'").await;
        let what = corrupt(t.store.get_webhook("7", "w").await);
        assert!(what.starts_with("webhook w: url:"), "{what}");
    }

    /// A disabled webhook's deliveries are made held: never claimed, never
    /// redelivered by hand, counted apart; enabling it makes them pending
    /// (claimed in the order made) or discarded, and deleting it discards them.
    async fn held_deliveries_wait_for_their_webhook() {
        let t = open().await;
        let store = &t.store;
        let now = now_millis();
        store.create_license("7", "k7", now).await.unwrap();
        store.create_webhook(visitor_webhook("w", "7", now)).await.unwrap();
        let switch = |enabled: bool, held: HeldDeliveries| WebhookPatch {
            enabled: Some(enabled),
            held,
            at: now,
            ..WebhookPatch::default()
        };
        let off = switch(false, HeldDeliveries::Deliver);
        let hook = store.update_webhook("7", "w", off).await.unwrap().unwrap();
        assert!(!hook.enabled);
        let handoff = Handoff {
            lease_until: now + 60_000,
            saturated: Arc::default(),
        };
        let outcomes = store
            .ingest(vec![event("7", "e1", now), event("7", "e2", now)], Some(handoff.clone()))
            .await
            .unwrap();
        for outcome in &outcomes {
            assert!(
                matches!(outcome, IngestOutcome::Accepted { deliveries, delivery_count: 1, held: 1, .. } if deliveries.is_empty()),
                "{outcome:?}"
            );
        }
        assert_eq!(store.backlog().await.unwrap(), Backlog { pending: 0, held: 2 });
        let queue = store.queue_stats("7").await.unwrap();
        assert_eq!((queue.pending, queue.held), (0, 2));
        assert_eq!(store.get_webhook("7", "w").await.unwrap().unwrap().held_deliveries, 2);
        let list = store.list_deliveries(all_of("7")).await.unwrap();
        assert!(list.iter().all(|d| d.state == DeliveryState::Held && d.next_attempt_at.is_none()));
        let held = store
            .list_deliveries(DeliveryQuery { state: Some(DeliveryState::Held), ..all_of("7") })
            .await
            .unwrap();
        assert_eq!(held.len(), 2);
        let claim = || store.claim_due(now_millis() + 1, 10, now_millis() + 60_000, vec![]);
        assert!(claim().await.unwrap().is_empty(), "held is never claimed");
        assert_eq!(store.redeliver("7", list[0].id, now).await.unwrap(), Redelivery::Held);
        assert_eq!(store.redeliver("7", 999_999, now).await.unwrap(), Redelivery::Unknown);

        let on = switch(true, HeldDeliveries::Deliver);
        let hook = store.update_webhook("7", "w", on).await.unwrap().unwrap();
        assert!(hook.enabled && hook.held_deliveries == 0);
        assert_eq!(store.backlog().await.unwrap(), Backlog { pending: 2, held: 0 });
        let jobs = claim().await.unwrap();
        let claimed: Vec<&str> = jobs.iter().map(|j| j.event.unique_id.as_str()).collect();
        assert_eq!(claimed, ["e1", "e2"], "in the order they were made");

        // Off again: held, then discarded by enabling with Discard.
        store.update_webhook("7", "w", switch(false, HeldDeliveries::Deliver)).await.unwrap();
        store.ingest(vec![event("7", "e3", now)], None).await.unwrap();
        let on = switch(true, HeldDeliveries::Discard);
        store.update_webhook("7", "w", on).await.unwrap();
        let list = store.list_deliveries(all_of("7")).await.unwrap();
        assert_eq!(list[0].state, DeliveryState::Discarded);
        assert_eq!(store.backlog().await.unwrap().held, 0);
        assert!(claim().await.unwrap().is_empty(), "discarded is never claimed");
        assert_eq!(store.redeliver("7", list[0].id, now).await.unwrap(), Redelivery::Pending);

        // Off, held, and the webhook deleted: discarded.
        store.update_webhook("7", "w", switch(false, HeldDeliveries::Deliver)).await.unwrap();
        store.ingest(vec![event("7", "e4", now)], None).await.unwrap();
        assert!(store.delete_webhook("7", "w", now).await.unwrap());
        let list = store.list_deliveries(all_of("7")).await.unwrap();
        assert_eq!(list[0].state, DeliveryState::Discarded);
        assert_eq!(store.backlog().await.unwrap().held, 0);
    }

    async fn web_sessions_and_portal_links_expire_and_are_used_once() {
        let t = open().await;
        let store = &t.store;
        let now = now_millis();
        store.create_license("7", "k7", now).await.unwrap();
        let session = |expires_at| WebSession {
            operator: false,
            license: Some("7".into()),
            csrf: "c".into(),
            framed: false,
            expires_at,
        };
        store.create_web_session("live", session(now + 60_000)).await.unwrap();
        store.create_web_session("old", session(now - 1)).await.unwrap();
        assert_eq!(store.web_session("live", now).await.unwrap(), Some(session(now + 60_000)));
        assert_eq!(store.web_session("old", now).await.unwrap(), None, "expired");
        store.set_web_session_license("live", "8").await.unwrap();
        let moved = store.web_session("live", now).await.unwrap().unwrap();
        assert_eq!(moved.license.as_deref(), Some("8"));

        assert!(store.create_portal_link("p1", "7", now + 60_000).await.unwrap());
        assert!(store.create_portal_link("p2", "7", now - 1).await.unwrap());
        assert!(!store.create_portal_link("p3", "unknown", now + 60_000).await.unwrap());
        assert_eq!(store.take_portal_link("p1", now).await.unwrap().as_deref(), Some("7"));
        assert_eq!(store.take_portal_link("p1", now).await.unwrap(), None, "used once");
        assert_eq!(store.take_portal_link("p2", now).await.unwrap(), None, "expired");

        store.create_portal_link("p4", "7", now - 1).await.unwrap();
        assert_eq!(store.prune_web_sessions(now).await.unwrap(), 2, "the old session and p4");
        assert!(store.web_session("live", now).await.unwrap().is_some());
        store.delete_web_session("live").await.unwrap();
        assert_eq!(store.web_session("live", now).await.unwrap(), None, "signed out");
    }

    async fn retention_prunes_only_finished_work_past_the_cutoff() {
        let (t, id) = one_delivery().await;
        let store = &t.store;
        let now = now_millis();
        let seven = rules::retention::RetentionPeriod::parse("7d").unwrap();
        assert!(store.set_license_retention("7", Some(seven)).await.unwrap());
        assert!(!store.set_license_retention("nope", Some(seven)).await.unwrap());
        let stored = store.license_retention("7").await.unwrap().unwrap();
        assert_eq!((stored.retention, stored.pruned_through_id), (Some(seven), 0));
        assert_eq!(store.license_retentions().await.unwrap().len(), 1);
        assert!(store.oldest_kept_delivery("7").await.unwrap().is_some());

        let scope = |cutoff| PruneScope { license_id: "7", cutoff, after: 0 };
        // Pending, however far the cutoff: kept, and so is its event.
        let batch = store
            .prune_license_batch(LicenseRows::Deliveries, scope(now + 60_000))
            .await
            .unwrap();
        assert_eq!((batch.deleted, batch.resume_after), (0, None));
        let batch = store
            .prune_license_batch(LicenseRows::Events, scope(now + 60_000))
            .await
            .unwrap();
        assert_eq!(batch.deleted, 0);
        // Delivered five seconds ago: kept under a cutoff before that, gone after.
        t.sql(&format!(
            "UPDATE deliveries SET state = 'delivered', updated_at = {}",
            now - 5_000
        ))
        .await;
        for (cutoff, deleted) in [(now - 6_000, 0), (now + 60_000, 1)] {
            let batch = store
                .prune_license_batch(LicenseRows::Deliveries, scope(cutoff))
                .await
                .unwrap();
            assert_eq!(batch.deleted, deleted, "cutoff {}", cutoff - now);
        }
        assert_eq!(
            store.license_retention("7").await.unwrap().unwrap().pruned_through_id,
            id
        );
        assert!(store.oldest_kept_delivery("7").await.unwrap().is_none());
        let batch = store
            .prune_license_batch(LicenseRows::Events, scope(now + 60_000))
            .await
            .unwrap();
        assert_eq!(batch.deleted, 1);
        assert!(store.list_deliveries(all_of("7")).await.unwrap().is_empty());

        // One prune pass at a time (PostgreSQL's advisory lock; SQLite has
        // one process).
        assert!(store.begin_prune_pass().await.unwrap());
        let other = open_store(
            &{
                let dir = TempDir::new().unwrap();
                let mut settings = test_settings(&dir);
                settings.database = t.database.clone();
                settings
            },
            false,
        )
        .await
        .unwrap();
        let concurrent = other.begin_prune_pass().await.unwrap();
        assert_eq!(concurrent, matches!(t.database, DatabaseUrl::Sqlite(_)));
        other.end_prune_pass().await;
        store.end_prune_pass().await;
        assert!(other.begin_prune_pass().await.unwrap());
        other.end_prune_pass().await;
    }
}
