//! Ingest: validation, licenses, idempotency, batches, limits.

use crate::support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn licenses_can_be_created_from_the_command_line() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args([
            "licenses",
            "create",
            "31337",
            "--database",
            &db,
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let key = text.split_whitespace().last().unwrap().to_string();
    assert!(key.starts_with("hwk_"), "{text}");
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args(["licenses", "create", "31337", "--database", &db])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // The key works against a server on that database.
    let app =
        spawn_app_with(|s| s.database = hookwire::config::DatabaseUrl::parse(&db).unwrap()).await;
    assert_eq!(app.get(&key, "/webhooks").await.0, 200);
}

crate::backend_tests! {
    async fn bad_events_are_rejected_with_the_field_named() {
        let app = spawn_app().await;
        app.create_license("7").await;
        let cases = [
            (
                json!({"event_type": "chat_exploded", "license_id": "7"}),
                "event_type",
            ),
            (
                json!({"license_id": "7", "visitor": {"id": "v"}}),
                "event_type",
            ),
            (json!({"event_type": "visitor_queued"}), "license_id"),
            (
                json!({"event_type": "visitor_queued", "license_id": "7"}),
                "visitor",
            ),
            (
                json!({"event_type": "chat_started", "license_id": "7", "visitor": {"id": "v"}}),
                "chat",
            ),
            (
                json!({"event_type": "visitor_queued", "license_id": "7", "visitor": {"id": "v"}, "chat": {"id": "c"}}),
                "chat",
            ),
            (
                json!({"event_type": "ticket_created", "license_id": "7", "ticket": {"status": "open"}}),
                "ticket",
            ),
            (
                json!({"event_type": "chat_changed", "license_id": "7", "chat": {"id": "c", "tags": "x"}, "visitor": {"id": "v"}}),
                "chat",
            ),
            (
                json!({"event_type": "chat_changed", "license_id": "7", "chat": {"id": "c"}, "visitor": {"id": "v"}, "pre_chat_survey": []}),
                "pre_chat_survey",
            ),
            (
                json!({"event_type": "visitor_queued", "license_id": "7", "visitor": {"id": "v"}, "vistor": {}}),
                "vistor",
            ),
            (
                json!({"event_type": "visitor_queued", "license_id": true, "visitor": {"id": "v"}}),
                "license_id",
            ),
        ];
        for (event, field) in cases {
            let (status, body) = app.ingest(&event).await;
            assert_eq!(status, 400, "{event} -> {body}");
            assert_eq!(body["error"]["field"], field, "{event} -> {body}");
        }
        let r = app
            .http
            .post(app.url("/api/v1/events"))
            .bearer_auth(PLATFORM_KEY)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "body");
        let r = app
            .http
            .post(app.url("/api/v1/events"))
            .bearer_auth(PLATFORM_KEY)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);
        let r = app
            .http
            .post(app.url("/api/v1/events"))
            .json(&chat_started("7"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }

    async fn unknown_license_is_404_and_unmatched_event_is_accepted() {
        let app = spawn_app().await;
        let (status, body) = app.ingest(&chat_started("404404")).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
        app.create_license("404404").await;
        let (status, body) = app.ingest(&chat_started("404404")).await;
        assert_eq!(status, 202);
        assert_eq!(body["deliveries"], 0);
        let id = body["id"].as_str().unwrap();
        assert!(
            id.len() == 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    async fn idempotency_key_returns_the_first_answer() {
        let app = spawn_app().await;
        let key = app.create_license("8").await;
        let mut receiver = TestReceiver::start().await;
        app.create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        let send = |body: Value| {
            app.http
                .post(app.url("/api/v1/events"))
                .bearer_auth(PLATFORM_KEY)
                .header("Idempotency-Key", "report-42")
                .json(&body)
                .send()
        };
        let first: Value = send(chat_started("8")).await.unwrap().json().await.unwrap();
        let again = send(chat_started("8")).await.unwrap();
        assert_eq!(again.status(), 202);
        assert_eq!(again.json::<Value>().await.unwrap(), first);
        receiver.next().await;
        receiver
            .expect_silence(std::time::Duration::from_millis(400))
            .await;

        let mut other = chat_started("8");
        other["chat"]["id"] = json!("OTHER");
        let r = send(other).await.unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "unprocessable"
        );
    }

    async fn keyed_and_unkeyed_reports_at_once_are_each_accepted_once() {
        // Requests waiting together share a transaction, where events with
        // an idempotency key go one by one between set-based runs: every
        // mix of the two must keep each report's own answer and effects.
        let app = spawn_app().await;
        let key = app.create_license("12").await;
        let mut receiver = TestReceiver::start().await;
        app.create_webhook(&key, "chat_started", &["chat"], &receiver.url("/"))
            .await;
        let report = |i: usize| {
            let mut event = chat_started(if i % 7 == 6 { "nobody" } else { "12" });
            event["chat"]["id"] = json!(format!("C{i}"));
            let mut request = app
                .http
                .post(app.url("/api/v1/events"))
                .bearer_auth(PLATFORM_KEY)
                .json(&event);
            if i.is_multiple_of(2) {
                request = request.header("Idempotency-Key", format!("mix-{i}"));
            }
            async move {
                let r = request.send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let answers = futures_util::future::join_all((0..42).map(report)).await;
        let mut expected = Vec::new();
        for (i, (status, body)) in answers.iter().enumerate() {
            if i % 7 == 6 {
                assert_eq!(*status, 404, "report {i}: {body}");
            } else {
                assert_eq!((*status, &body["deliveries"]), (202, &json!(1)), "report {i}: {body}");
                expected.push(format!("C{i}"));
            }
        }
        let mut arrived = Vec::new();
        for _ in 0..expected.len() {
            arrived.push(receiver.next().await.json()["chat"]["id"].as_str().unwrap().to_string());
        }
        receiver.expect_silence(std::time::Duration::from_millis(300)).await;
        arrived.sort();
        expected.sort();
        assert_eq!(arrived, expected);
        // The keyed reports, again: their first answers, nothing sent.
        let again = futures_util::future::join_all((0..42).step_by(2).map(report)).await;
        for (i, (status, body)) in (0..42).step_by(2).zip(&again) {
            assert_eq!((*status, body), (answers[i].0, &answers[i].1), "report {i}");
        }
        receiver.expect_silence(std::time::Duration::from_millis(300)).await;
    }

    async fn batch_answers_per_item() {
        let app = spawn_app().await;
        let key = app.create_license("9").await;
        let mut receiver = TestReceiver::start().await;
        app.create_webhook(&key, "visitor_queued", &["visitor"], &receiver.url("/q"))
            .await;
        let batch = json!([
            {"event_type": "visitor_queued", "license_id": "9", "visitor": {"id": "A"}},
            {"event_type": "visitor_queued", "license_id": "9"},
            {"event_type": "visitor_queued", "license_id": "nobody", "visitor": {"id": "B"}},
            {"event_type": "visitor_queued", "license_id": 9, "visitor": {"id": "C"}},
        ]);
        let (status, body) = app.post_platform("/api/v1/events/batch", &batch).await;
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        assert_eq!(results[0]["status"], 202);
        assert_eq!(results[1]["status"], 400);
        assert_eq!(results[1]["error"]["field"], "[1].visitor");
        assert_eq!(results[2]["status"], 404);
        assert_eq!(results[3]["status"], 202);
        let mut seen = vec![
            receiver.next().await.json()["visitor"]["id"].clone(),
            receiver.next().await.json()["visitor"]["id"].clone(),
        ];
        seen.sort_by_key(|v| v.to_string());
        assert_eq!(seen, [json!("A"), json!("C")]);

        let (status, body) = app.post_platform("/api/v1/events/batch", &json!([])).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("body"))
        );
        let (status, _) = app
            .post_platform("/api/v1/events/batch", &json!({"not": "a list"}))
            .await;
        assert_eq!(status, 400);
    }

    async fn oversized_bodies_get_413() {
        let app = spawn_app_with(|s| s.max_body_bytes = 4096).await;
        app.create_license("10").await;
        let mut event = chat_started("10");
        event["chat"]["padding"] = json!("x".repeat(10_000));
        let (status, body) = app.ingest(&event).await;
        assert_eq!(status, 413);
        assert_eq!(body["error"]["code"], "payload_too_large");
    }
}
