//! Nothing vanishes while a webhook is off: events for a disabled webhook
//! make held deliveries, never attempted, shown in the log, the API and the
//! metrics, counted in `max_backlog`; enabling the webhook delivers them
//! oldest first, or discards them with `discard_held`. Here the license
//! switches the webhook off; `safety.rs` holds behind a 410 and behind
//! `disable_after` of failures, `store.rs` has the store's part, `ui.rs`
//! and `browser.rs` the web app's choice.

use crate::ops::{sample, scrape};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// The value of one series in `/metrics`.
async fn metric(app: &TestApp, series: &str) -> Option<f64> {
    sample(&scrape(app).await, series)
}

async fn set_enabled(app: &TestApp, key: &str, webhook: &str, body: Value) -> (u16, Value) {
    app.patch(key, &format!("/api/v1/webhooks/{webhook}"), &body)
        .await
}

/// License "1" with a `chat_started` webhook to a fresh receiver, switched
/// off by its license: the license's key, the receiver, the webhook's id.
async fn disabled_webhook(app: &TestApp) -> (String, TestReceiver, String) {
    let key = app.create_license("1").await;
    let receiver = TestReceiver::start().await;
    let webhook = app
        .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
        .await;
    let (status, hook) = set_enabled(app, &key, &webhook, json!({"enabled": false})).await;
    assert_eq!(status, 200, "{hook}");
    assert_eq!(
        (&hook["enabled"], &hook["held_deliveries"]),
        (&json!(false), &json!(0))
    );
    (key, receiver, webhook)
}

/// Reports `n` events one by one; answers their ids in the order accepted,
/// each answered with one delivery (held ones count).
async fn ingest_n(app: &TestApp, license: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let (status, body) = app.ingest(&chat_started(license)).await;
        assert_eq!((status, &body["deliveries"]), (202, &json!(1)), "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    ids
}

/// The `event_unique_id`s of the next `n` requests `receiver` gets.
async fn arrivals(receiver: &mut TestReceiver, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..n {
        let body = receiver.next().await.json();
        got.push(body["event_unique_id"].as_str().unwrap().to_string());
    }
    got
}

fn states(list: &[Value]) -> Vec<&str> {
    list.iter().map(|d| d["state"].as_str().unwrap()).collect()
}

crate::backend_tests! {
    async fn a_disabled_webhook_holds_events_and_delivers_them_in_order_when_enabled() {
        // One attempt at a time per webhook: arrivals show the order sent.
        let app = spawn_app_with(|s| s.delivery.per_target_concurrency = 1).await;
        let (key, mut receiver, webhook) = disabled_webhook(&app).await;

        let mut sent = ingest_n(&app, "1", 3).await;
        // A batch's events share their time of arrival: its order is kept too.
        let batch: Vec<Value> = (0..3).map(|_| chat_started("1")).collect();
        let (status, body) = app.post_platform("/api/v1/events/batch", &json!(batch)).await;
        assert_eq!(status, 200, "{body}");
        for item in body["results"].as_array().unwrap() {
            assert_eq!(item["deliveries"], 1, "{item}");
            sent.push(item["id"].as_str().unwrap().to_string());
        }
        receiver.expect_silence(Duration::from_millis(400)).await;

        // Shown held in the log, the webhook, the filters and the metrics.
        let list = app.wait_deliveries(&key, &webhook, |d| d.len() == 6).await;
        assert_eq!(states(&list), ["held"; 6]);
        assert!(list.iter().all(|d| d["next_attempt_at"].is_null()
            && d["attempts"].as_array().unwrap().is_empty()));
        let (_, hook) = app.get(&key, &format!("/api/v1/webhooks/{webhook}")).await;
        assert_eq!(hook["held_deliveries"], 6, "{hook}");
        let (status, held) = app.get(&key, "/api/v1/deliveries?state=held").await;
        assert_eq!(status, 200);
        assert_eq!(held["deliveries"].as_array().unwrap().len(), 6);
        let (_, pending) = app.get(&key, "/api/v1/deliveries?state=pending").await;
        assert!(pending["deliveries"].as_array().unwrap().is_empty());
        let (status, bad) = app.get(&key, "/api/v1/deliveries?state=waiting").await;
        assert_eq!((status, &bad["error"]["field"]), (400, &json!("state")), "{bad}");
        assert!(bad["error"]["message"].as_str().unwrap().contains("held"), "{bad}");
        assert_eq!(metric(&app, "hookwire_deliveries_held").await, Some(6.0));
        assert_eq!(metric(&app, "hookwire_queue_depth").await, Some(0.0));

        // Redelivering one by hand is refused: enabling the webhook sends it.
        let held_id = list[0]["id"].as_str().unwrap();
        let (status, body) = app
            .post(&key, &format!("/api/v1/deliveries/{held_id}/redeliver"))
            .await;
        assert_eq!(status, 409, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("held until its webhook is enabled"), "{message}");
        receiver.expect_silence(Duration::from_millis(200)).await;

        // Enabled: every held one goes, oldest event first.
        let (status, hook) = set_enabled(&app, &key, &webhook, json!({"enabled": true})).await;
        assert_eq!(status, 200, "{hook}");
        assert_eq!((&hook["enabled"], &hook["held_deliveries"]), (&json!(true), &json!(0)));
        assert_eq!(arrivals(&mut receiver, 6).await, sent);
        let list = app
            .wait_deliveries(&key, &webhook, |d| states(d) == ["delivered"; 6])
            .await;
        assert!(list.iter().all(|d| d["attempts"].as_array().unwrap().len() == 1));
        assert_eq!(metric(&app, "hookwire_deliveries_held").await, Some(0.0));

        // And what comes after is delivered as usual.
        let next = app.ingest_accepted(&chat_started("1")).await;
        assert_eq!(arrivals(&mut receiver, 1).await, [next]);
    }

    async fn discard_held_drops_them_as_discarded() {
        let app = spawn_app().await;
        let (key, mut receiver, webhook) = disabled_webhook(&app).await;
        ingest_n(&app, "1", 3).await;

        // Only when enabling: otherwise a 400 naming the field, nothing changed.
        for body in [
            json!({"discard_held": true}),
            json!({"enabled": false, "discard_held": true}),
        ] {
            let (status, answer) = set_enabled(&app, &key, &webhook, body.clone()).await;
            assert_eq!(status, 400, "{body} -> {answer}");
            assert_eq!(answer["error"]["field"], "discard_held", "{answer}");
            assert!(
                answer["error"]["message"].as_str().unwrap().contains("enabled"),
                "{answer}"
            );
        }
        let (_, hook) = app.get(&key, &format!("/api/v1/webhooks/{webhook}")).await;
        assert_eq!((&hook["enabled"], &hook["held_deliveries"]), (&json!(false), &json!(3)));

        let (status, hook) = set_enabled(
            &app,
            &key,
            &webhook,
            json!({"enabled": true, "discard_held": true}),
        )
        .await;
        assert_eq!(status, 200, "{hook}");
        assert_eq!((&hook["enabled"], &hook["held_deliveries"]), (&json!(true), &json!(0)));
        receiver.expect_silence(Duration::from_millis(400)).await;
        let list = app.wait_deliveries(&key, &webhook, |d| d.len() == 3).await;
        assert_eq!(states(&list), ["discarded"; 3]);
        assert!(list.iter().all(|d| d["next_attempt_at"].is_null()));
        let (_, discarded) = app.get(&key, "/api/v1/deliveries?state=discarded").await;
        assert_eq!(discarded["deliveries"].as_array().unwrap().len(), 3);

        // New events are delivered; a discarded one can still be sent by hand.
        let next = app.ingest_accepted(&chat_started("1")).await;
        assert_eq!(arrivals(&mut receiver, 1).await, [next]);
        let one = list[0]["id"].as_str().unwrap();
        let (status, _) = app
            .post(&key, &format!("/api/v1/deliveries/{one}/redeliver"))
            .await;
        assert_eq!(status, 202);
        assert_eq!(
            arrivals(&mut receiver, 1).await,
            [list[0]["event_id"].as_str().unwrap()]
        );
    }

    async fn held_deliveries_count_toward_max_backlog() {
        let app = spawn_app_with(|s| s.max_backlog = 3).await;
        let (key, mut receiver, webhook) = disabled_webhook(&app).await;
        ingest_n(&app, "1", 3).await;
        let refused = |(status, body): (u16, Value)| -> Result<Value, String> {
            if status == 503 && body["error"]["code"] == "backlog_full" {
                Ok(body)
            } else {
                Err(format!("{status} {body}"))
            }
        };
        let body = refused(app.ingest(&chat_started("1")).await).unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains("held"),
            "{body}"
        );

        // Counted from the database, not only as accepted: after a restart
        // the held deliveries still fill the backlog.
        let app = app.restart(|s| s.max_backlog = 3).await;
        eventually("ingest to refuse past the held backlog", Duration::from_secs(10), async || {
            refused(app.ingest(&chat_started("1")).await)
        })
        .await;
        let (_, list) = app.get(&key, "/api/v1/deliveries?state=held&limit=500").await;
        let held = list["deliveries"].as_array().unwrap().len();
        assert!(held >= 3, "{list}");

        // Enabled, they are delivered, and ingest accepts again.
        set_enabled(&app, &key, &webhook, json!({"enabled": true})).await;
        arrivals(&mut receiver, held).await;
        eventually("ingest to accept again", Duration::from_secs(10), async || {
            match app.ingest(&chat_started("1")).await {
                (202, _) => Ok(()),
                (status, body) => Err(format!("{status} {body}")),
            }
        })
        .await;
    }

    /// Enabling while events stream in: an ingest that read the webhook
    /// disabled commits its held delivery before the switch moves what is
    /// held, or finds it enabled; none is left held behind the switch.
    async fn enabling_while_events_arrive_leaves_none_held() {
        let app = spawn_app().await;
        let (key, mut receiver, webhook) = disabled_webhook(&app).await;
        let path = format!("/api/v1/webhooks/{webhook}");
        let feed = || async {
            for _ in 0..40 {
                app.ingest_accepted(&chat_started("1")).await;
            }
        };
        let switch = async {
            eventually("some to be held", Duration::from_secs(10), async || {
                let (_, hook) = app.get(&key, &path).await;
                match hook["held_deliveries"].as_u64() {
                    Some(n) if n >= 10 => Ok(()),
                    _ => Err(hook),
                }
            })
            .await;
            set_enabled(&app, &key, &webhook, json!({"enabled": true})).await
        };
        let (_, _, _, _, (status, hook)) = tokio::join!(feed(), feed(), feed(), feed(), switch);
        assert_eq!(status, 200, "{hook}");
        let list = app
            .wait_deliveries(&key, &webhook, |d| {
                d.len() == 160 && d.iter().all(|d| d["state"] == "delivered")
            })
            .await;
        let (_, hook) = app.get(&key, &path).await;
        assert_eq!(hook["held_deliveries"], 0, "{hook}");
        let mut got = arrivals(&mut receiver, 160).await;
        got.sort();
        got.dedup();
        assert_eq!(got.len(), list.len(), "each event once");
    }

    /// The built binary, stopped and started again while its webhook is off:
    /// what it held is still held, and enabling the webhook delivers it.
    async fn the_binary_keeps_what_it_held_across_a_restart() {
        let dir = tempfile::TempDir::new().unwrap();
        let database = database_arg(&fresh_database(&dir).await);
        let start = || {
            let mut command = serve_command();
            command
                .arg("--data-dir")
                .arg(dir.path())
                .args(["--database", &database])
                .env("HOOKWIRE_PER_TARGET_CONCURRENCY", "1")
                .env("HOOKWIRE_LOG", "warn");
            Serving::spawn(command).expect("hookwire starts")
        };
        let http = reqwest::Client::new();
        let server = start();
        let key = create_license_at(&http, &server.url, "1").await;
        let mut receiver = TestReceiver::start().await;
        let r = http
            .post(format!("{}/api/v1/webhooks", server.url))
            .bearer_auth(&key)
            .json(&json!({"event_type": "chat_started", "url": receiver.url("/")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let hook = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let switch = |url: &str, on: bool| {
            http.patch(format!("{url}/api/v1/webhooks/{hook}"))
                .bearer_auth(&key)
                .json(&json!({"enabled": on}))
                .send()
        };
        assert_eq!(switch(&server.url, false).await.unwrap().status(), 200);
        let mut sent = Vec::new();
        for _ in 0..2 {
            let r = http
                .post(format!("{}/api/v1/events", server.url))
                .bearer_auth(PLATFORM_KEY)
                .json(&chat_started("1"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["deliveries"], 1, "{body}");
            sent.push(body["id"].as_str().unwrap().to_string());
        }
        server.terminate().await;

        let server = start();
        receiver.expect_silence(Duration::from_millis(300)).await;
        let r = http
            .get(format!("{}/api/v1/deliveries?state=held", server.url))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let held: Value = r.json().await.unwrap();
        assert_eq!(held["deliveries"].as_array().unwrap().len(), 2, "{held}");
        let r = switch(&server.url, true).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(arrivals(&mut receiver, 2).await, sent);
        server.terminate().await;
    }

    async fn deleting_a_webhook_discards_what_it_holds() {
        let app = spawn_app().await;
        let (key, _receiver, webhook) = disabled_webhook(&app).await;
        ingest_n(&app, "1", 2).await;
        assert_eq!(app.delete(&key, &format!("/api/v1/webhooks/{webhook}")).await, 204);
        let (_, list) = app.get(&key, "/api/v1/deliveries").await;
        assert_eq!(states(list["deliveries"].as_array().unwrap()), ["discarded"; 2]);
        assert_eq!(metric(&app, "hookwire_deliveries_held").await, Some(0.0));
    }
}
