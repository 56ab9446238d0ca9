//! Tenant isolation: every license-scoped route (see `api/mod.rs`), called
//! with another license's key, finds nothing and changes nothing.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// What the owner sees: its webhooks, its deliveries, its visitors.
async fn snapshot(app: &TestApp, key: &str, webhook: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/webhooks".to_string(),
        format!("/api/v1/webhooks/{webhook}"),
        format!("/api/v1/webhooks/{webhook}/deliveries"),
        "/api/v1/deliveries".to_string(),
        "/api/v1/visitors".to_string(),
        "/webhooks".to_string(),
        "/visitors/S1354547427.0c151b0e1b/details".to_string(),
    ] {
        let (status, mut body) = app.get(key, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        // Due times move as the poller works; the rest must not.
        if let Some(list) = body["deliveries"].as_array_mut() {
            for d in list {
                d["next_attempt_at"] = Value::Null;
            }
        }
        out.push(body);
    }
    out
}

crate::backend_tests! {
    async fn a_foreign_license_key_reaches_nothing_and_changes_nothing() {
        let app = spawn_app().await;
        let owner = app.create_license("100").await;
        let stranger = app.create_license("200").await;
        let mut receiver = TestReceiver::start().await;
        // A failed delivery (so there is something to redeliver), a secret, details.
        receiver.script((0..3).map(|_| Reply::Status(500, "no")));
        let webhook = app
            .create_webhook(
                &owner,
                "chat_started",
                &["chat", "visitor"],
                &receiver.url("/"),
            )
            .await;
        app.ingest_accepted(&chat_started("100")).await;
        let got = receiver.next().await;
        let token = got.json()["token"].as_str().unwrap().to_string();
        receiver.next().await;
        receiver.next().await;
        let deliveries = app
            .wait_deliveries(&owner, &webhook, |d| d[0]["state"] == "failed")
            .await;
        let delivery = deliveries[0]["id"].as_str().unwrap().to_string();
        let (status, _) = app
            .post(&owner, &format!("/api/v1/webhooks/{webhook}/secret"))
            .await;
        assert_eq!(status, 200);
        let r = app
            .http
            .post(app.url("/visitors/S1354547427.0c151b0e1b/details"))
            .json(&json!({"license_id": "100", "token": token, "id": "crm",
                          "fields": [{"name": "Age", "value": "36"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let before = snapshot(&app, &owner, &webhook).await;

        // Reads: 404 for one thing, empty for lists.
        for path in [
            format!("/api/v1/webhooks/{webhook}"),
            format!("/api/v1/webhooks/{webhook}/deliveries"),
            "/visitors/S1354547427.0c151b0e1b/details".to_string(),
            "/v2/visitors/S1354547427.0c151b0e1b/details".to_string(),
        ] {
            let (status, body) = app.get(&stranger, &path).await;
            assert_eq!(status, 404, "GET {path}: {body}");
        }
        let (_, body) = app.get(&stranger, "/api/v1/webhooks").await;
        assert_eq!(body["webhooks"], json!([]));
        for path in ["/webhooks", "/v2/webhooks"] {
            let (_, body) = app.get(&stranger, path).await;
            assert_eq!(body["events"], json!([]), "{path}");
        }
        for path in [
            "/api/v1/deliveries".to_string(),
            "/api/v1/deliveries?state=failed".to_string(),
        ] {
            let (status, body) = app.get(&stranger, &path).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(body["deliveries"], json!([]), "{path}");
        }
        let (_, body) = app.get(&stranger, "/api/v1/visitors").await;
        assert_eq!(body["visitors"], json!([]));

        // Writes: 404, nothing done.
        for path in [
            format!("/api/v1/webhooks/{webhook}/secret"),
            format!("/api/v1/webhooks/{webhook}/redeliver?since=2000-01-01T00:00:00Z"),
            format!("/api/v1/deliveries/{delivery}/redeliver"),
            format!("/api/v1/deliveries/redeliver?since=2000-01-01T00:00:00Z&webhook_id={webhook}"),
        ] {
            let (status, body) = app.post(&stranger, &path).await;
            assert_eq!(status, 404, "POST {path}: {body}");
        }
        // The license-wide bulk replay takes only the caller's own deliveries: none.
        let (status, body) = app
            .post(&stranger, "/api/v1/deliveries/redeliver?since=2000-01-01T00:00:00Z&include_delivered=true")
            .await;
        assert_eq!((status, &body["redelivered"]), (202, &json!(0)), "{body}");
        for body in [
            json!({"enabled": false}),
            json!({"url": "https://evil.example/steal"}),
            json!({"data_types": ["chat"]}),
        ] {
            let (status, answer) = app
                .patch(&stranger, &format!("/api/v1/webhooks/{webhook}"), &body)
                .await;
            assert_eq!(status, 404, "PATCH {body}: {answer}");
        }
        for path in [
            format!("/api/v1/webhooks/{webhook}"),
            format!("/webhooks/{webhook}"),
            format!("/v2/webhooks/{webhook}"),
        ] {
            assert_eq!(app.delete(&stranger, &path).await, 404, "DELETE {path}");
        }
        // The owner's token does not let another license post details.
        let r = app
            .http
            .post(app.url("/visitors/S1354547427.0c151b0e1b/details"))
            .json(&json!({"license_id": "200", "token": token, "id": "crm",
                          "fields": [{"name": "Age", "value": "99"}]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());

        // A redelivery wrongly let through would reach the receiver within
        // a few poll intervals.
        receiver.expect_silence(Duration::from_millis(300)).await;
        assert_eq!(snapshot(&app, &owner, &webhook).await, before);
        assert!(receiver.drain().is_empty(), "nothing was redelivered");
        let (_, stranger_hooks) = app.get(&stranger, "/api/v1/webhooks").await;
        assert_eq!(stranger_hooks["webhooks"], json!([]));
    }
}
