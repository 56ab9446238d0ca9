//! The store methods the web app added: the contract other backends fill.

use super::*;
use hookwire_livechat::IncomingEvent;

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
        .create_webhook(NewWebhook {
            id: "w1".into(),
            license_id: "1025707".into(),
            event_type: EventType::ChatStarted,
            data_types: DataTypes::of(&[DataType::Visitor]),
            url: TargetUrl::parse("https://example.com/h").unwrap(),
            token: "t".into(),
            created_at: now,
        })
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
