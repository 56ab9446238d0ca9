//! The transcript saver end to end: a real hookwire delivers `chat_ended` and
//! the saver writes the transcript file.

use crate::support::*;
use hookwire_examples::transcript::{self, Config};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;

async fn wait_for_file(path: &Path) -> String {
    let what = format!("{} to appear", path.display());
    eventually(&what, Duration::from_secs(20), async || {
        std::fs::read_to_string(path)
    })
    .await
}

#[tokio::test]
async fn chat_ended_saves_the_transcript() {
    let hw = spawn_app().await;
    let key = hw.create_license(LICENSE).await;
    let out = TempDir::new().unwrap();
    let dir = out.path().join("transcripts");
    let config = Config { dir: dir.clone() };
    let example = spawn_example(|l| transcript::run(l, config)).await;
    hw.create_webhook(
        &key,
        "chat_ended",
        &["chat", "visitor"],
        &url_of(example.addr),
    )
    .await;

    hw.ingest_accepted(&json!({"event_type": "chat_ended", "license_id": LICENSE, "chat": chat(), "visitor": visitor()}))
        .await;

    let text = wait_for_file(&dir.join("MH022RD0K5.txt")).await;
    assert!(
        text.starts_with("Chat: MH022RD0K5\nVisitor: Mary Brown <mary.brown@email.com>\n"),
        "{text}"
    );
    assert!(
        text.contains("Started: 2013-01-23 10:40:53 UTC\nEnded:   2013-01-23 11:05:09 UTC\n"),
        "{text}"
    );
    assert!(
        text.contains("\n[10:40:53] John Doe (agent): Hello\n"),
        "{text}"
    );
    assert!(
        text.contains("\n[10:40:58] James Doe (supervisor, whisper): This is whispered message.\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\n[10:41:01] Mary Brown (visitor): How are you?\n"),
        "{text}"
    );
    // Only the transcript: no temporary files left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    drop(example);
    hw.shutdown().await;
}

#[tokio::test]
async fn retries_rewrite_and_other_events_write_nothing() {
    let out = TempDir::new().unwrap();
    let config = Config {
        dir: out.path().to_path_buf(),
    };
    let example = spawn_example(|l| transcript::run(l, config)).await;

    assert_eq!(
        post_raw(example.addr, &webhook_body("chat_started")).await,
        200
    );
    assert_eq!(
        post_raw(example.addr, &webhook_body("visitor_queued")).await,
        200
    );
    assert_eq!(post_raw(example.addr, "[").await, 400);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    // Answered only once written, so no waiting here.
    assert_eq!(
        post_raw(example.addr, &webhook_body("chat_ended")).await,
        200
    );
    let path = out.path().join("MH022RD0K5.txt");
    let first = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        post_raw(example.addr, &webhook_body("chat_ended")).await,
        200
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);
}
