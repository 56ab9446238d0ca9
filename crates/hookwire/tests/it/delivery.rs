//! Delivery: the body, the headers, acknowledgement, retries, the log.

use crate::support::*;
use base64::Engine as _;
use serde_json::{json, Value};
use std::time::Duration;

/// License "8" with one `chat_changed` webhook, and its receiver.
async fn chat_changed_app() -> (TestApp, TestReceiver) {
    let app = spawn_app().await;
    let key = app.create_license("8").await;
    let receiver = TestReceiver::start().await;
    app.create_webhook(&key, "chat_changed", &["chat"], &receiver.url("/"))
        .await;
    (app, receiver)
}

/// An event of license "8" about chat `chat` with `tags`.
fn chat_with_tags(event_type: &str, chat: &str, tags: Value) -> Value {
    json!({"event_type": event_type, "license_id": "8", "chat": {"id": chat, "tags": tags}, "visitor": {"id": "v"}})
}

fn is_hex32(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')))
}

crate::backend_tests! {
    async fn body_carries_exactly_the_chosen_data_types_with_basic_auth() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut receiver = TestReceiver::start().await;
        let url = format!("http://livechat:p%40ss@{}/hook?x=1", receiver.addr);
        app.create_webhook(&key, "chat_started", &["pre_chat_survey", "chat"], &url)
            .await;

        let mut event = chat_started("1025707");
        event["chat"]["future_field"] = json!({"kept": [1, 2.5]});
        // Sent as text, so the number keeps the exact spelling the platform chose.
        let text = event.to_string().replace("2.5]", "2.50]");
        let r = app
            .http
            .post(app.url("/api/v1/events"))
            .bearer_auth(PLATFORM_KEY)
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let accepted: Value = r.json().await.unwrap();
        assert_eq!(accepted["deliveries"], 1);

        let got = receiver.next().await;
        assert_eq!(got.method, "POST");
        assert_eq!(got.uri.to_string(), "/hook?x=1");
        assert_eq!(got.headers["content-type"], "application/json");
        let expected_auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("livechat:p@ss")
        );
        assert_eq!(got.headers["authorization"], expected_auth.as_str());

        let text = String::from_utf8(got.body.to_vec()).unwrap();
        assert!(
            text.contains(r#""kept":[1,2.50]"#),
            "unknown fields pass through untouched: {text}"
        );
        let body = got.json();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "event_type",
                "token",
                "license_id",
                "chat",
                "pre_chat_survey",
                "event_unique_id"
            ]
        );
        assert_eq!(body["event_type"], "chat_started");
        assert_eq!(body["license_id"], "1025707");
        assert!(is_hex32(&body["token"]));
        assert_eq!(body["event_unique_id"], accepted["id"]);
        assert!(is_hex32(&body["event_unique_id"]));
        assert_eq!(
            body["pre_chat_survey"],
            json!([]),
            "a skipped survey is an empty list"
        );
        assert_eq!(body["chat"], event["chat"]);

        // The token is never stored, only its hash.
        let token = body["token"].as_str().unwrap();
        for entry in std::fs::read_dir(app.dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(32).any(|w| w == token.as_bytes()),
                "token found on disk"
            );
            assert!(
                !bytes.windows(4).any(|w| w == b"p@ss"),
                "decoded password found on disk"
            );
        }
    }

    async fn each_event_type_sends_what_it_supports() {
        let app = spawn_app().await;
        let key = app.create_license("3").await;
        let mut receiver = TestReceiver::start().await;
        app.create_webhook(&key, "visitor_queued", &["visitor"], &receiver.url("/"))
            .await;
        app.create_webhook(&key, "ticket_created", &["ticket"], &receiver.url("/"))
            .await;
        app.create_webhook(&key, "chat_ended", &[], &receiver.url("/"))
            .await;

        let ticket = json!({"id": "CCWWM", "status": "open", "subject": "Welcome", "tags": ["support"],
            "requester": {"mail": "mary.brown@email.com", "name": "Mary Brown", "utc_offset": 1},
            "source": {"type": "lc2", "url": null, "id": "NO4Y5FAERW"}});
        app.ingest(&json!({"event_type": "ticket_created", "license_id": "3", "ticket": ticket}))
            .await;
        let got = receiver.next().await.json();
        assert_eq!(got["ticket"], ticket);
        assert_eq!(got.as_object().unwrap().len(), 5);

        app.ingest(&json!({"event_type": "visitor_queued", "license_id": "3", "visitor": {"id": "V1", "name": "Ann"}})).await;
        let got = receiver.next().await.json();
        assert_eq!(got["visitor"], json!({"id": "V1", "name": "Ann"}));

        let mut ended = chat_started("3");
        ended["event_type"] = json!("chat_ended");
        app.ingest(&ended).await;
        let got = receiver.next().await.json();
        let keys: Vec<&str> = got
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["event_type", "token", "license_id", "event_unique_id"]
        );
    }

    async fn only_200_acknowledges_and_retries_carry_the_same_id() {
        let app = spawn_app().await;
        let key = app.create_license("4").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(201, "created"), Reply::Status(500, "oops")]);
        let hook = app
            .create_webhook(&key, "chat_started", &["visitor"], &receiver.url("/"))
            .await;
        app.ingest(&chat_started("4")).await;

        let bodies: Vec<Value> = vec![
            receiver.next().await.json(),
            receiver.next().await.json(),
            receiver.next().await.json(),
        ];
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "every retry sends the same body"
        );

        let list = app
            .wait_deliveries(&key, &hook, |d| {
                d.len() == 1 && d[0]["state"] == "delivered"
            })
            .await;
        let attempts = list[0]["attempts"].as_array().unwrap();
        let statuses: Vec<&Value> = attempts.iter().map(|a| &a["status"]).collect();
        assert_eq!(statuses, [&json!(201), &json!(500), &json!(200)]);
        assert_eq!(attempts[1]["response_excerpt"], "oops");
        assert_eq!(attempts[1]["error"], "HTTP 500");
        assert!(attempts[0]["latency_ms"].as_i64().unwrap() >= 0);
        assert!(attempts[0]["at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(list[0]["event_id"], bodies[0]["event_unique_id"]);
        assert_eq!(list[0]["next_attempt_at"], Value::Null);
    }

    async fn any_2xx_acknowledges_when_configured() {
        let app =
            spawn_app_with(|s| s.delivery.acknowledge = hookwire::config::Acknowledge::AnySuccess)
                .await;
        let key = app.create_license("4").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(204, "")]);
        let hook = app
            .create_webhook(&key, "chat_started", &[], &receiver.url("/"))
            .await;
        app.ingest(&chat_started("4")).await;
        receiver.next().await;
        let list = app
            .wait_deliveries(&key, &hook, |d| {
                d.len() == 1 && d[0]["state"] == "delivered"
            })
            .await;
        assert_eq!(list[0]["attempts"].as_array().unwrap().len(), 1);
    }

    async fn exhausted_retries_fail_and_can_be_redelivered() {
        let app = spawn_app().await;
        let key = app.create_license("5").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script((0..6).map(|_| Reply::Status(503, "down")));
        let hook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
        app.ingest(&chat_started("5")).await;
        app.ingest(&chat_started("5")).await;

        // 1 attempt + 2 retries (the test schedule), for each of the two events.
        let list = app
            .wait_deliveries(&key, &hook, |d| {
                d.len() == 2 && d.iter().all(|x| x["state"] == "failed")
            })
            .await;
        assert!(list
            .iter()
            .all(|d| d["attempts"].as_array().unwrap().len() == 3));
        for _ in 0..6 {
            receiver.next().await;
        }
        let (status, failed) = app
            .get(
                &key,
                &format!("/api/v1/webhooks/{hook}/deliveries?state=failed"),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(failed["deliveries"].as_array().unwrap().len(), 2);
        let (_, pending) = app
            .get(
                &key,
                &format!("/api/v1/webhooks/{hook}/deliveries?state=pending"),
            )
            .await;
        assert_eq!(pending["deliveries"], json!([]));

        // Redeliver one: the receiver is healthy now.
        let id = list[0]["id"].as_str().unwrap();
        let (status, body) = app
            .post(&key, &format!("/api/v1/deliveries/{id}/redeliver"))
            .await;
        assert_eq!(status, 202, "{body}");
        receiver.next().await;
        app.wait_deliveries(&key, &hook, |d| {
            d.iter().any(|x| x["id"] == id && x["state"] == "delivered")
        })
        .await;

        // Redeliver every failed one since a time.
        let since = before
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let (status, body) = app
            .post(
                &key,
                &format!("/api/v1/webhooks/{hook}/redeliver?since={since}"),
            )
            .await;
        assert_eq!(status, 202);
        assert_eq!(body["redelivered"], 1);
        receiver.next().await;
        app.wait_deliveries(&key, &hook, |d| d.iter().all(|x| x["state"] == "delivered"))
            .await;

        // Bad input to these routes.
        assert_eq!(
            app.post(&key, "/api/v1/deliveries/999999/redeliver")
                .await
                .0,
            404
        );
        assert_eq!(
            app.post(&key, "/api/v1/deliveries/abc/redeliver").await.0,
            404
        );
        let (status, body) = app
            .post(
                &key,
                &format!("/api/v1/webhooks/{hook}/redeliver?since=yesterday"),
            )
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("since"))
        );
        let (status, body) = app
            .get(
                &key,
                &format!("/api/v1/webhooks/{hook}/deliveries?state=lost"),
            )
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("state"))
        );
        let other = app.create_license("6").await;
        assert_eq!(
            app.post(&other, &format!("/api/v1/deliveries/{id}/redeliver"))
                .await
                .0,
            404
        );
    }

    async fn redirects_timeouts_and_refusals_are_retried_failures() {
        let app = spawn_app_with(|s| {
            s.delivery.retry_schedule = vec![];
            s.delivery.attempt_timeout = Duration::from_millis(700);
        })
        .await;
        let key = app.create_license("6").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([
            Reply::Redirect("/elsewhere"),
            Reply::Sleep(Duration::from_secs(3)),
        ]);
        let redirect = app
            .create_webhook(&key, "chat_started", &[], &receiver.url("/first"))
            .await;
        app.ingest(&chat_started("6")).await;
        assert_eq!(receiver.next().await.uri, "/first");
        let list = app
            .wait_deliveries(&key, &redirect, |d| {
                d.len() == 1 && d[0]["state"] == "failed"
            })
            .await;
        assert_eq!(list[0]["attempts"][0]["status"], 302);
        assert!(list[0]["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"));
        app.http
            .delete(app.url(&format!("/webhooks/{redirect}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();

        let slow = app
            .create_webhook(&key, "chat_started", &[], &receiver.url("/slow"))
            .await;
        app.ingest(&chat_started("6")).await;
        receiver.next().await;
        let list = app
            .wait_deliveries(&key, &slow, |d| d.len() == 1 && d[0]["state"] == "failed")
            .await;
        assert_eq!(list[0]["attempts"][0]["error"], "timed out");
        assert_eq!(list[0]["attempts"][0]["status"], Value::Null);
        receiver.expect_silence(Duration::from_millis(300)).await; // the redirect was never followed
        app.http
            .delete(app.url(&format!("/webhooks/{slow}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();

        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let refused = app
            .create_webhook(&key, "chat_started", &[], &format!("http://{closed}/"))
            .await;
        app.ingest(&chat_started("6")).await;
        let list = app
            .wait_deliveries(&key, &refused, |d| {
                d.len() == 1 && d[0]["state"] == "failed"
            })
            .await;
        assert!(list[0]["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("connection failed"));
    }

    async fn response_excerpt_is_capped_at_4_kib() {
        let app = spawn_app().await;
        let key = app.create_license("7").await;
        let mut receiver = TestReceiver::start().await;
        let big: &'static str = Box::leak("y".repeat(10_000).into_boxed_str());
        receiver.script([Reply::Status(200, big)]);
        let hook = app
            .create_webhook(&key, "chat_started", &[], &receiver.url("/"))
            .await;
        app.ingest(&chat_started("7")).await;
        receiver.next().await;
        let list = app
            .wait_deliveries(&key, &hook, |d| {
                d.len() == 1 && d[0]["state"] == "delivered"
            })
            .await;
        assert_eq!(
            list[0]["attempts"][0]["response_excerpt"]
                .as_str()
                .unwrap()
                .len(),
            4096
        );
    }

    async fn chat_changed_is_sent_only_when_the_tag_set_changes() {
        let (app, mut receiver) = chat_changed_app().await;
        app.ingest_accepted(&chat_with_tags("chat_started", "C1", json!(["a", "b"])))
            .await;
        let changed = |chat: &str, tags: Value| chat_with_tags("chat_changed", chat, tags);

        let (status, body) = app.ingest(&changed("C1", json!(["b", "a", "a"]))).await;
        assert_eq!(
            (status, body["deliveries"].as_u64()),
            (202, Some(0)),
            "same set: recorded, not sent"
        );
        let (_, body) = app.ingest(&changed("C1", json!(["a"]))).await;
        assert_eq!(body["deliveries"], 1);
        assert_eq!(receiver.next().await.json()["chat"]["tags"], json!(["a"]));
        let (_, body) = app.ingest(&changed("C1", json!(["a"]))).await;
        assert_eq!(body["deliveries"], 0);
        let (_, body) = app.ingest(&changed("C2", json!([]))).await;
        assert_eq!(
            body["deliveries"], 1,
            "a chat never seen before counts as changed"
        );
        receiver.next().await;

        app.ingest_accepted(&chat_with_tags("chat_ended", "C1", json!(["z"])))
            .await;
        let (_, body) = app.ingest(&changed("C1", json!(["z"]))).await;
        assert_eq!(body["deliveries"], 0, "chat_ended updates what was seen");
        receiver.expect_silence(Duration::from_millis(300)).await;
    }

    async fn chat_changed_rule_holds_inside_one_batch_as_one_event_after_another() {
        // PostgreSQL writes a batch with one statement per table; the rule
        // must still see each event against the tags the one before it left.
        let (app, mut receiver) = chat_changed_app().await;
        app.ingest_accepted(&chat_with_tags("chat_started", "OLD", json!(["x"])))
            .await;
        let changed = |chat: &str, tags: Value| chat_with_tags("chat_changed", chat, tags);
        let batch = json!([
            chat_with_tags("chat_started", "NEW", json!(["a"])),
            changed("NEW", json!(["a"])),
            changed("NEW", json!(["b"])),
            changed("NEW", json!(["b"])),
            changed("OLD", json!(["x"])),
            changed("OLD", json!(["y"])),
            changed("OLD", json!(["x"])),
            changed("FRESH", json!([])),
            changed("FRESH", json!([])),
        ]);
        let (status, body) = app.post_platform("/api/v1/events/batch", &batch).await;
        assert_eq!(status, 200, "{body}");
        let sent: Vec<u64> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["deliveries"].as_u64().unwrap())
            .collect();
        // chat_started goes to no webhook here (only chat_changed is configured).
        assert_eq!(sent, [0, 0, 1, 0, 0, 1, 1, 1, 0], "{body}");
        let mut tags: Vec<Value> = Vec::new();
        for _ in 0..4 {
            let r = receiver.next().await.json();
            tags.push(json!([r["chat"]["id"], r["chat"]["tags"]]));
        }
        tags.sort_by_key(|t| t.to_string());
        assert_eq!(
            tags,
            [
                json!(["FRESH", []]),
                json!(["NEW", ["b"]]),
                json!(["OLD", ["x"]]),
                json!(["OLD", ["y"]])
            ]
        );
        // What the batch left is what later events are compared with.
        for (chat, tags) in [("NEW", json!(["b"])), ("OLD", json!(["x"])), ("FRESH", json!([]))] {
            let (_, body) = app.ingest(&changed(chat, tags)).await;
            assert_eq!(body["deliveries"], 0, "{chat}");
        }
        receiver.expect_silence(Duration::from_millis(300)).await;
    }

    async fn disabled_webhooks_receive_nothing_and_hold_it() {
        let app = spawn_app().await;
        let key = app.create_license("9").await;
        let mut receiver = TestReceiver::start().await;
        let hook = app
            .create_webhook(&key, "chat_started", &[], &receiver.url("/"))
            .await;
        app.http
            .patch(app.url(&format!("/api/v1/webhooks/{hook}")))
            .bearer_auth(&key)
            .json(&json!({"enabled": false}))
            .send()
            .await
            .unwrap();
        let (_, body) = app.ingest(&chat_started("9")).await;
        assert_eq!(body["deliveries"], 1, "held, not dropped");
        receiver.expect_silence(Duration::from_millis(300)).await;
        let list = app.wait_deliveries(&key, &hook, |d| d.len() == 1).await;
        assert_eq!(list[0]["state"], "held");
    }

    async fn private_targets_are_refused_by_default() {
        let app = spawn_app_with(|s| s.delivery.allow_private_targets = false).await;
        let key = app.create_license("10").await;
        let mut receiver = TestReceiver::start().await;
        let hook = app
            .create_webhook(&key, "chat_started", &[], &receiver.url("/"))
            .await;
        app.ingest(&chat_started("10")).await;
        let list = app
            .wait_deliveries(&key, &hook, |d| d.len() == 1 && d[0]["state"] == "failed")
            .await;
        assert_eq!(
            list[0]["attempts"][0]["error"],
            "target resolves to a private address"
        );
        assert_eq!(
            list[0]["attempts"].as_array().unwrap().len(),
            1,
            "a refused target is not retried"
        );
        receiver.expect_silence(Duration::from_millis(200)).await;
    }

    async fn pending_deliveries_survive_a_restart() {
        let app = spawn_app().await;
        let key = app.create_license("11").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(500, "no")]);
        let hook = app
            .create_webhook(&key, "chat_started", &[], &receiver.url("/"))
            .await;
        let app = app
            .restart(|s| s.delivery.retry_schedule = vec![Duration::from_secs(1)])
            .await;
        app.ingest(&chat_started("11")).await;
        receiver.next().await;
        // Stopped while the retry waits; the next instance sends it.
        let app = app.restart(|_| {}).await;
        receiver.next().await;
        app.wait_deliveries(&key, &hook, |d| {
            d.len() == 1 && d[0]["state"] == "delivered"
        })
        .await;
    }

    async fn a_backlog_beyond_one_webhooks_queue_is_all_delivered() {
        // One slot: the queue holds 256, so the rest of the first 300 is
        // given back to the database, and the webhook is saturated. The
        // first attempt is slow, so the next 200 arrive while it still is:
        // they are committed unleased, not handed over. All of it is claimed
        // as the webhook drains, each delivery attempted once.
        let app = spawn_app_with(|s| s.delivery.per_target_concurrency = 1).await;
        let key = app.create_license("12").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([Reply::Sleep(Duration::from_millis(500))]);
        let hook = app
            .create_webhook(&key, "visitor_queued", &["visitor"], &receiver.url("/"))
            .await;
        for (round, size) in [300, 200].into_iter().enumerate() {
            let batch: Vec<Value> = (0..size)
                .map(|i| json!({"event_type": "visitor_queued", "license_id": "12",
                                "visitor": {"id": format!("V{round}-{i}")}}))
                .collect();
            let (status, _) = app
                .post_platform("/api/v1/events/batch", &Value::Array(batch))
                .await;
            assert_eq!(status, 200);
        }
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 500 {
            let id = receiver.next().await.json()["visitor"]["id"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(seen.insert(id.clone()), "{id} arrived twice");
        }
        let list = app
            .wait_deliveries(&key, &hook, |d| {
                d.len() == 500 && d.iter().all(|x| x["state"] == "delivered")
            })
            .await;
        assert!(
            list.iter()
                .all(|d| d["attempts"].as_array().unwrap().len() == 1),
            "nothing was attempted twice"
        );
        receiver.expect_silence(Duration::from_millis(200)).await;
    }
}

crate::backend_tests! {
    async fn allowed_networks_open_the_ssrf_guard_only_for_themselves() {
        let open = spawn_app_with(|s| {
            s.delivery.allow_private_targets = false;
            s.delivery.allowed_target_networks = vec!["127.0.0.0/8".parse().unwrap()];
        })
        .await;
        let key = open.create_license("13").await;
        let mut receiver = TestReceiver::start().await;
        let hook = open.create_webhook(&key, "chat_started", &[], &receiver.url("/")).await;
        open.ingest_accepted(&chat_started("13")).await;
        receiver.next().await;
        open.wait_deliveries(&key, &hook, |d| d.len() == 1 && d[0]["state"] == "delivered").await;

        let other = spawn_app_with(|s| {
            s.delivery.allow_private_targets = false;
            s.delivery.allowed_target_networks = vec!["10.0.0.0/8".parse().unwrap()];
        })
        .await;
        let key = other.create_license("13").await;
        let hook = other.create_webhook(&key, "chat_started", &[], &receiver.url("/")).await;
        other.ingest_accepted(&chat_started("13")).await;
        let list = other.wait_deliveries(&key, &hook, |d| d.len() == 1 && d[0]["state"] == "failed").await;
        assert_eq!(list[0]["attempts"][0]["error"], "target resolves to a private address");
        receiver.expect_silence(Duration::from_millis(200)).await;
    }
}
