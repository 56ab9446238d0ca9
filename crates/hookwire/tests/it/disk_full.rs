//! A real full disk: hookwire's data directory on a tiny tmpfs, mounted in a
//! private mount namespace (`unshare -m`), so the kernel itself answers
//! ENOSPC. Ingest must refuse (503, nothing stored, never a false 202) while
//! writes fail, and accept again, without a restart, once space returns.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

/// A chat_started event with a large message, so the disk fills quickly.
fn big_event(i: usize) -> Value {
    let mut event = chat_started("1");
    event["chat"]["id"] = json!(format!("FULL{i}"));
    event["chat"]["messages"][0]["text"] = json!("x".repeat(40_000));
    event
}

/// hookwire serving from a 3 MiB tmpfs, 2,000,000 bytes of it taken by a
/// ballast file that is deleted when `free_space` appears. What is left must
/// hold the empty schema (it grows as tables are added) plus a few events.
struct OnTinyDisk {
    server: Serving,
    free_space: std::path::PathBuf,
}

impl OnTinyDisk {
    fn start(dir: &std::path::Path) -> Option<Self> {
        let data = dir.join("data");
        std::fs::create_dir(&data).unwrap();
        let free_space = dir.join("free-space");
        // The watcher gives up after a minute so nothing outlives the test.
        // It polls in the shell because it runs inside the mount namespace,
        // where only it can remove the ballast.
        let script = r#"
            mount -t tmpfs -o size=3m tmpfs "$DATA" || exit 97
            head -c 2000000 /dev/zero > "$DATA/ballast"
            ( for _ in $(seq 1200); do
                  [ -e "$SIGNAL" ] && rm -f "$DATA/ballast" && break
                  sleep 0.05
              done ) &
            exec "$HOOKWIRE" serve --listen 127.0.0.1:0 --allow-private-targets --data-dir "$DATA"
        "#;
        let mut command = Command::new("unshare");
        command
            .args(["-m", "sh", "-c", script])
            .env("DATA", &data)
            .env("SIGNAL", &free_space)
            .env("HOOKWIRE", env!("CARGO_BIN_EXE_hookwire"))
            .env("HOOKWIRE_PLATFORM_KEY", PLATFORM_KEY)
            .env("HOOKWIRE_RETRY_SCHEDULE", "100ms,100ms,100ms")
            .env("HOOKWIRE_POLL_INTERVAL", "50ms")
            // Every refused request is logged as an error: expected here.
            .env("HOOKWIRE_LOG", "warn,hookwire::api::error=off");
        // No output means no mount namespace here (not root, no CAP_SYS_ADMIN).
        let server = Serving::spawn(command)?;
        Some(Self { server, free_space })
    }
}

/// The ballast's watcher stops at once; the server is killed as it drops.
impl Drop for OnTinyDisk {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.free_space, "");
    }
}

#[tokio::test]
async fn a_full_disk_refuses_ingest_and_recovers_live_when_space_returns() {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(server) = OnTinyDisk::start(dir.path()) else {
        panic!("this test needs `unshare -m` and tmpfs mounts (root); CI runs as root");
    };
    let http = reqwest::Client::new();
    let url = &server.server.url;
    let key = create_license_at(&http, url, "1").await;
    let mut receiver = TestReceiver::start().await;
    let r = http
        .post(format!("{url}/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"event_type": "chat_started", "data_types": ["chat"], "url": receiver.url("/")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let ingest = |i: usize| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http
                .post(format!("{url}/api/v1/events"))
                .bearer_auth(PLATFORM_KEY)
                .json(&big_event(i))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry_after = r.headers().contains_key("retry-after");
            (status, retry_after, r.json::<Value>().await.unwrap())
        }
    };
    let mut accepted = HashSet::new();
    let mut refused = HashSet::new();
    let mut statuses = Vec::new();
    for i in 0..60 {
        let (status, retry_after, body) = ingest(i).await;
        statuses.push(status);
        if status == 202 {
            accepted.insert(body["id"].as_str().unwrap().to_string());
        } else {
            refused.insert(format!("FULL{i}"));
            assert_eq!(status, 503, "{statuses:?} {body}");
            assert!(retry_after, "a 503 says when to retry");
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
        }
    }
    let first_refusal = statuses
        .iter()
        .position(|&s| s == 503)
        .unwrap_or_else(|| panic!("the disk filled up: {statuses:?}"));
    assert!(first_refusal > 3, "some events fit: {statuses:?}");
    // Near the edge a smaller write may still fit once a checkpoint has
    // recycled the WAL, and is then accepted for real; what must never happen
    // is a 202 for an event that was not stored, which the deliveries below
    // disprove. Once the disk is full for good, every answer is a refusal.
    assert!(
        statuses[statuses.len() - 20..].iter().all(|&s| s == 503),
        "refusals while the disk stays full: {statuses:?}"
    );

    // Space returns while the same process runs: ingest accepts again.
    std::fs::write(&server.free_space, "").unwrap();
    let mut i = 1000;
    let (status, body) = eventually(
        "ingest to accept again",
        Duration::from_secs(20),
        async || {
            i += 1;
            match ingest(i).await {
                (202, _, body) => Ok((202, body)),
                (status, _, body) => Err(format!("{status} {body}")),
            }
        },
    )
    .await;
    assert_eq!(status, 202, "ingest recovered without a restart");
    accepted.insert(body["id"].as_str().unwrap().to_string());

    // And every event accepted, before and after, reaches the receiver; a
    // refused one was not stored, so it never does.
    let mut seen = HashSet::new();
    while !accepted.is_subset(&seen) {
        let body = receiver.next().await.json();
        let chat = body["chat"]["id"].as_str().unwrap();
        assert!(!refused.contains(chat), "{chat} was refused yet delivered");
        seen.insert(body["event_unique_id"].as_str().unwrap().to_string());
    }
}
