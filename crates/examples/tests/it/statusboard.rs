//! The statusboard example end to end: a real hookwire delivers `visitor_queued`
//! to it and it raises its alert.

use crate::support::*;
use hookwire_examples::statusboard::{self, Config};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// An alert sink the test can wait on.
struct ChannelWriter(mpsc::UnboundedSender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn board() -> (Config, mpsc::UnboundedReceiver<Vec<u8>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let config = Config {
        out: Arc::new(Mutex::new(ChannelWriter(tx))),
        sound: None,
    };
    (config, rx)
}

#[tokio::test]
async fn visitor_queued_raises_an_alert() {
    let hw = spawn_app().await;
    let key = hw.create_license(LICENSE).await;
    let (config, mut alerts) = board();
    let example = spawn_example(|l| statusboard::run(l, config)).await;
    hw.create_webhook(&key, "visitor_queued", &["visitor"], &url_of(example.addr))
        .await;

    hw.ingest_accepted(
        &json!({"event_type": "visitor_queued", "license_id": LICENSE, "visitor": visitor()}),
    )
    .await;

    let alert = tokio::time::timeout(Duration::from_secs(10), alerts.recv())
        .await
        .expect("an alert in time")
        .unwrap();
    assert_eq!(
        String::from_utf8(alert).unwrap(),
        format!("\x07QUEUED: visitor Mary Brown ({VISITOR_ID}) is waiting\n")
    );
    drop(example);
    hw.shutdown().await;
}

#[tokio::test]
async fn other_events_stay_quiet() {
    let (config, mut alerts) = board();
    let example = spawn_example(|l| statusboard::run(l, config)).await;
    assert_eq!(
        post_raw(example.addr, &webhook_body("chat_started")).await,
        200
    );
    assert_eq!(
        post_raw(
            example.addr,
            r#"{"event_type":"ticket_created","ticket":{"id":"CCWWM"}}"#
        )
        .await,
        200
    );
    assert_eq!(post_raw(example.addr, "not json").await, 400);
    assert_eq!(post_raw(example.addr, r#"{"no":"event type"}"#).await, 400);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), alerts.recv())
            .await
            .is_err()
    );
    // The same receiver still alerts on the event it is for.
    assert_eq!(
        post_raw(example.addr, &webhook_body("visitor_queued")).await,
        200
    );
    assert!(alerts
        .recv()
        .await
        .unwrap()
        .starts_with(b"\x07QUEUED: visitor Mary Brown"));
}
