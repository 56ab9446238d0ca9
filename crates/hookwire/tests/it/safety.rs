//! Safety: signatures, secrets at rest, endpoint health, Retry-After.

use crate::support::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hookwire::testing::inspect::stored_text;
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::{Duration, Instant};

/// Verifies one `v1,<base64>` signature the way a Standard Webhooks receiver does.
pub(crate) fn verify(secret: &str, got: &Received, signature: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    let id = got.headers["webhook-id"].to_str().unwrap();
    let ts = got.headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&got.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    expected == signature
}

pub(crate) fn signatures(got: &Received) -> Vec<String> {
    got.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .map(String::from)
        .collect()
}

pub(crate) async fn rotate(app: &TestApp, key: &str, webhook: &str) -> String {
    let (status, body) = app
        .post(key, &format!("/api/v1/webhooks/{webhook}/secret"))
        .await;
    assert_eq!(status, 200, "{body}");
    let secret = body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);
    secret
}

crate::backend_tests! {
async fn passwords_and_signing_secrets_are_encrypted_at_rest() {
    let app = spawn_app().await;
    let key = app.create_license("1").await;
    let mut receiver = TestReceiver::start().await;
    let password = "Pa55wordNeverStoredPlain";
    let url = format!("http://user:{password}@{}/", receiver.addr);
    let webhook = app
        .create_webhook(&key, "chat_started", &["chat"], &url)
        .await;
    let secret = rotate(&app, &key, &webhook).await;
    // A patched URL is sealed too.
    let patched = "Patched5ecretPassw0rd";
    let (status, body) = app
        .patch(
            &key,
            &format!("/api/v1/webhooks/{webhook}"),
            &json!({"url": format!("http://user:{patched}@{}/", receiver.addr)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["url"], format!("http://user:****@{}/", receiver.addr));
    app.ingest_accepted(&chat_started("1")).await;
    let got = receiver.next().await;
    let basic = format!("Basic {}", STANDARD.encode(format!("user:{patched}")));
    assert_eq!(got.headers["authorization"], basic.as_str());
    assert!(verify(&secret, &got, &signatures(&got)[0]));

    // Read straight from the database: the SQLite files (WAL included) or
    // every PostgreSQL row.
    let stored = stored_text(&app).await;
    for needle in [password, patched, &secret, &secret[6..]] {
        assert!(!stored.contains(needle), "the database holds {needle}");
    }
    assert!(app.dir.path().join("encryption.key").exists());
}
}

#[tokio::test]
async fn passwords_stored_in_the_clear_before_are_sealed_at_start() {
    let app = spawn_app().await;
    let key = app.create_license("1").await;
    let mut receiver = TestReceiver::start().await;
    let webhook = app
        .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
        .await;
    let db = app.dir.path().join("hookwire.db");
    // As an older hookwire stored it.
    let legacy = format!("http://user:OldPlainPassw0rd@{}/", receiver.addr);
    let app = app
        .restart_after(|dir| {
            let conn = rusqlite::Connection::open(dir.join("hookwire.db")).unwrap();
            conn.execute(
                "UPDATE webhooks SET url = ?1 WHERE id = ?2",
                [&legacy, &webhook],
            )
            .unwrap();
        })
        .await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let stored: String = conn
        .query_row("SELECT url FROM webhooks WHERE id = ?1", [&webhook], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!stored.contains("OldPlainPassw0rd"), "{stored}");
    assert!(stored.contains("hwenc1."), "{stored}");
    app.ingest_accepted(&chat_started("1")).await;
    let got = receiver.next().await;
    let basic = format!("Basic {}", STANDARD.encode("user:OldPlainPassw0rd"));
    assert_eq!(got.headers["authorization"], basic.as_str());
}

fn httpdate_in(d: Duration) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + d)
}

crate::backend_tests! {
async fn no_secret_ever_reaches_the_logs() {
    let dir = tempfile::TempDir::new().unwrap();
    let log_path = dir.path().join("stderr.log");
    let encryption_key = STANDARD.encode([7u8; 32]);
    let database = database_arg(&fresh_database(&dir).await);
    let mut command = serve_command();
    command
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--database")
        .arg(&database)
        .env("HOOKWIRE_ENCRYPTION_KEY", &encryption_key)
        .env("HOOKWIRE_RETRY_SCHEDULE", "100ms,100ms")
        .env("HOOKWIRE_LOG", "debug")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let server = Serving::spawn(command).expect("hookwire starts");
    let url = server.url.clone();
    let http = reqwest::Client::new();
    let api_key = create_license_at(&http, &url, "5").await;
    let mut receiver = TestReceiver::start().await;
    receiver.script([Reply::Status(500, "try again")]);
    let password = "LogLeakPassw0rd";
    let r = http
        .post(format!("{url}/api/v1/webhooks"))
        .bearer_auth(&api_key)
        .json(
            &json!({"event_type": "chat_started", "data_types": ["chat"],
                      "url": format!("http://u:{password}@{}/", receiver.addr)}),
        )
        .send()
        .await
        .unwrap();
    let webhook = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .post(format!("{url}/api/v1/webhooks/{webhook}/secret"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    let secret = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    // A rejected key is not logged either.
    let r = http
        .get(format!("{url}/api/v1/webhooks"))
        .bearer_auth("hwk_wrong_key_that_must_not_print")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{url}/api/v1/events"))
        .bearer_auth(PLATFORM_KEY)
        .json(&chat_started("5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    receiver.next().await; // 500: a retry is logged
    let got = receiver.next().await;
    let token = got.json()["token"].as_str().unwrap().to_string();
    // The token used on the REST call-back.
    let r = http
        .post(format!("{url}/visitors/S1/details"))
        .json(&json!({"license_id": "5", "token": token, "id": "x",
                      "fields": [{"name": "a", "value": "b"}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // An attempt is logged before it is recorded: once the retry shows as
    // delivered, the logs cover the whole run, retry and all.
    let deliveries = format!("{url}/api/v1/webhooks/{webhook}/deliveries");
    eventually(
        "the retry to be recorded",
        Duration::from_secs(10),
        async || {
            let r = http
                .get(&deliveries)
                .bearer_auth(&api_key)
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            if body["deliveries"][0]["state"] == "delivered" {
                Ok(())
            } else {
                Err(body)
            }
        },
    )
    .await;
    server.terminate().await;

    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("attempt failed; will retry"),
        "the logs ran: {logs}"
    );
    for needle in [
        PLATFORM_KEY,
        &api_key,
        "hwk_wrong_key_that_must_not_print",
        &token,
        password,
        &secret,
        &secret[6..],
        &encryption_key,
    ] {
        assert!(!logs.contains(needle), "the logs hold {needle}");
    }
}
}

crate::backend_tests! {
    async fn signed_deliveries_verify_and_rotation_signs_with_both_secrets() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut receiver = TestReceiver::start().await;
        let url = format!("http://hook:pw@{}/hook", receiver.addr);
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &url)
            .await;

        // Unsigned until a secret is created.
        app.ingest_accepted(&chat_started("1025707")).await;
        let got = receiver.next().await;
        assert!(got.headers.get("webhook-signature").is_none());
        let (_, hook) = app.get(&key, &format!("/api/v1/webhooks/{webhook}")).await;
        assert_eq!(hook["signed"], false);

        let first = rotate(&app, &key, &webhook).await;
        let (_, hook) = app.get(&key, &format!("/api/v1/webhooks/{webhook}")).await;
        assert_eq!(hook["signed"], true);
        assert!(!hook.to_string().contains(&first[6..]), "never shown again");

        let event_id = app.ingest_accepted(&chat_started("1025707")).await;
        let got = receiver.next().await;
        assert_eq!(got.headers["webhook-id"], event_id.as_str());
        let ts: i64 = got.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - ts).abs() <= 5, "timestamp is unix seconds: {ts}");
        let sigs = signatures(&got);
        assert_eq!(sigs.len(), 1);
        assert!(verify(&first, &got, &sigs[0]));
        hookwire::testing::clients::standardwebhooks_verifies(&first, &got)
            .expect("the Standard Webhooks reference library verifies the delivery");
        // Basic auth from the URL keeps working alongside.
        let basic = format!("Basic {}", STANDARD.encode("hook:pw"));
        assert_eq!(got.headers["authorization"], basic.as_str());

        // Rotation: the new secret signs first, the old one alongside.
        let second = rotate(&app, &key, &webhook).await;
        assert_ne!(first, second);
        app.ingest_accepted(&chat_started("1025707")).await;
        let got = receiver.next().await;
        let sigs = signatures(&got);
        assert_eq!(sigs.len(), 2, "{sigs:?}");
        // Either secret verifies with the reference library during the grace period.
        for secret in [&first, &second] {
            hookwire::testing::clients::standardwebhooks_verifies(secret, &got)
                .expect("verifies under both secrets while rotating");
        }
        assert!(verify(&second, &got, &sigs[0]));
        assert!(verify(&first, &got, &sigs[1]));
        assert!(!verify(&first, &got, &sigs[0]));

        // Other licenses cannot rotate it; unknown webhooks are 404.
        let other = app.create_license("999").await;
        let (status, _) = app
            .post(&other, &format!("/api/v1/webhooks/{webhook}/secret"))
            .await;
        assert_eq!(status, 404);
        let (status, _) = app.post(&key, "/api/v1/webhooks/nope/secret").await;
        assert_eq!(status, 404);
    }

    async fn after_the_grace_period_only_the_new_secret_signs() {
        let app = spawn_app_with(|s| s.secret_rotation_grace = Duration::ZERO).await;
        let key = app.create_license("1").await;
        let mut receiver = TestReceiver::start().await;
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        rotate(&app, &key, &webhook).await;
        let second = rotate(&app, &key, &webhook).await;
        app.ingest_accepted(&chat_started("1")).await;
        let got = receiver.next().await;
        let sigs = signatures(&got);
        assert_eq!(sigs.len(), 1);
        assert!(verify(&second, &got, &sigs[0]));
    }

    async fn gone_disables_the_webhook_at_once_until_re_enabled() {
        let app = spawn_app().await;
        let key = app.create_license("1").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(410, "gone")]);
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        app.ingest_accepted(&chat_started("1")).await;
        receiver.next().await;
        let list = app
            .wait_deliveries(&key, &webhook, |d| {
                d.len() == 1 && d[0]["state"] == "failed"
            })
            .await;
        assert_eq!(list[0]["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(list[0]["attempts"][0]["status"], 410);
        let (_, hook) = app.get(&key, &format!("/api/v1/webhooks/{webhook}")).await;
        assert_eq!(hook["enabled"], false);
        let reason = hook["disabled_reason"].as_str().unwrap();
        assert!(reason.contains("410") && reason.contains("20"), "{reason}");
        assert!(receiver.drain().is_empty());
        receiver.expect_silence(Duration::from_millis(400)).await;

        // Events for a disabled webhook are held, not attempted.
        let (status, body) = app.ingest(&chat_started("1")).await;
        assert_eq!((status, body["deliveries"].clone()), (202, json!(1)));
        let held = body["id"].clone();
        receiver.expect_silence(Duration::from_millis(300)).await;

        let (status, hook) = app
            .patch(
                &key,
                &format!("/api/v1/webhooks/{webhook}"),
                &json!({"enabled": true}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(hook["enabled"], true);
        assert_eq!(hook["disabled_reason"], Value::Null);
        // Re-enabled: the held event arrives, then new ones as usual.
        assert_eq!(receiver.next().await.json()["event_unique_id"], held);
        app.ingest_accepted(&chat_started("1")).await;
        receiver.next().await;
        app.wait_deliveries(&key, &webhook, |d| {
            d.len() == 3 && d[0]["state"] == "delivered" && d[1]["state"] == "delivered"
        })
        .await;
    }

    async fn deliveries_queued_behind_a_gone_receiver_wait_pending() {
        let app = spawn_app_with(|s| s.delivery.per_target_concurrency = 1).await;
        let key = app.create_license("1").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(410, "gone")]);
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        let (status, _) = app
            .post_platform(
                "/api/v1/events/batch",
                &json!((0..5).map(|_| chat_started("1")).collect::<Vec<_>>()),
            )
            .await;
        assert_eq!(status, 200);
        receiver.next().await;
        let list = app
            .wait_deliveries(&key, &webhook, |d| {
                d.len() == 5 && d.iter().any(|d| d["state"] == "failed")
            })
            .await;
        // An attempt wrongly made for the four behind it would come within a
        // few poll intervals.
        receiver.expect_silence(Duration::from_millis(300)).await;
        assert!(receiver.drain().is_empty(), "nothing more was attempted");
        let (_, body) = app
            .get(&key, &format!("/api/v1/webhooks/{webhook}/deliveries"))
            .await;
        let states: Vec<&str> = body["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["state"].as_str().unwrap())
            .collect();
        assert_eq!(
            states.iter().filter(|s| **s == "failed").count(),
            1,
            "{states:?}"
        );
        assert_eq!(
            states.iter().filter(|s| **s == "pending").count(),
            4,
            "{states:?}"
        );
        assert_eq!(list.len(), 5);

        // Re-enabled, the receiver gets the four that waited.
        app.patch(
            &key,
            &format!("/api/v1/webhooks/{webhook}"),
            &json!({"enabled": true}),
        )
        .await;
        for _ in 0..4 {
            receiver.next().await;
        }
        app.wait_deliveries(&key, &webhook, |d| {
            d.iter().filter(|d| d["state"] == "delivered").count() == 4
        })
        .await;
    }

    async fn a_webhook_failing_for_disable_after_is_disabled_and_holds_what_comes() {
        let app = spawn_app_with(|s| {
            s.delivery.retry_schedule = vec![Duration::from_millis(100); 8];
            s.delivery.disable_after = Duration::from_millis(300);
        })
        .await;
        let key = app.create_license("1").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script((0..20).map(|_| Reply::Status(500, "down")));
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        app.ingest_accepted(&chat_started("1")).await;
        let path = format!("/api/v1/webhooks/{webhook}");
        let hook = eventually("the webhook to be disabled", Duration::from_secs(10), async || {
            let (_, hook) = app.get(&key, &path).await;
            if hook["enabled"] == false {
                Ok(hook)
            } else {
                Err(hook)
            }
        })
        .await;
        assert_eq!(hook["enabled"], false, "{hook}");
        assert!(
            hook["disabled_reason"]
                .as_str()
                .unwrap()
                .contains("every attempt failed"),
            "{hook}"
        );
        // The delivery waits, pending, instead of burning its retries.
        let list = app
            .wait_deliveries(&key, &webhook, |d| d[0]["state"] == "pending")
            .await;
        let attempts = list[0]["attempts"].as_array().unwrap().len();
        // Disabled once 300 ms of failures passed, before the 9-attempt budget ran out.
        assert!((2..9).contains(&attempts), "{attempts} attempts");
        assert_eq!(receiver.drain().len(), attempts);
        receiver.expect_silence(Duration::from_millis(400)).await;

        // What comes while it is off is held, not attempted.
        let (status, body) = app.ingest(&chat_started("1")).await;
        assert_eq!((status, &body["deliveries"]), (202, &json!(1)), "{body}");
        let list = app.wait_deliveries(&key, &webhook, |d| d.len() == 2).await;
        assert_eq!((&list[0]["state"], &list[0]["event_id"]), (&json!("held"), &body["id"]));
        receiver.expect_silence(Duration::from_millis(300)).await;

        // Pointed at a receiver that works and enabled: the held one
        // arrives, and the older one resumes its retries there.
        let mut fixed = TestReceiver::start().await;
        let (status, _) = app
            .patch(&key, &path, &json!({"url": fixed.url("/"), "enabled": true}))
            .await;
        assert_eq!(status, 200);
        let mut got: Vec<Value> = Vec::new();
        for _ in 0..2 {
            got.push(fixed.next().await.json()["event_unique_id"].clone());
        }
        assert!(got.contains(&body["id"]) && got.contains(&list[1]["event_id"]), "{got:?}");
        app.wait_deliveries(&key, &webhook, |d| {
            d.iter().all(|d| d["state"] == "delivered")
        })
        .await;
    }

    async fn retry_after_is_honoured_and_bounded() {
        let app = spawn_app_with(|s| s.delivery.max_retry_after = Duration::from_secs(2)).await;
        let key = app.create_license("1").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([
            Reply::WithHeaders(429, vec![("retry-after", "1".into())]),
            Reply::WithHeaders(503, vec![("retry-after", "3600".into())]),
        ]);
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        app.ingest_accepted(&chat_started("1")).await;
        receiver.next().await;
        let t0 = Instant::now();
        receiver.next().await;
        let first_wait = t0.elapsed();
        assert!(
            first_wait >= Duration::from_millis(950),
            "429 Retry-After: 1 honoured: {first_wait:?}"
        );
        let t1 = Instant::now();
        // The schedule (100ms, 100ms) has one retry left; 3600 s is cut to 2 s.
        let last = tokio::time::timeout(Duration::from_secs(5), receiver.next())
            .await
            .expect("bounded by max_retry_after");
        let second_wait = t1.elapsed();
        assert!(
            second_wait >= Duration::from_millis(1900),
            "503 Retry-After: {second_wait:?}"
        );
        assert_eq!(last.json()["event_type"], "chat_started");
        app.wait_deliveries(&key, &webhook, |d| d[0]["state"] == "delivered")
            .await;

        // An HTTP date works too.
        let date = httpdate_in(Duration::from_secs(2));
        receiver.script([Reply::WithHeaders(429, vec![("retry-after", date)])]);
        app.ingest_accepted(&chat_started("1")).await;
        receiver.next().await;
        let t2 = Instant::now();
        receiver.next().await;
        assert!(
            t2.elapsed() >= Duration::from_millis(500),
            "{:?}",
            t2.elapsed()
        );
    }
}

crate::backend_tests! {
    async fn a_webhooks_rate_limit_paces_its_attempts() {
        let app = spawn_app().await;
        let key = app.create_license("1").await;
        let mut receiver = TestReceiver::start().await;
        let webhook = app
            .create_webhook(&key, "visitor_queued", &["visitor"], &receiver.url("/"))
            .await;
        let patch = |body: Value| {
            app.http
                .patch(app.url(&format!("/api/v1/webhooks/{webhook}")))
                .bearer_auth(&key)
                .json(&body)
                .send()
        };
        for bad in [json!(0), json!(-1), json!("fast"), json!(1.5), json!(20_000)] {
            let r = patch(json!({"max_per_second": bad})).await.unwrap();
            assert_eq!(r.status(), 400, "{bad}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["field"], "max_per_second");
        }
        let r = patch(json!({"max_per_second": 2})).await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["max_per_second"], 2);

        let batch: Vec<Value> = (0..6)
            .map(|i| json!({"event_type": "visitor_queued", "license_id": "1", "visitor": {"id": format!("V{i}")}}))
            .collect();
        let started = Instant::now();
        let (status, _) = app.post_platform("/api/v1/events/batch", &Value::Array(batch)).await;
        assert_eq!(status, 200);
        for _ in 0..6 {
            receiver.next().await;
        }
        // A burst of 2, then 2 a second: the sixth cannot arrive before 2 s.
        assert!(started.elapsed() >= Duration::from_millis(1900), "{:?}", started.elapsed());
        app.wait_deliveries(&key, &webhook, |d| {
            d.len() == 6 && d.iter().all(|x| x["state"] == "delivered")
        })
        .await;

        let r = patch(json!({"max_per_second": null})).await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["max_per_second"], Value::Null);
    }
}
