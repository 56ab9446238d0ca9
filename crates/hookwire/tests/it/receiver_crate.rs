//! The `hookwire-receiver` crate against a real hookwire: signed deliveries
//! pass its axum extractor (with basic auth from the URL), payloads arrive
//! typed, redeliveries are caught by the deduplicator, rotation keeps old
//! verifiers working, and a receiver with the wrong secret answers 401.

use crate::backend_tests;
use crate::support::*;
use axum::routing::post;
use hookwire_receiver::{BasicAuth, Deduplicator, Receiver, Verifier, Webhook};
use tokio::sync::mpsc;

/// What the receiver's handler saw: the payload, whether it was verified,
/// and whether it was the first time for its `event_unique_id`.
type Seen = (hookwire_receiver::WebhookPayload, bool, bool);

/// A receiver built only from the crate's public API, on 127.0.0.1:0.
async fn start_receiver(
    listener: tokio::net::TcpListener,
    receiver: Receiver,
) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    let dedup = Deduplicator::new(1000);
    let handler = move |webhook: Webhook| {
        let (tx, dedup) = (tx.clone(), dedup.clone());
        async move {
            let first = dedup.first_time(&webhook.payload.event_unique_id);
            let _ = tx.send((webhook.payload, webhook.verified, first));
            "ok"
        }
    };
    let app = axum::Router::new()
        .route("/hook", post(handler))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a webhook in time")
        .expect("receiver running")
}

async fn rotate(app: &TestApp, key: &str, webhook: &str) -> String {
    let (status, body) = app
        .post(key, &format!("/api/v1/webhooks/{webhook}/secret"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["secret"].as_str().unwrap().to_string()
}

backend_tests! {
    async fn real_signed_deliveries_pass_the_extractor_typed_and_deduplicated() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://hook:p%40ss@{addr}/hook");
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat", "visitor", "pre_chat_survey"], &url)
            .await;
        let first_secret = rotate(&app, &key, &webhook).await;
        let receiver = Receiver::new()
            .verify_with(Verifier::new(&first_secret).unwrap())
            .basic_auth(BasicAuth::new("hook", "p@ss"));
        let mut rx = start_receiver(listener, receiver).await;

        let event_id = app.ingest_accepted(&chat_started("1025707")).await;
        let (payload, verified, first) = next(&mut rx).await;
        assert!(verified && first);
        assert_eq!(payload.event_unique_id, event_id);
        assert_eq!(payload.license_id, "1025707");
        let chat = payload.chat.as_ref().unwrap();
        assert_eq!(chat.id, "MH022RD0K5");
        assert_eq!(chat.messages.iter().filter(|m| m.is_whisper()).count(), 1);
        assert_eq!(payload.visitor.as_ref().unwrap().custom_variables[0].key, "Customer ID");
        assert_eq!(payload.pre_chat_survey, Some(vec![]), "skipped survey is []");
        let deliveries = app
            .wait_deliveries(&key, &webhook, |d| d.len() == 1 && d[0]["state"] == "delivered")
            .await;

        // A redelivery carries the same event_unique_id: the deduplicator
        // reports a repeat, and the extractor still verifies it.
        let (status, _) = app
            .post(&key, &format!("/api/v1/deliveries/{}/redeliver", deliveries[0]["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, 202);
        let (again, verified, first) = next(&mut rx).await;
        assert!(verified);
        assert!(!first, "the redelivery is recognised as a repeat");
        assert_eq!(again.event_unique_id, event_id);

        // Rotation: hookwire signs with the new and the old secret, so this
        // receiver, still on the old one, keeps verifying.
        let _second = rotate(&app, &key, &webhook).await;
        app.ingest_accepted(&chat_started("1025707")).await;
        let (_, verified, first) = next(&mut rx).await;
        assert!(verified && first);
    }

    async fn a_receiver_with_the_wrong_secret_answers_401_with_a_reason() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let webhook = app
            .create_webhook(&key, "visitor_queued", &["visitor"], &format!("http://{addr}/hook"))
            .await;
        rotate(&app, &key, &webhook).await;
        let wrong = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let mut rx =
            start_receiver(listener, Receiver::new().verify_with(Verifier::new(wrong).unwrap())).await;
        let mut event = chat_started("1025707");
        event["event_type"] = "visitor_queued".into();
        event.as_object_mut().unwrap().remove("chat");
        app.ingest_accepted(&event).await;
        let deliveries = app
            .wait_deliveries(&key, &webhook, |d| d.len() == 1 && d[0]["state"] == "failed")
            .await;
        let attempts = deliveries[0]["attempts"].as_array().unwrap();
        assert!(!attempts.is_empty());
        for a in attempts {
            assert_eq!(a["status"], 401);
            let excerpt = a["response_excerpt"].as_str().unwrap_or_default();
            assert!(excerpt.contains("bad_signature"), "{excerpt}");
        }
        assert!(rx.try_recv().is_err(), "the handler never ran");
    }
}
