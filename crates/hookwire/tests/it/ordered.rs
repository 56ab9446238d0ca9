//! Ordered delivery (`store::rules::ordering`): an ordered webhook's
//! deliveries of one chat go one at a time, in the order their events were
//! accepted, through retries; other chats never wait for them; a delivery
//! that fails for good is gone past and the log says so; the flag is set,
//! shown and checked through hookwire's own routes only. Three nodes and a
//! `kill -9` are in `several_nodes.rs`.

use crate::support::*;
use crate::web::Browser;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Creates an ordered `chat_started` webhook for license `key` to `url`
/// through hookwire's own route; answers its id.
async fn ordered_webhook(app: &TestApp, key: &str, url: &str) -> String {
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(key)
        .json(&json!({"event_type": "chat_started", "data_types": ["chat"], "url": url, "ordered": true}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!((status, &body["ordered"]), (201, &json!(true)), "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// A `chat_started` of `chat` for license 1; `mark` rides along inside the
/// chat (unknown fields pass through) for the receiver to act on.
fn event_of(chat: &str, mark: &str) -> Value {
    json!({
        "event_type": "chat_started", "license_id": "1",
        "chat": {"id": chat, "test_mark": mark},
        "visitor": {"id": "V1"}
    })
}

fn mark_of(body: &Value) -> &str {
    body["chat"]["test_mark"].as_str().unwrap_or_default()
}

/// Reports `events` one at a time; answers their ids by chat, in the order
/// they were accepted.
async fn ingest_in_turn(app: &TestApp, events: &[Value]) -> HashMap<String, Vec<String>> {
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for ev in events {
        let id = app.ingest_accepted(ev).await;
        let chat = ev["chat"]["id"].as_str().unwrap().to_string();
        sent.entry(chat).or_default().push(id);
    }
    sent
}

/// The webhook's deliveries by event id, as the log shows them.
async fn log_by_event(app: &TestApp, key: &str, webhook: &str) -> HashMap<String, Value> {
    let (status, body) = app
        .get(
            key,
            &format!("/api/v1/webhooks/{webhook}/deliveries?limit=500"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["event_id"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

crate::backend_tests! {
    async fn failed_first_attempts_keep_each_chats_events_in_order() {
        // Quick retries; several attempts to the webhook at once, so chats
        // go side by side and only the order rule keeps a chat in line.
        let app = spawn_app_with(|s| {
            s.delivery.retry_schedule = vec![Duration::from_millis(200); 5];
            s.delivery.retry_jitter = 0.0;
            s.delivery.per_target_concurrency = 8;
        })
        .await;
        let key = app.create_license("1").await;
        // Every third event fails its first attempt.
        let receiver = LineReceiver::start(Duration::from_millis(2), |body, attempt| {
            if mark_of(body) == "fail-once" && attempt == 1 { 500 } else { 200 }
        })
        .await;
        ordered_webhook(&app, &key, &receiver.url).await;

        let events: Vec<Value> = (0..48)
            .map(|i| event_of(&format!("C{}", i % 6), if i % 3 == 0 { "fail-once" } else { "" }))
            .collect();
        let sent = ingest_in_turn(&app, &events).await;
        eventually("all 48 events to be delivered", Duration::from_secs(60), async || {
            match receiver.delivered() {
                48 => Ok(()),
                n => Err(format!("{n} delivered")),
            }
        })
        .await;
        assert_eq!(receiver.delivered_by_key(), sent, "each chat's deliveries in ingest order");
        // Not even an attempt of a later event came before an earlier one's
        // success: a chat's attempts never interleave.
        assert_eq!(receiver.attempted_by_key(), sent);
        assert!(receiver.overlaps().is_empty(), "{:?}", receiver.overlaps());
        // The retries really happened.
        let failed = receiver.arrivals().iter().filter(|a| a.status == 500).count();
        assert_eq!(failed, 16);
    }

    async fn one_stuck_chat_holds_up_only_itself_and_the_log_says_what_waits() {
        let app = spawn_app_with(|s| {
            s.delivery.retry_schedule = vec![Duration::from_secs(600)];
            s.delivery.retry_jitter = 0.0;
        })
        .await;
        let key = app.create_license("1").await;
        let receiver = LineReceiver::start(Duration::ZERO, |body, _| {
            if mark_of(body) == "stuck" { 503 } else { 200 }
        })
        .await;
        let webhook = ordered_webhook(&app, &key, &receiver.url).await;

        // Chat A's first event waits ten minutes for its retry; chat B's
        // events, reported after A's, all go meanwhile.
        let mut events = vec![event_of("A", "stuck"), event_of("A", ""), event_of("A", "")];
        events.extend((0..5).map(|_| event_of("B", "")));
        let sent = ingest_in_turn(&app, &events).await;
        eventually("chat B's events to be delivered", Duration::from_secs(30), async || {
            match receiver.delivered_by_key().get("B") {
                Some(b) if b == &sent["B"] => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        // Chat A's later events were never attempted.
        let a_attempts: Vec<_> = receiver.arrivals().into_iter().filter(|a| a.key == "A").collect();
        assert!(a_attempts.iter().all(|a| a.event == sent["A"][0]), "{a_attempts:?}");

        let log = log_by_event(&app, &key, &webhook).await;
        let (first, second, third) = (&log[&sent["A"][0]], &log[&sent["A"][1]], &log[&sent["A"][2]]);
        let first_id = first["id"].as_str().unwrap();
        assert_eq!(first["ordering"]["key"], "A", "{first}");
        assert_eq!(first["ordering"]["waits_for"], Value::Null, "{first}");
        for later in [second, third] {
            assert_eq!(later["state"], "pending", "{later}");
            assert_eq!(later["ordering"]["waits_for"], first_id, "{later}");
            assert_eq!(later["next_attempt_at"], Value::Null, "{later}");
            let note = later["ordering"]["note"].as_str().unwrap();
            assert!(note.contains(&format!("waits for delivery {first_id}")), "{note}");
        }
        let b = &log[&sent["B"][0]];
        assert_eq!((&b["state"], &b["ordering"]["key"]), (&json!("delivered"), &json!("B")), "{b}");

        // The web app says the same.
        let mut browser = Browser::new(&app);
        browser.sign_in("1", &key).await;
        let second_id = second["id"].as_str().unwrap();
        let page = browser.get(&format!("/ui/deliveries/{second_id}")).await;
        assert!(
            page.body.contains(&format!(r#"waits for <a href="/ui/deliveries/{first_id}">#{first_id}</a>"#)),
            "{}", page.body
        );
        let list = browser.get(&format!("/ui/deliveries?webhook={webhook}")).await;
        assert!(list.body.contains(&format!("waits for #{first_id}")), "{}", list.body);
    }

    async fn a_delivery_that_fails_for_good_is_gone_past_and_the_log_says_so() {
        let app = spawn_app_with(|s| {
            s.delivery.retry_schedule = vec![Duration::from_millis(100)];
            s.delivery.retry_jitter = 0.0;
            s.delivery.per_target_concurrency = 4;
        })
        .await;
        let key = app.create_license("1").await;
        let receiver = LineReceiver::start(Duration::ZERO, |body, _| {
            if mark_of(body) == "never" { 500 } else { 200 }
        })
        .await;
        let webhook = ordered_webhook(&app, &key, &receiver.url).await;
        let sent = ingest_in_turn(
            &app,
            &[event_of("A", ""), event_of("A", "never"), event_of("A", ""), event_of("A", "")],
        )
        .await;
        let a = &sent["A"];
        eventually("the rest of chat A to be delivered", Duration::from_secs(30), async || {
            match receiver.delivered_by_key().get("A") {
                Some(got) if got.len() == 3 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        assert_eq!(receiver.delivered_by_key()["A"], vec![a[0].clone(), a[2].clone(), a[3].clone()]);
        // The failed one had both its attempts before the next one's first.
        assert_eq!(receiver.attempted_by_key()["A"], *a);

        let log = log_by_event(&app, &key, &webhook).await;
        let failed = &log[&a[1]];
        assert_eq!(failed["state"], "failed", "{failed}");
        let note = failed["ordering"]["note"].as_str().unwrap();
        assert!(note.contains("went on past it"), "{note}");
        let failed_id = failed["id"].as_str().unwrap();
        for later in [&log[&a[2]], &log[&a[3]]] {
            assert_eq!(later["ordering"]["after_failed"], json!([failed_id]), "{later}");
        }
        assert_eq!(log[&a[0]]["ordering"]["after_failed"], json!([]));
    }

    async fn a_redelivery_takes_its_turn_behind_what_is_pending() {
        let app = spawn_app_with(|s| {
            s.delivery.retry_schedule = vec![Duration::from_secs(600)];
            s.delivery.retry_jitter = 0.0;
        })
        .await;
        let key = app.create_license("1").await;
        // "hold" fails until the test lets it through.
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gate = open.clone();
        let receiver = LineReceiver::start(Duration::ZERO, move |body, _| {
            let held = mark_of(body) == "hold" && !gate.load(std::sync::atomic::Ordering::Relaxed);
            if held { 503 } else { 200 }
        })
        .await;
        let webhook = ordered_webhook(&app, &key, &receiver.url).await;
        let first = ingest_in_turn(&app, &[event_of("A", "")]).await["A"][0].clone();
        eventually("the first event to arrive", Duration::from_secs(30), async || {
            match receiver.delivered() { 1 => Ok(()), n => Err(format!("{n}")) }
        })
        .await;
        // The next one of chat A is stuck in its retry; a third waits behind it.
        let later = ingest_in_turn(&app, &[event_of("A", "hold"), event_of("A", "")]).await["A"].clone();
        eventually("the stuck one to be attempted", Duration::from_secs(30), async || {
            match receiver.arrivals().len() { 2 => Ok(()), n => Err(format!("{n}")) }
        })
        .await;
        // Redelivering the first (delivered) event: it is the earliest of
        // its chat's unfinished deliveries now, so it goes first, and what
        // waited goes on after it in order once the stuck one passes.
        let log = log_by_event(&app, &key, &webhook).await;
        let first_id = log[&first]["id"].as_str().unwrap().to_string();
        let (status, body) = app.post(&key, &format!("/api/v1/deliveries/{first_id}/redeliver")).await;
        assert!(status == 200 || status == 202, "{status} {body}");
        // The stuck one is in its retry, not in flight: the redelivery goes.
        eventually("the redelivery to arrive", Duration::from_secs(30), async || {
            match receiver.arrivals().iter().filter(|a| a.event == first).count() {
                2 => Ok(()),
                n => Err(format!("{n}")),
            }
        })
        .await;
        open.store(true, std::sync::atomic::Ordering::Relaxed);
        let (status, body) = app.post(&key, &format!("/api/v1/deliveries/{}/redeliver", log[&later[0]]["id"].as_str().unwrap())).await;
        assert!(status == 200 || status == 202, "{status} {body}");
        eventually("the rest of chat A to arrive", Duration::from_secs(30), async || {
            match receiver.delivered() { 3 => Ok(()), n => Err(format!("{n}")) }
        })
        .await;
        assert!(receiver.overlaps().is_empty(), "{:?}", receiver.overlaps());
        let got: Vec<String> = receiver.arrivals().iter().filter(|a| a.status == 200).map(|a| a.event.clone()).collect();
        assert_eq!(got, vec![first.clone(), first, later[0].clone(), later[1].clone()]);
    }

    async fn the_flag_is_checked_shown_and_kept_off_livechats_routes() {
        let app = spawn_app().await;
        let key = app.create_license("1").await;
        let receiver = TestReceiver::start().await;
        let http = reqwest::Client::new();
        let create = |body: Value| http.post(app.url("/api/v1/webhooks")).bearer_auth(&key).json(&body).send();
        let r = create(json!({"event_type": "chat_started", "url": receiver.url("/"), "ordered": "yes"})).await.unwrap();
        let (status, body) = (r.status().as_u16(), r.json::<Value>().await.unwrap());
        assert_eq!((status, &body["error"]["field"]), (400, &json!("ordered")), "{body}");

        // Unordered unless asked; PATCH switches it and GET shows it.
        let webhook = app.create_webhook(&key, "chat_started", &["chat"], &receiver.url("/")).await;
        let path = format!("/api/v1/webhooks/{webhook}");
        let (_, shown) = app.get(&key, &path).await;
        assert_eq!(shown["ordered"], false, "{shown}");
        let (status, bad) = app.patch(&key, &path, &json!({"ordered": "yes"})).await;
        assert_eq!((status, &bad["error"]["field"]), (400, &json!("ordered")), "{bad}");
        let (status, on) = app.patch(&key, &path, &json!({"ordered": true})).await;
        assert_eq!((status, &on["ordered"]), (200, &json!(true)), "{on}");
        let (_, shown) = app.get(&key, &path).await;
        assert_eq!(shown["ordered"], true, "{shown}");

        // LiveChat's routes keep LiveChat's shapes: no such field in or out.
        let r = http.post(app.url("/webhooks")).bearer_auth(&key)
            .json(&json!({"event_type": "chat_ended", "url": receiver.url("/"), "ordered": true}))
            .send().await.unwrap();
        let (status, body) = (r.status().as_u16(), r.json::<Value>().await.unwrap());
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap().contains("ordered"), "{body}");
        let (_, list) = app.get(&key, "/webhooks").await;
        assert!(list["events"][0].get("ordered").is_none(), "{list}");

        // The web app's form sets it, and shows it.
        let mut browser = Browser::new(&app);
        browser.sign_in("1", &key).await;
        let csrf = browser.csrf("/ui/webhooks/new").await;
        let r = browser.post("/ui/webhooks", &[
            ("csrf", csrf.as_str()), ("event_type", "ticket_created"), ("data_types[]", "ticket"),
            ("url", "https://example.com/tickets"), ("ordered", "true"),
        ]).await;
        assert_eq!(r.status, 303, "{}", r.body);
        let (_, all) = app.get(&key, "/api/v1/webhooks").await;
        let made = all["webhooks"].as_array().unwrap().iter().find(|w| w["event_type"] == "ticket_created").unwrap().clone();
        assert_eq!(made["ordered"], true, "{made}");
        let edit = browser.get(&format!("/ui/webhooks/{}", made["id"].as_str().unwrap())).await;
        assert!(edit.body.contains(r#"name="ordered" value="true" checked"#), "{}", edit.body);
        let list = browser.get("/ui/webhooks").await;
        assert!(list.body.contains(">ordered</span>"), "{}", list.body);

        // An event without a chat id goes unordered, and the log says why.
        app.ingest_accepted(&event_of("", "")).await;
        let list = app.wait_deliveries(&key, &webhook, |l| l.len() == 1).await;
        let ordering = &list[0]["ordering"];
        assert_eq!(ordering["key"], Value::Null, "{ordering}");
        let note = ordering["note"].as_str().unwrap();
        assert!(note.contains("delivered unordered") && note.contains("no chat id"), "{note}");
    }

    async fn the_prune_pass_wakes_a_delivery_whose_wake_up_was_missed() {
        let app = spawn_app_with(|s| {
            s.delivery.retry_schedule = vec![Duration::from_secs(600)];
            s.delivery.retry_jitter = 0.0;
            s.retention.prune_interval = Duration::from_millis(200);
        })
        .await;
        let key = app.create_license("1").await;
        let receiver = LineReceiver::start(Duration::ZERO, |body, _| {
            if mark_of(body) == "stuck" { 503 } else { 200 }
        })
        .await;
        let webhook = ordered_webhook(&app, &key, &receiver.url).await;
        let sent = ingest_in_turn(&app, &[event_of("A", "stuck"), event_of("A", "")]).await;
        app.wait_deliveries(&key, &webhook, |l| {
            l.iter().any(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
        })
        .await;
        // Behind the store's back, the stuck one ends without waking the
        // next: a lost wake-up, which nothing but the safety net repairs.
        let log = log_by_event(&app, &key, &webhook).await;
        let stuck = log[&sent["A"][0]]["id"].as_str().unwrap().to_string();
        hookwire::testing::inspect::execute_stored(
            &app,
            &format!("UPDATE deliveries SET state = 'failed' WHERE id = {stuck}"),
        )
        .await;
        eventually("the stranded one to be delivered", Duration::from_secs(30), async || {
            match receiver.delivered_by_key().get("A") {
                Some(a) if a == &vec![sent["A"][1].clone()] => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
}
