//! Limits and backpressure: the backlog cap on ingest, the per-key rate limit.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A chat_started event with a large message, so the database fills quickly.
fn big_event(i: usize) -> Value {
    let mut event = chat_started("1");
    event["chat"]["id"] = json!(format!("BIG{i}"));
    event["chat"]["messages"][0]["text"] = json!("x".repeat(40_000));
    event
}

#[tokio::test]
async fn a_full_database_refuses_ingest_with_503_and_recovers_when_space_returns() {
    let app = spawn_app_with(|s| s.sqlite_max_size = 1024 * 1024).await;
    let key = app.create_license("1").await;
    let mut receiver = TestReceiver::start().await;
    let webhook = app
        .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
        .await;
    let mut accepted = std::collections::HashSet::new();
    let mut statuses = Vec::new();
    for i in 0..80 {
        let r = app
            .http
            .post(app.url("/api/v1/events"))
            .bearer_auth(PLATFORM_KEY)
            .json(&big_event(i))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        statuses.push(status);
        if status == 202 {
            accepted.insert(
                r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        } else {
            assert_eq!(status, 503, "{statuses:?}");
            assert!(r.headers().contains_key("retry-after"));
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
        }
    }
    let first_refusal = statuses
        .iter()
        .position(|&s| s == 503)
        .expect("the database filled up");
    assert!(first_refusal > 5, "some events fit: {statuses:?}");
    assert!(
        statuses[first_refusal..].iter().all(|&s| s == 503),
        "never 202 once writes fail: {statuses:?}"
    );

    // Space returns (the quota is lifted): ingest works again, and every
    // event accepted before reaches the receiver.
    let app = app.restart(|s| s.sqlite_max_size = 0).await;
    let extra = app.ingest_accepted(&big_event(1000)).await;
    accepted.insert(extra);
    let mut seen = std::collections::HashSet::new();
    while !accepted.is_subset(&seen) {
        seen.insert(
            receiver.next().await.json()["event_unique_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    app.wait_deliveries(&key, &webhook, |d| {
        d.len() == accepted.len() && d.iter().all(|d| d["state"] == "delivered")
    })
    .await;
}

crate::backend_tests! {
    async fn ingest_answers_503_past_max_backlog_and_recovers() {
        let app = spawn_app_with(|s| {
            s.max_backlog = 3;
            // Failed attempts wait a long time, so deliveries stay pending.
            s.delivery.retry_schedule = vec![Duration::from_secs(600)];
        })
        .await;
        let key = app.create_license("1").await;
        let receiver = TestReceiver::start().await;
        receiver.script((0..10).map(|_| Reply::Status(500, "busy")));
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        for _ in 0..3 {
            app.ingest_accepted(&chat_started("1")).await;
        }
        let r = app
            .http
            .post(app.url("/api/v1/events"))
            .bearer_auth(PLATFORM_KEY)
            .json(&chat_started("1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "backlog_full");
        let (status, _) = app
            .post_platform("/api/v1/events/batch", &json!([chat_started("1")]))
            .await;
        assert_eq!(status, 503, "batches too");
        // Nothing was stored by the refused requests.
        let (_, list) = app.get(&key, "/api/v1/deliveries").await;
        assert_eq!(list["deliveries"].as_array().unwrap().len(), 3);

        // The backlog drains (here: the webhook goes, its deliveries end failed)
        // and ingest accepts again once it is recounted.
        assert_eq!(
            app.delete(&key, &format!("/api/v1/webhooks/{webhook}"))
                .await,
            204
        );
        let status = eventually("ingest to accept again", Duration::from_secs(10), async || {
            match app.ingest(&chat_started("1")).await {
                (202, _) => Ok(202),
                (status, body) => Err(format!("{status} {body}")),
            }
        })
        .await;
        assert_eq!(status, 202);
    }

    async fn each_key_is_rate_limited_with_retry_after() {
        let app = spawn_app_with(|s| s.rate_limit_per_second = 3.0).await;
        let key = app.create_license("1").await; // the platform key's first request
        let other = app.create_license("2").await;
        let mut statuses = Vec::new();
        let mut retry_after = None;
        for _ in 0..6 {
            let r = app
                .http
                .get(app.url("/api/v1/webhooks"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
            if r.status() == 429 {
                retry_after = r.headers().get("retry-after").cloned();
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
            }
        }
        assert_eq!(&statuses[..3], &[200, 200, 200]);
        assert!(statuses[3..].contains(&429), "{statuses:?}");
        assert_eq!(retry_after.unwrap(), "1");
        // Another key has its own bucket; requests without a key are not counted.
        assert_eq!(app.get(&other, "/api/v1/webhooks").await.0, 200);
        for _ in 0..5 {
            let r = app.http.get(app.url("/healthz")).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
        // A refused request takes no token, so asking until one is there
        // does not hold the refill back.
        let status = eventually("the bucket to refill", Duration::from_secs(10), async || {
            match app.get(&key, "/api/v1/webhooks").await {
                (200, _) => Ok(200),
                (status, body) => Err(format!("{status} {body}")),
            }
        })
        .await;
        assert_eq!(status, 200, "refilled");
    }
}
