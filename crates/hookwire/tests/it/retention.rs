//! Retention: what finished is pruned on schedule, what is pending never,
//! per-license retention through the platform API, and the `chat_changed`
//! rule unchanged by pruning.

use crate::backend_tests;
use crate::support::*;
use hookwire::testing::inspect::{execute_stored, stored_count};
use serde_json::{json, Value};
use std::time::Duration;

/// Deliveries finished more than a second ago go; the prune runs often.
fn short_retention(s: &mut hookwire::config::Settings) {
    s.retention.default = hookwire::store::rules::retention::RetentionPeriod::parse("1s").unwrap();
    s.retention.prune_interval = Duration::from_millis(100);
}

async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn wait_count(app: &TestApp, sql: &str, want: i64) {
    eventually(sql, Duration::from_secs(20), async || {
        let n = stored_count(app, sql).await;
        if n == want {
            Ok(())
        } else {
            Err(format!("{n}, want {want}"))
        }
    })
    .await
}

fn chat_event(license: &str, event_type: &str, chat: &str, tags: &[&str]) -> Value {
    let mut e = chat_started(license);
    e["event_type"] = json!(event_type);
    e["chat"]["id"] = json!(chat);
    e["chat"]["tags"] = json!(tags);
    e
}

backend_tests! {
    async fn finished_work_is_pruned_and_pending_work_is_kept() {
        let app = spawn_app_with(|s| {
            short_retention(s);
            // The failing webhook's retry waits far beyond retention.
            s.delivery.retry_schedule = vec![Duration::from_secs(3600)];
        })
        .await;
        let key = app.create_license("31").await;
        let mut ok = TestReceiver::start().await;
        let failing = TestReceiver::start().await;
        failing.script(std::iter::repeat_n(Reply::Status(500, "down"), 10));
        app.create_webhook(&key, "chat_started", &["chat"], &ok.url("/ok")).await;
        let stuck = app
            .create_webhook(&key, "chat_ended", &["chat"], &failing.url("/down"))
            .await;
        for i in 0..5 {
            let mut e = chat_started("31");
            e["chat"]["id"] = json!(format!("C{i}"));
            app.ingest_accepted(&e).await;
            ok.next().await;
        }
        let mut ended = chat_started("31");
        ended["event_type"] = json!("chat_ended");
        app.ingest_accepted(&ended).await;
        // Nothing matches ticket_created: an event with no delivery at all.
        let ticket = json!({"event_type": "ticket_created", "license_id": "31",
                            "ticket": {"id": "T1", "subject": "help"}});
        app.ingest_accepted(&ticket).await;
        let (_, first) = app.get(&key, "/api/v1/deliveries?limit=500").await;
        let delivered_id = first["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["state"] == "delivered")
            .expect("a delivered delivery")["id"]
            .as_str()
            .unwrap()
            .to_string();

        // The five delivered ones, their attempts and events go; the
        // unmatched event goes; the pending delivery and its event stay.
        wait_count(&app, "SELECT COUNT(*) FROM deliveries", 1).await;
        wait_count(&app, "SELECT COUNT(*) FROM events", 1).await;
        let pending = app
            .wait_deliveries(&key, &stuck, |list| list.len() == 1)
            .await;
        assert_eq!(pending[0]["state"], "pending");
        assert_eq!(
            stored_count(&app, "SELECT COUNT(*) FROM attempts WHERE delivery_id <> (SELECT MAX(id) FROM deliveries)").await,
            0
        );
        assert!(metric(&app, "hookwire_pruned_total{what=\"deliveries\"}").await >= 5.0);
        assert!(metric(&app, "hookwire_pruned_total{what=\"events\"}").await >= 6.0);
        assert!(metric(&app, "hookwire_database_bytes").await > 0.0);
        assert!(metric(&app, "hookwire_oldest_kept_age_seconds").await >= 0.0);

        // Asked for by id, a pruned delivery says so.
        let (status, body) = app
            .post(&key, &format!("/api/v1/deliveries/{delivered_id}/redeliver"))
            .await;
        assert_eq!(status, 404, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("pruned") && message.contains("1s"), "{message}");
        let (status, body) = app.post(&key, "/api/v1/deliveries/999999/redeliver").await;
        assert_eq!(status, 404);
        assert!(!body["error"]["message"].as_str().unwrap().contains("pruned"));
    }

    async fn a_licenses_own_retention_is_set_shown_and_validated() {
        let app = spawn_app().await;
        let key = app.create_license("32").await;
        let get = async |who: &str| app.get(who, "/api/v1/licenses/32").await;
        let (status, body) = get(PLATFORM_KEY).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["retention"], "30days");
        assert_eq!(body["retention_seconds"], 30 * 86_400);
        assert_eq!(body["retention_is_default"], true);
        assert_eq!(body["oldest_kept_delivery_at"], Value::Null);

        let (status, body) = app
            .patch(PLATFORM_KEY, "/api/v1/licenses/32", &json!({"retention": "7d"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["retention"], "7days");
        assert_eq!(body["retention_is_default"], false);
        assert_eq!(get(PLATFORM_KEY).await.1["retention_seconds"], 7 * 86_400);

        for (bad, says) in [
            (json!({"retention": "0s"}), "longer than zero"),
            (json!({"retention": "soon"}), "soon"),
            (json!({"retention": 7}), "duration"),
            (json!({}), "nothing to change"),
        ] {
            let (status, body) = app.patch(PLATFORM_KEY, "/api/v1/licenses/32", &bad).await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert_eq!(body["error"]["field"], "retention", "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(says), "{body}");
        }
        let (status, _) = app
            .patch(&key, "/api/v1/licenses/32", &json!({"retention": "1d"}))
            .await;
        assert_eq!(status, 401, "the platform sets retention, not the license");
        let (status, body) = app
            .patch(PLATFORM_KEY, "/api/v1/licenses/nope", &json!({"retention": "1d"}))
            .await;
        assert_eq!(status, 404, "{body}");

        let (status, body) = app
            .patch(PLATFORM_KEY, "/api/v1/licenses/32", &json!({"retention": null}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["retention"], "30days");
        assert_eq!(body["retention_is_default"], true);
    }

    async fn a_licenses_retention_prunes_only_its_own() {
        let app = spawn_app_with(|s| s.retention.prune_interval = Duration::from_millis(100)).await;
        let short = app.create_license("33").await;
        let long = app.create_license("34").await;
        let (status, _) = app
            .patch(PLATFORM_KEY, "/api/v1/licenses/33", &json!({"retention": "1s"}))
            .await;
        assert_eq!(status, 200);
        let mut receiver = TestReceiver::start().await;
        app.create_webhook(&short, "chat_started", &["chat"], &receiver.url("/a")).await;
        app.create_webhook(&long, "chat_started", &["chat"], &receiver.url("/b")).await;
        app.ingest_accepted(&chat_started("33")).await;
        app.ingest_accepted(&chat_started("34")).await;
        receiver.next().await;
        receiver.next().await;
        wait_count(&app, "SELECT COUNT(*) FROM deliveries WHERE license_id = '33'", 0).await;
        wait_count(&app, "SELECT COUNT(*) FROM events WHERE license_id = '33'", 0).await;
        assert_eq!(
            stored_count(&app, "SELECT COUNT(*) FROM deliveries WHERE license_id = '34'").await,
            1
        );
        let (_, body) = app.get(PLATFORM_KEY, "/api/v1/licenses/34").await;
        assert!(body["oldest_kept_delivery_at"].is_string(), "{body}");
        let (_, body) = app.get(PLATFORM_KEY, "/api/v1/licenses/33").await;
        assert_eq!(body["oldest_kept_delivery_at"], Value::Null);
    }

    async fn pruning_never_changes_which_chat_changed_are_delivered() {
        let app = spawn_app_with(short_retention).await;
        let key = app.create_license("35").await;
        let mut receiver = TestReceiver::start().await;
        app.create_webhook(&key, "chat_changed", &["chat"], &receiver.url("/changed")).await;
        app.ingest_accepted(&chat_event("35", "chat_started", "K1", &["a"])).await;
        // The same tags as the chat started with: not a change.
        app.ingest_accepted(&chat_event("35", "chat_changed", "K1", &["a"])).await;
        app.ingest_accepted(&chat_event("35", "chat_changed", "K1", &["a", "b"])).await;
        let got = receiver.next().await.json();
        assert_eq!(got["chat"]["tags"], json!(["a", "b"]));
        // Every event and delivery of the chat is pruned...
        wait_count(&app, "SELECT COUNT(*) FROM events", 0).await;
        wait_count(&app, "SELECT COUNT(*) FROM deliveries", 0).await;
        // ...and the rule still knows the chat's tags: the same set again
        // is no change, a new one is.
        app.ingest_accepted(&chat_event("35", "chat_changed", "K1", &["a", "b"])).await;
        app.ingest_accepted(&chat_event("35", "chat_changed", "K1", &["b"])).await;
        let got = receiver.next().await.json();
        assert_eq!(got["chat"]["tags"], json!(["b"]));
        receiver.expect_silence(Duration::from_millis(300)).await;
    }

    async fn expired_keys_deleted_webhooks_and_idle_visitors_go() {
        let app = spawn_app_with(short_retention).await;
        let key = app.create_license("36").await;
        let mut receiver = TestReceiver::start().await;
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/v"))
            .await;
        let send = |body: Value| {
            app.http
                .post(app.url("/api/v1/events"))
                .bearer_auth(PLATFORM_KEY)
                .header("Idempotency-Key", "report-36")
                .json(&body)
                .send()
        };
        assert_eq!(send(chat_started("36")).await.unwrap().status(), 202);
        receiver.next().await;
        let mut other = chat_started("36");
        other["chat"]["id"] = json!("OTHER");
        assert_eq!(
            send(other.clone()).await.unwrap().status(),
            422,
            "within its window the key answers for its first request"
        );
        // A day later (the key's row aged by a day), the key is free: it
        // is pruned, and a new request under it is a new event.
        execute_stored(
            &app,
            "UPDATE idempotency_keys SET created_at = created_at - 86400001",
        )
        .await;
        wait_count(&app, "SELECT COUNT(*) FROM idempotency_keys", 0).await;
        assert_eq!(send(other).await.unwrap().status(), 202);
        receiver.next().await;

        assert_eq!(app.delete(&key, &format!("/api/v1/webhooks/{webhook}")).await, 204);
        wait_count(&app, "SELECT COUNT(*) FROM webhooks", 0).await;
        wait_count(&app, "SELECT COUNT(*) FROM visitors", 0).await;
    }
}
