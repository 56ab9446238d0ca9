//! Operator alerts through the real server: a receiver that answers 410,
//! one that keeps failing, retries running out and the backlog growing each
//! reach the operator's endpoint as a signed `{"type", "timestamp", "data"}`,
//! retried until it acknowledges; the overview lists them; bad settings are
//! refused naming their key.

use crate::backend_tests;
use crate::support::*;
use hookwire::config::OperatorWebhook;
use hookwire::config::Settings;
use hookwire::secret::Secret;
use hookwire::store::{
    now_millis, AlertGuard, AlertKind, AlertState, AlertView, FailedDelivery, NewAlert, NextState,
};
use hookwire_receiver::Verifier;
use serde_json::{json, Value};
use std::time::Duration;

/// The Standard Webhooks specification's example secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A hookwire sending its alerts, signed, to `operator`.
async fn app_alerting(operator: &TestReceiver, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let url = operator.url("/alerts").parse().unwrap();
    spawn_app_with(|s| {
        s.operator_webhook = Some(OperatorWebhook {
            url,
            secret: Some(Secret::new(SECRET)),
        });
        tweak(s);
    })
    .await
}

/// One alert as the operator's endpoint got it, its signature checked.
struct Alert {
    id: String,
    body: Value,
}

impl Alert {
    fn of(request: &Received) -> Alert {
        Verifier::new(SECRET)
            .unwrap()
            .verify(&request.headers, &request.body)
            .expect("the alert verifies with the operator's secret");
        // And with the Standard Webhooks reference library, as published.
        hookwire::testing::clients::standardwebhooks_verifies(SECRET, request)
            .expect("standardwebhooks verifies the alert");
        let body = request.json();
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["data", "timestamp", "type"], "{body}");
        let timestamp = body["timestamp"].as_str().unwrap();
        time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{timestamp}: {e}"));
        Alert {
            id: request.headers["webhook-id"].to_str().unwrap().to_string(),
            body,
        }
    }

    fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap()
    }
}

/// Checks an alert against the served OpenAPI description: its `type` is
/// one the description lists, and its `data` has the fields it describes.
async fn check_described(app: &TestApp, alerts: &[&Alert]) {
    let spec: Value = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &spec["components"]["schemas"];
    let names: Vec<&str> = AlertKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        schemas["AlertTypeName"]["enum"],
        json!(names),
        "{}",
        schemas["AlertTypeName"]
    );
    for alert in alerts {
        let name = match alert.kind() {
            "webhook.disabled" => "WebhookDisabledAlert",
            "webhook.failing" => "WebhookFailingAlert",
            "delivery.failed" => "DeliveryFailedAlert",
            "backlog.high" => "BacklogHighAlert",
            other => panic!("an undescribed type {other}"),
        };
        let schema = &schemas[name];
        let properties = schema["properties"].as_object().unwrap();
        let data = alert.body["data"].as_object().unwrap();
        let mut sent: Vec<&String> = data.keys().collect();
        let mut described: Vec<&String> = properties.keys().collect();
        sent.sort();
        described.sort();
        assert_eq!(sent, described, "{name}: {schema}");
        for required in schema["required"].as_array().unwrap() {
            assert!(
                data.contains_key(required.as_str().unwrap()),
                "{name}: {required}"
            );
        }
    }
}

/// Takes requests from `operator` until an alert of `kind`; the ones passed
/// over are kept in `seen`.
async fn next_alert(operator: &mut TestReceiver, kind: &str, seen: &mut Vec<Alert>) -> Alert {
    loop {
        let alert = Alert::of(&operator.next().await);
        if alert.kind() == kind {
            return alert;
        }
        seen.push(alert);
    }
}

/// The license's alerts once there are at least `at_least` and none is left to send.
async fn all_sent(app: &TestApp, license: &str, at_least: usize) -> Vec<AlertView> {
    let store = app.store();
    eventually(
        "every alert to be acknowledged",
        Duration::from_secs(20),
        async || {
            let alerts = store.recent_alerts(license, 100).await.unwrap();
            if alerts.len() >= at_least && alerts.iter().all(|a| a.state == AlertState::Delivered) {
                Ok(alerts)
            } else {
                Err(format!("{alerts:?}"))
            }
        },
    )
    .await
}

backend_tests! {
    async fn the_store_guards_batches_leases_and_lists_alerts() {
        // No operator endpoint: nothing but this test writes or claims alerts.
        let app = spawn_app().await;
        let store = app.store();
        let now = now_millis();
        let hour_ago = now - 3_600_000;
        let alert = |id: &str, kind, subject: &str, at| NewAlert {
            id: id.into(),
            kind,
            license_id: Some("1".into()),
            subject: Some(subject.into()),
            data: json!({ "webhook_id": subject }).to_string(),
            created_at: at,
        };
        let quiet = AlertGuard { quiet_since: Some(hour_ago), failing_since: None };
        let failing = AlertKind::WebhookFailing;
        assert!(store.insert_alert(alert("msg_a", failing, "w", now), quiet).await.unwrap());
        // Once an hour per kind and subject.
        assert!(!store.insert_alert(alert("msg_b", failing, "w", now + 1), quiet).await.unwrap());
        assert!(store.insert_alert(alert("msg_c", failing, "v", now + 2), quiet).await.unwrap());
        // Only when the webhook's failing run began at that time.
        let run = AlertGuard { quiet_since: None, failing_since: Some(now) };
        assert!(!store.insert_alert(alert("msg_d", failing, "w", now), run).await.unwrap());

        let failed = |id: i64| FailedDelivery {
            license_id: "1".into(),
            delivery_id: id,
            webhook_id: "w".into(),
            at: now + id,
            new_alert_id: format!("msg_f{id}"),
            spacing: 60_000,
            max_ids: 2,
        };
        for id in 1..=3 {
            store.add_failed_delivery(failed(id)).await.unwrap();
        }
        let lease = now + 60_000;
        let mut jobs = store.claim_alerts(now + 10, 10, lease).await.unwrap();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["msg_a", "msg_c", "msg_f1"]);
        let batch: Value = serde_json::from_str(&jobs[2].data).unwrap();
        assert_eq!(batch["count"], 3);
        assert_eq!(batch["delivery_ids"], json!(["1", "2"]));
        // Leased: not claimed twice.
        assert!(store.claim_alerts(now + 10, 10, lease).await.unwrap().is_empty());
        // The claimed batch is closed: the next one is due a window after it.
        store.add_failed_delivery(failed(4)).await.unwrap();
        assert!(store.claim_alerts(now + 20, 10, lease).await.unwrap().is_empty());

        for (id, next, error) in [
            ("msg_a", NextState::Delivered, None),
            ("msg_c", NextState::RetryAt(now + 100), Some("HTTP 503".to_string())),
            ("msg_f1", NextState::Failed, Some("HTTP 500".to_string())),
        ] {
            store.record_alert_attempt(id, now + 30, next, error).await.unwrap();
        }
        let again = store.claim_alerts(now + 200, 10, now + 200_000).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].id.as_str(), again[0].attempts), ("msg_c", 1));
        let next = store.claim_alerts(now + 61_100, 10, now + 120_000).await.unwrap();
        let ids: Vec<&str> = next.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["msg_f4"]);

        let listed = store.recent_alerts("1", 10).await.unwrap();
        let seen: Vec<(&str, AlertState)> =
            listed.iter().map(|a| (a.id.as_str(), a.state)).collect();
        assert_eq!(
            seen,
            [
                ("msg_f4", AlertState::Pending),
                ("msg_c", AlertState::Pending),
                ("msg_f1", AlertState::Failed),
                ("msg_a", AlertState::Delivered),
            ]
        );
        assert_eq!(listed[1].last_error.as_deref(), Some("HTTP 503"));
        assert_eq!(store.recent_alerts("1", 1).await.unwrap().len(), 1);
        assert!(store.recent_alerts("2", 10).await.unwrap().is_empty());
    }

    async fn gone_sends_a_signed_webhook_disabled_that_the_overview_lists() {
        let mut operator = TestReceiver::start().await;
        let app = app_alerting(&operator, |_| {}).await;
        let key = app.create_license("1").await;
        let receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(410, "gone")]);
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        app.ingest_accepted(&chat_started("1")).await;

        let mut others = Vec::new();
        let alert = next_alert(&mut operator, "webhook.disabled", &mut others).await;
        assert!(alert.id.starts_with("msg_"), "{}", alert.id);
        let data = &alert.body["data"];
        assert_eq!(data["webhook_id"], webhook.as_str());
        assert_eq!(data["license_id"], "1");
        assert_eq!(data["cause"], "gone");
        assert!(data["reason"].as_str().unwrap().contains("410"), "{data}");
        let mut all: Vec<&Alert> = others.iter().collect();
        all.push(&alert);
        check_described(&app, &all).await;

        // The overview shows it, escaped, in its own table.
        let alerts = all_sent(&app, "1", 1).await;
        assert!(alerts.iter().any(|a| a.id == alert.id));
        let mut browser = crate::web::Browser::new(&app);
        browser.sign_in("1", &key).await;
        let page = browser.get("/ui/overview").await;
        assert_eq!(page.status, 200);
        let page = page.body;
        let table = &page[page.find(r#"<table id="alerts">"#).expect("the alerts table")..];
        assert!(table.contains("webhook.disabled"), "{table}");
        assert!(table.contains(&webhook), "{table}");
        assert!(table.contains("acknowledged"), "{table}");
    }

    async fn a_failing_receiver_sends_webhook_failing_once_and_failed_deliveries_batched() {
        let mut operator = TestReceiver::start().await;
        let app = app_alerting(&operator, |s| {
            s.failed_alert_window = Duration::from_secs(1);
        })
        .await;
        let key = app.create_license("1").await;
        let receiver = TestReceiver::start().await;
        receiver.script(std::iter::repeat_n(Reply::Status(500, "down"), 100));
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        let events = json!((0..5).map(|_| chat_started("1")).collect::<Vec<_>>());
        let (status, body) = app.post_platform("/api/v1/events/batch", &events).await;
        assert_eq!(status, 200, "{body}");

        // Every delivery fails for good, after three attempts each.
        let mut seen = Vec::new();
        let mut counted = 0;
        let mut batches = Vec::new();
        while counted < 5 {
            let batch = next_alert(&mut operator, "delivery.failed", &mut seen).await;
            let data = &batch.body["data"];
            let count = data["count"].as_u64().unwrap();
            assert_eq!(data["license_id"], "1");
            assert_eq!(data["delivery_ids"].as_array().unwrap().len() as u64, count);
            assert_eq!(data["webhook_ids"], json!([webhook]));
            counted += count;
            batches.push(batch);
        }
        assert_eq!(counted, 5);
        // Failures within one window share an alert.
        assert!(batches.len() < 5, "{} alerts for 5 failures", batches.len());

        let alerts = all_sent(&app, "1", 1).await;
        seen.extend(operator.drain().iter().map(Alert::of));
        let failing: Vec<&Alert> = seen.iter().filter(|a| a.kind() == "webhook.failing").collect();
        assert_eq!(failing.len(), 1, "one webhook.failing for 15 failed attempts");
        let data = &failing[0].body["data"];
        assert_eq!(data["webhook_id"], webhook.as_str());
        assert_eq!(data["status"], 500);
        assert!(data["failing_since"].is_string(), "{data}");
        let kept = alerts.iter().filter(|a| a.kind.as_str() == "webhook.failing").count();
        assert_eq!(kept, 1);
        check_described(&app, &seen.iter().chain(&batches).collect::<Vec<_>>()).await;
    }

    async fn an_alert_the_operator_refuses_is_retried_until_acknowledged() {
        let mut operator = TestReceiver::start().await;
        // Shared by the two alerts a 410 raises (webhook.disabled and
        // delivery.failed), each allowed six attempts.
        operator.script(std::iter::repeat_n(Reply::Status(503, "later"), 4));
        let app = app_alerting(&operator, |s| {
            s.delivery.retry_schedule = vec![Duration::from_millis(100); 5];
        })
        .await;
        let key = app.create_license("1").await;
        let receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(410, "gone")]);
        app.create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        app.ingest_accepted(&chat_started("1")).await;

        let alerts = all_sent(&app, "1", 2).await;
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        let arrived: Vec<Alert> = operator.drain().iter().map(Alert::of).collect();
        assert_eq!(arrived.len(), 6, "two alerts, four refusals");
        for kept in &alerts {
            let tries: Vec<&Alert> = arrived.iter().filter(|a| a.id == kept.id).collect();
            assert_eq!(tries.len() as u32, kept.attempts, "{kept:?}");
            // Sent again as it was: the same id and body every time.
            assert!(tries.iter().all(|t| t.body == tries[0].body));
        }
        assert!(alerts.iter().any(|a| a.attempts > 1));
    }

    async fn a_backlog_past_its_threshold_sends_backlog_high() {
        let mut operator = TestReceiver::start().await;
        let app = app_alerting(&operator, |s| {
            s.backlog_alert_threshold = 2;
            // The deliveries wait for their retry, pending, long after the test.
            s.delivery.retry_schedule = vec![Duration::from_secs(600)];
        })
        .await;
        let key = app.create_license("1").await;
        let receiver = TestReceiver::start().await;
        receiver.script(std::iter::repeat_n(Reply::Status(500, "down"), 10));
        app.create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        for _ in 0..3 {
            app.ingest_accepted(&chat_started("1")).await;
        }
        let mut others = Vec::new();
        let alert = next_alert(&mut operator, "backlog.high", &mut others).await;
        let data = &alert.body["data"];
        assert_eq!(data["threshold"], 2);
        assert!(data["pending"].as_u64().unwrap() > 2, "{data}");
        check_described(&app, &[&alert]).await;
        // The whole server's: no license's overview lists it.
        let listed = app.store().recent_alerts("1", 10).await.unwrap();
        assert!(listed.iter().all(|a| a.kind != AlertKind::BacklogHigh));
    }

    /// A webhook left disabled fills the backlog with held deliveries: they
    /// count toward the threshold as pending ones do, and the alert says which.
    async fn held_deliveries_count_toward_backlog_high() {
        let mut operator = TestReceiver::start().await;
        let app = app_alerting(&operator, |s| s.backlog_alert_threshold = 2).await;
        let key = app.create_license("1").await;
        let receiver = TestReceiver::start().await;
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        let path = format!("/api/v1/webhooks/{webhook}");
        app.patch(&key, &path, &json!({"enabled": false})).await;
        for _ in 0..3 {
            app.ingest_accepted(&chat_started("1")).await;
        }
        let mut others = Vec::new();
        let alert = next_alert(&mut operator, "backlog.high", &mut others).await;
        let data = &alert.body["data"];
        assert_eq!((&data["pending"], &data["held"], &data["threshold"]), (&json!(0), &json!(3), &json!(2)), "{data}");
        check_described(&app, &[&alert]).await;
    }

    async fn without_an_operator_endpoint_no_alert_is_kept() {
        let app = spawn_app().await;
        let key = app.create_license("1").await;
        let receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(410, "gone")]);
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        app.ingest_accepted(&chat_started("1")).await;
        app.wait_deliveries(&key, &webhook, |d| d.len() == 1 && d[0]["state"] == "failed")
            .await;
        assert!(app.store().recent_alerts("1", 10).await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_operator_settings_stop_the_server_naming_their_key() {
    for (key, value) in [
        ("HOOKWIRE_OPERATOR_WEBHOOK_URL", "ftp://ops.example/alerts"),
        ("HOOKWIRE_OPERATOR_WEBHOOK_SECRET", "not-a-whsec-secret"),
        ("HOOKWIRE_BACKLOG_ALERT_THRESHOLD", "lots"),
    ] {
        let dir = tempfile::TempDir::new().unwrap();
        let mut child = serve_command()
            .arg("--data-dir")
            .arg(dir.path())
            .env(
                "HOOKWIRE_OPERATOR_WEBHOOK_URL",
                "https://ops.example/alerts",
            )
            .env(key, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that took the value would serve until killed.
        let exited = wait_for(Duration::from_secs(20), async || child.try_wait().unwrap()).await;
        if exited.is_err() {
            let _ = child.kill();
        }
        let status = exited.unwrap_or_else(|_| panic!("{key}={value} was accepted"));
        assert!(!status.success());
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        // A value that is not a number is refused before validation, and
        // named as the variable spells it.
        let name = key.trim_start_matches("HOOKWIRE_").to_ascii_lowercase();
        assert!(
            stderr.to_ascii_lowercase().contains(&name),
            "{key}: {stderr}"
        );
        assert!(!stderr.contains("not-a-whsec-secret"), "{stderr}");
    }
}
