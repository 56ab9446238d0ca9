//! A LiveChat v3 webhook's switches through hookwire's own routes
//! (`/api/v1/v3-webhooks`) and the web app: switched off, it holds its
//! events, delivered or discarded when it is switched on again; ordered, each
//! chat's events go one at a time in the order they came.

use crate::support::*;
use crate::web::Browser;
use serde_json::{json, Value};
use std::time::Duration;

/// Registers a `thread_tagged` license webhook of `app` to `url` and
/// switches `app`'s license webhooks on; answers the webhook's id.
async fn thread_tagged_webhook(app: &TestApp, key: &str, url: &str) -> String {
    let r = app
        .http
        .post(app.url("/v3.6/configuration/action/register_webhook"))
        .bearer_auth(key)
        .json(
            &json!({"action": "thread_tagged", "secret_key": "k", "url": url,
                      "type": "license", "owner_client_id": "app"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .http
        .post(app.url("/v3.6/configuration/action/enable_license_webhooks"))
        .bearer_auth(key)
        .json(&json!({"owner_client_id": "app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    id
}

fn tagged(license: &str, chat: &str, tag: &str) -> Value {
    json!({"action": "thread_tagged", "license_id": license,
           "payload": {"chat_id": chat, "thread_id": "T", "tag": tag}})
}

crate::backend_tests! {
    async fn a_v3_webhook_switched_off_holds_its_events_until_switched_on() {
        // One attempt at a time: arrivals show the order sent.
        let app = spawn_app_with(|s| s.delivery.per_target_concurrency = 1).await;
        let key = app.create_license("7").await;
        let mut receiver = TestReceiver::start().await;
        let id = thread_tagged_webhook(&app, &key, &receiver.url("/v3")).await;
        let path = format!("/api/v1/v3-webhooks/{id}");

        let (status, off) = app.patch(&key, &path, &json!({"enabled": false})).await;
        assert_eq!((status, &off["enabled"], &off["ordered"]), (200, &json!(false), &json!(false)), "{off}");
        let mut sent = Vec::new();
        for tag in ["a", "b"] {
            let (status, body) = app.ingest(&tagged("7", "C1", tag)).await;
            assert_eq!((status, &body["deliveries"]), (202, &json!(1)), "{body}");
            sent.push(body["id"].as_str().unwrap().to_string());
        }
        let (_, shown) = app.get(&key, &path).await;
        assert_eq!(shown["held_deliveries"], 2, "{shown}");
        let (_, list) = app.get(&key, "/api/v1/v3-webhooks").await;
        assert_eq!(list["webhooks"][0]["id"], id.as_str(), "{list}");
        receiver.expect_silence(Duration::from_millis(300)).await;

        // Bad switches are named.
        let (status, bad) = app.patch(&key, &path, &json!({"discard_held": true})).await;
        assert_eq!((status, &bad["error"]["field"]), (400, &json!("discard_held")), "{bad}");
        let (status, bad) = app.patch(&key, &path, &json!({"ordered": "yes"})).await;
        assert_eq!((status, &bad["error"]["field"]), (400, &json!("ordered")), "{bad}");
        let (status, bad) = app.patch(&key, &path, &json!({"url": "https://elsewhere.example.com"})).await;
        assert_eq!(status, 400, "{bad}");
        assert!(bad["error"]["message"].as_str().unwrap().contains("url"), "{bad}");

        // On again: what it held arrives, oldest first.
        let (status, on) = app.patch(&key, &path, &json!({"enabled": true})).await;
        assert_eq!((status, &on["enabled"]), (200, &json!(true)), "{on}");
        for want in &sent {
            assert_eq!(receiver.next().await.json()["payload"]["tag"], if want == &sent[0] { "a" } else { "b" });
        }
        let (_, shown) = app.get(&key, &path).await;
        assert_eq!(shown["held_deliveries"], 0, "{shown}");

        // Off, one held, on with discard_held: discarded, never sent. The
        // web app's row offers the choice.
        app.patch(&key, &path, &json!({"enabled": false})).await;
        app.ingest_accepted(&tagged("7", "C1", "c")).await;
        let mut browser = Browser::new(&app);
        browser.sign_in("7", &key).await;
        let page = browser.get("/ui/v3-webhooks").await;
        assert!(page.body.contains("Enable, discard the 1 held"), "{}", page.body);
        let csrf = browser.csrf("/ui/v3-webhooks").await;
        let r = browser.post(&format!("/ui/v3-webhooks/{id}"), &[
            ("csrf", csrf.as_str()), ("enabled", "true"), ("discard_held", "true"),
        ]).await;
        assert_eq!((r.status, r.location.as_str()), (303, "/ui/v3-webhooks?n=enabled_discarded"));
        receiver.expect_silence(Duration::from_millis(300)).await;
        let list = app.wait_deliveries(&key, &id, |l| l.len() == 3).await;
        assert_eq!(list[0]["state"], "discarded", "{list:?}");

        // Send test: a sample of the action in the six-key envelope, with
        // the webhook's secret key, not logged.
        let csrf = browser.csrf("/ui/v3-webhooks").await;
        let page = browser.post(&format!("/ui/v3-webhooks/{id}/test"), &[("csrf", csrf.as_str())]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(r#"id="v3-test-result""#), "{}", page.body);
        let sample = receiver.next().await.json();
        let keys: Vec<&str> = sample.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6, "{sample}");
        assert_eq!((&sample["action"], &sample["secret_key"]), (&json!("thread_tagged"), &json!("k")), "{sample}");
        assert_eq!(app.wait_deliveries(&key, &id, |l| l.len() == 3).await.len(), 3);
    }

    async fn an_ordered_v3_webhook_keeps_each_chats_events_in_order() {
        let app = spawn_app_with(|s| {
            s.delivery.v3_retry_schedule = vec![Duration::from_millis(200); 3];
            s.delivery.retry_jitter = 0.0;
            s.delivery.per_target_concurrency = 8;
        })
        .await;
        let key = app.create_license("7").await;
        let receiver = LineReceiver::start(Duration::from_millis(2), |body, attempt| {
            let tag = body["payload"]["tag"].as_str().unwrap_or_default();
            if tag.starts_with("fail-once") && attempt == 1 { 500 } else { 200 }
        })
        .await;
        let id = thread_tagged_webhook(&app, &key, &receiver.url).await;
        // Switched in the web app.
        let mut browser = Browser::new(&app);
        browser.sign_in("7", &key).await;
        let csrf = browser.csrf("/ui/v3-webhooks").await;
        let r = browser.post(&format!("/ui/v3-webhooks/{id}"), &[("csrf", csrf.as_str()), ("ordered", "true")]).await;
        assert_eq!(r.status, 303, "{}", r.body);
        let (_, shown) = app.get(&key, &format!("/api/v1/v3-webhooks/{id}")).await;
        assert_eq!(shown["ordered"], true, "{shown}");

        // The receiver names a v3 delivery by its payload's text.
        let mut sent: std::collections::HashMap<String, Vec<String>> = Default::default();
        for i in 0..24 {
            let chat = format!("C{}", i % 4);
            let tag = if i % 3 == 0 { format!("fail-once-{i}") } else { format!("ok-{i}") };
            let event = tagged("7", &chat, &tag);
            app.ingest_accepted(&event).await;
            sent.entry(chat).or_default().push(event["payload"].to_string());
        }
        eventually("all 24 to be delivered", Duration::from_secs(60), async || {
            match receiver.delivered() { 24 => Ok(()), n => Err(format!("{n}")) }
        })
        .await;
        assert_eq!(receiver.delivered_by_key(), sent, "each chat in ingest order");
        assert_eq!(receiver.attempted_by_key(), sent, "no attempt out of turn");
        assert!(receiver.overlaps().is_empty(), "{:?}", receiver.overlaps());
        let failed = receiver.arrivals().iter().filter(|a| a.status == 500).count();
        assert_eq!(failed, 8);
    }

    async fn a_v3_webhook_that_asks_has_its_filtered_events_logged() {
        let app = spawn_app().await;
        let key = app.create_license("7").await;
        let mut receiver = TestReceiver::start().await;
        let r = app
            .http
            .post(app.url("/v3.6/configuration/action/register_webhook"))
            .bearer_auth(&key)
            .json(&json!({"action": "incoming_event", "secret_key": "k", "url": receiver.url("/e"),
                          "type": "license", "owner_client_id": "app",
                          "filters": {"author_type": "customer"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let r = app.http.post(app.url("/v3.6/configuration/action/enable_license_webhooks"))
            .bearer_auth(&key).json(&json!({"owner_client_id": "app"})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let by_agent = json!({"action": "incoming_event", "license_id": "7",
            "payload": {"chat_id": "C", "thread_id": "T", "event": {"type": "message"}},
            "context": {"author_type": "agent"}});

        // Not asked: an excluded event leaves no trace.
        let (status, body) = app.ingest(&by_agent).await;
        assert_eq!((status, &body["deliveries"]), (202, &json!(0)), "{body}");
        let path = format!("/api/v1/webhooks/{id}/deliveries");
        let (_, log) = app.get(&key, &path).await;
        assert_eq!(log["deliveries"], json!([]), "{log}");

        // Asked: it is logged, final and never sent, saying which filter.
        let (status, on) = app.patch(&key, &format!("/api/v1/v3-webhooks/{id}"), &json!({"log_filtered": true})).await;
        assert_eq!((status, &on["log_filtered"]), (200, &json!(true)), "{on}");
        let (status, body) = app.ingest(&by_agent).await;
        assert_eq!((status, &body["deliveries"]), (202, &json!(0)), "{body}");
        let (_, log) = app.get(&key, &path).await;
        let logged = &log["deliveries"][0];
        assert_eq!(logged["state"], "filtered", "{log}");
        let why = logged["filtered_by"].as_str().unwrap();
        assert!(why.starts_with("author_type"), "{why}");
        let (_, only) = app.get(&key, &format!("{path}?state=filtered")).await;
        assert_eq!(only["deliveries"].as_array().unwrap().len(), 1, "{only}");
        receiver.expect_silence(Duration::from_millis(300)).await;

        // The web app's log says so too.
        let mut browser = Browser::new(&app);
        browser.sign_in("7", &key).await;
        let page = browser.get(&format!("/ui/deliveries?webhook={id}")).await;
        assert!(page.body.contains("filtered out, never sent (author_type"), "{}", page.body);
    }
}
