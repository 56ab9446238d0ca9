//! The visitor-details example end to end: on `chat_started` it posts the
//! customer's details back through hookwire's REST call-back.

use crate::support::*;
use hookwire_examples::visitor_details::{self, Config};
use serde_json::json;
use std::time::Duration;
use tempfile::TempDir;

fn customers() -> TempDir {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("customers.csv"),
        "email,age,position\nmary.brown@email.com,36,CEO\njohn@example.com,41,Engineer\n",
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn chat_started_details_reach_hookwire() {
    let hw = spawn_app().await;
    let key = hw.create_license(LICENSE).await;
    let db = customers();
    let config = Config::new(
        db.path().join("customers.csv"),
        format!("http://{}", hw.addr),
    );
    let example = spawn_example(|l| visitor_details::run(l, config)).await;
    hw.create_webhook(
        &key,
        "chat_started",
        &["chat", "visitor"],
        &url_of(example.addr),
    )
    .await;

    hw.ingest_accepted(&json!({
        "event_type": "chat_started", "license_id": LICENSE,
        "chat": {"id": "MH022RD0K5", "started_timestamp": 1358937653, "messages": [], "tags": []},
        "visitor": visitor(),
    }))
    .await;

    let path = format!("/visitors/{VISITOR_ID}/details");
    let last = eventually(
        "the details to arrive",
        Duration::from_secs(20),
        async || {
            let (status, body) = hw.get(&key, &path).await;
            if status == 200 && body["details"].as_array().is_some_and(|d| !d.is_empty()) {
                Ok(body)
            } else {
                Err(json!({ "status": status, "body": body }))
            }
        },
    )
    .await;
    assert_eq!(
        last["visitor_id"], VISITOR_ID,
        "details never arrived: {last}"
    );
    let details = last["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{last}");
    assert_eq!(details[0]["id"], "my-integration");
    assert_eq!(details[0]["icon"], "example.com/ico-64.png");
    let fields: Vec<(&str, &str)> = details[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, [("Age", "36"), ("Position", "CEO")]);
    drop(example);
    hw.shutdown().await;
}

#[tokio::test]
async fn sends_the_php_body_and_nothing_for_strangers_or_other_events() {
    let mut api = TestReceiver::start().await;
    let db = customers();
    let config = Config::new(
        db.path().join("customers.csv"),
        format!("http://{}/", api.addr),
    );
    let example = spawn_example(|l| visitor_details::run(l, config)).await;

    assert_eq!(
        post_raw(example.addr, &webhook_body("chat_started")).await,
        200
    );
    let call = api.next().await;
    assert_eq!(call.uri.path(), format!("/visitors/{VISITOR_ID}/details"));
    assert_eq!(call.headers["x-api-version"], "2");
    assert_eq!(
        call.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        std::str::from_utf8(&call.body).unwrap(),
        "license_id=1025707&token=27f41c8da685c81a890f9e5f8ce48387&id=my-integration\
         &icon=example.com%2Fico-64.png&fields%5B0%5D%5Bname%5D=Age&fields%5B0%5D%5Bvalue%5D=36\
         &fields%5B1%5D%5Bname%5D=Position&fields%5B1%5D%5Bvalue%5D=CEO"
    );

    let stranger = webhook_body("chat_started").replace("mary.brown@email.com", "nobody@email.com");
    assert_eq!(post_raw(example.addr, &stranger).await, 200);
    assert_eq!(
        post_raw(example.addr, &webhook_body("chat_ended")).await,
        200
    );
    assert_eq!(
        post_raw(example.addr, r#"{"event_type":"something_new"}"#).await,
        200
    );
    assert_eq!(post_raw(example.addr, "{\"event_type\":").await, 400);
    api.expect_silence(Duration::from_millis(500)).await;
}
