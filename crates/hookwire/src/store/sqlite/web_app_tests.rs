//! The store methods the web app added: the contract other backends fill.

use super::*;
use hookwire_livechat::{IncomingEvent, TargetUrl};

fn event(license: &str, unique_id: &str, now: Millis) -> NewEvent {
    let body = serde_json::json!({
        "event_type": "chat_started", "license_id": license,
        "chat": {"id": "C1", "messages": [], "tags": []},
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
        idempotency: None,
        received_at: now,
    }
}

/// A `chat_started` webhook that wants the visitor.
fn visitor_webhook(id: &str, license: &str, now: Millis) -> NewWebhook {
    NewWebhook {
        id: id.into(),
        license_id: license.into(),
        event_type: EventType::ChatStarted,
        data_types: DataTypes::of(&[DataType::Visitor]),
        url: crate::secret::Cipher::new(&[7; 32])
            .seal_url(&TargetUrl::parse("https://example.com/h").unwrap()),
        token: "t".into(),
        created_at: now,
    }
}

#[tokio::test]
async fn licenses_bodies_samples_and_queue() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite"), "normal", 0).unwrap();
    let now = now_millis();
    for l in ["2002", "1025707"] {
        store
            .create_license(l, &format!("k{l}"), now)
            .await
            .unwrap();
    }
    assert_eq!(store.list_licenses().await.unwrap(), ["1025707", "2002"]);
    store
        .create_webhook(visitor_webhook("w1", "1025707", now))
        .await
        .unwrap();
    store
        .ingest(
            vec![
                event("1025707", "e1", now - 10),
                event("1025707", "e2", now),
            ],
            None,
        )
        .await
        .unwrap();
    let queue = store.queue_stats("1025707").await.unwrap();
    assert_eq!(queue.pending, 2);
    assert!(queue.oldest_pending_at.is_some());
    assert_eq!(
        store.queue_stats("2002").await.unwrap(),
        QueueStats::default()
    );

    let list = store
        .list_deliveries(DeliveryQuery {
            license_id: "1025707",
            webhook_id: None,
            state: None,
            event_type: Some(EventType::ChatStarted),
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    let none = store
        .list_deliveries(DeliveryQuery {
            license_id: "1025707",
            webhook_id: None,
            state: None,
            event_type: Some(EventType::TicketCreated),
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(none.is_empty());

    let (newest, oldest) = (list[0].id, list[1].id);
    let (body, types) = store
        .delivery_body("1025707", newest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.unique_id, "e2");
    assert_eq!(types.names(), ["visitor"]);
    assert!(body.sections[DataType::Visitor.index()]
        .as_ref()
        .unwrap()
        .get()
        .contains("Mary"));
    assert!(store.delivery_body("2002", newest).await.unwrap().is_none());

    for (id, at, error, next) in [
        (
            oldest,
            now - 5,
            Some("HTTP 500".to_string()),
            NextState::Failed,
        ),
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
            })
            .await
            .unwrap();
    }
    let samples = store
        .attempt_samples("1025707", now - 60_000, 10)
        .await
        .unwrap();
    assert_eq!(samples.webhook_ids, ["w1"]);
    let seen: Vec<(bool, Millis)> = samples.samples.iter().map(|s| (s.ok, s.at)).collect();
    assert_eq!(seen, [(false, now - 5), (true, now - 1)], "oldest first");
    assert!(!samples.truncated);
    let newest_only = store.attempt_samples("1025707", 0, 1).await.unwrap();
    assert!(newest_only.truncated);
    assert_eq!(newest_only.samples[0].at, now - 1);
    assert_eq!(store.queue_stats("1025707").await.unwrap().pending, 0);
}

/// Attempts live in two places (schema_8.sql): the first recorded one in its
/// delivery's row, later ones in `attempts`, and a delivery from before
/// version 8 may have rows older than the one in its row. Every reader sees
/// one list, in the order the attempts were made.
#[tokio::test]
async fn attempts_in_the_delivery_row_and_in_their_own_read_as_one_log() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite"), "normal", 0).unwrap();
    let now = now_millis();
    store.create_license("7", "k7", now).await.unwrap();
    store
        .create_webhook(visitor_webhook("w", "7", now))
        .await
        .unwrap();
    store
        .ingest(vec![event("7", "old", now), event("7", "new", now)], None)
        .await
        .unwrap();
    let all = || DeliveryQuery {
        license_id: "7",
        webhook_id: None,
        state: None,
        event_type: None,
        before: None,
        limit: 10,
    };
    let list = store.list_deliveries(all()).await.unwrap();
    let (new, old) = (list[0].id, list[1].id);
    // The attempt a version 7 database logged for `old`.
    store
        .writer
        .write(move |c| {
            c.execute(
                "INSERT INTO attempts (delivery_id, at, status, latency_ms, error)
                 VALUES (?1, ?2, 503, 4, 'HTTP 503')",
                params![old, now - 30],
            )
            .map_err(unavailable)
        })
        .await
        .unwrap();
    let record = |id, at, ok: bool, next| AttemptRecord {
        delivery_id: id,
        webhook_id: "w".into(),
        at,
        status: Some(if ok { 200 } else { 500 }),
        latency_ms: 5,
        error: (!ok).then(|| "HTTP 500".to_string()),
        response_excerpt: Some(format!("at {at}")),
        next,
    };
    for r in [
        record(old, now - 20, false, NextState::RetryAt(now - 10)),
        record(new, now - 15, true, NextState::Delivered),
        record(old, now - 10, true, NextState::Delivered),
    ] {
        store.record_attempt(r).await.unwrap();
    }

    let list = store.list_deliveries(all()).await.unwrap();
    let log = |i: usize| -> Vec<(Millis, Option<u16>, Option<String>)> {
        list[i]
            .attempts
            .iter()
            .map(|a| (a.at, a.status, a.response_excerpt.clone()))
            .collect()
    };
    assert_eq!(
        log(0),
        [(now - 15, Some(200), Some(format!("at {}", now - 15)))]
    );
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
    // Where they were written: `new`'s only attempt and `old`'s first since
    // the upgrade in the rows, the rest in `attempts`.
    let rows: Vec<(i64, Millis)> = store
        .writer
        .write(|c| {
            c.prepare("SELECT delivery_id, at FROM attempts ORDER BY at")
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(unavailable)
        })
        .await
        .unwrap();
    assert_eq!(rows, [(old, now - 30), (old, now - 10)]);

    let samples = store.attempt_samples("7", now - 60_000, 10).await.unwrap();
    let seen: Vec<(Millis, bool)> = samples.samples.iter().map(|s| (s.at, s.ok)).collect();
    assert_eq!(
        seen,
        [
            (now - 30, false),
            (now - 20, false),
            (now - 15, true),
            (now - 10, true)
        ],
        "both places, oldest first"
    );
    assert!(!samples.truncated);
    let newest = store.attempt_samples("7", now - 60_000, 2).await.unwrap();
    assert!(newest.truncated);
    let kept: Vec<Millis> = newest.samples.iter().map(|s| s.at).collect();
    assert_eq!(
        kept,
        [now - 15, now - 10],
        "the newest two, from either place"
    );
    let since = store.attempt_samples("7", now - 20, 10).await.unwrap();
    assert_eq!(since.samples.len(), 3, "the window applies to both places");
}
