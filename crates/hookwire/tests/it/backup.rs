//! `hookwire backup` against a live `hookwire serve` under load: ingest keeps
//! answering, the copy is intact and holds every event answered before the
//! backup began, and a server started on the copy delivers what was pending.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One accepted ingest: its event id, when its 202 arrived, and how long the
/// request took.
struct Accepted {
    event_id: String,
    answered_at: Instant,
    latency: Duration,
}

/// Posts events one at a time until `stop`, at most `limit`, recording each 202.
async fn load(
    url: String,
    stop: Arc<AtomicBool>,
    limit: usize,
    accepted: Arc<Mutex<Vec<Accepted>>>,
) {
    let http = reqwest::Client::new();
    for n in 0..limit {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut event = chat_started("77");
        event["chat"]["id"] = json!(format!("CHAT{n}"));
        let started = Instant::now();
        let r = http
            .post(format!("{url}/api/v1/events"))
            .bearer_auth(PLATFORM_KEY)
            .json(&event)
            .send()
            .await
            .expect("ingest answers during the backup");
        assert_eq!(r.status(), 202, "ingest refused during the backup");
        let body: Value = r.json().await.unwrap();
        accepted.lock().unwrap().push(Accepted {
            event_id: body["id"].as_str().unwrap().to_string(),
            answered_at: Instant::now(),
            latency: started.elapsed(),
        });
    }
}

fn run_backup(data_dir: &std::path::Path, to: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .arg("backup")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--to")
        .arg(to)
        .output()
        .expect("hookwire backup runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_is_consistent_complete_and_serves() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let mut command = serve_command();
    command.arg("--data-dir").arg(&data);
    let server = Serving::spawn(command).expect("hookwire starts");
    let http = reqwest::Client::new();
    let key = create_license_at(&http, &server.url, "77").await;
    let mut receiver = TestReceiver::start().await;
    // One attempt a second: most deliveries are still pending when the copy
    // is taken, so the server started on it has work to finish.
    let r = http
        .post(format!("{}/api/v1/webhooks", server.url))
        .bearer_auth(&key)
        .json(
            &json!({"event_type": "chat_started", "data_types": ["chat"],
                      "url": receiver.url("/hook")}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let webhook = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .patch(format!("{}/api/v1/webhooks/{webhook}", server.url))
        .bearer_auth(&key)
        .json(&json!({"max_per_second": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let stop = Arc::new(AtomicBool::new(false));
    let accepted: Arc<Mutex<Vec<Accepted>>> = Arc::default();
    let loader = tokio::spawn(load(
        server.url.clone(),
        stop.clone(),
        20_000,
        accepted.clone(),
    ));
    wait_accepted(&accepted, 300).await;

    let copy = dir.path().join("copy.db");
    let began = Instant::now();
    let out = {
        let (data, copy) = (data.clone(), copy.clone());
        tokio::task::spawn_blocking(move || run_backup(&data, &copy))
            .await
            .unwrap()
    };
    let ended = Instant::now();
    assert!(
        out.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up"));
    // Some ingest after the backup, so the load spans it.
    let after = accepted.lock().unwrap().len() + 100;
    wait_accepted(&accepted, after).await;
    stop.store(true, Ordering::Relaxed);
    loader.await.unwrap();

    let accepted = std::mem::take(&mut *accepted.lock().unwrap());
    let before: Vec<&Accepted> = accepted.iter().filter(|a| a.answered_at < began).collect();
    let during: Vec<&Accepted> = accepted
        .iter()
        .filter(|a| a.answered_at >= began && a.answered_at <= ended)
        .collect();
    let longest = |set: &[&Accepted]| set.iter().map(|a| a.latency).max().unwrap_or_default();
    eprintln!(
        "backup took {} ms; {} events ingested during it; longest ingest during it {} ms \
         (before it {} ms)",
        (ended - began).as_millis(),
        during.len(),
        longest(&during).as_millis(),
        longest(&before).as_millis()
    );
    assert!(!before.is_empty());
    server.terminate().await;

    // The copy is intact and holds every event answered before it began.
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
    let in_copy: HashSet<String> = conn
        .prepare("SELECT unique_id FROM events")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for a in &before {
        assert!(in_copy.contains(&a.event_id), "{} missing", a.event_id);
    }
    let pending: HashSet<String> = conn
        .prepare(
            "SELECT e.unique_id FROM deliveries d JOIN events e ON e.seq = d.event_seq
             WHERE d.state = 'pending'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!pending.is_empty(), "the copy has pending deliveries");
    // The throttle only kept work pending for the copy to hold; lifted
    // offline, since a server claims its due work as it starts, with the
    // webhook's limit as it is then.
    conn.execute("UPDATE webhooks SET max_per_second = NULL", [])
        .unwrap();
    drop(conn);

    // A server on the copy delivers what was pending in it.
    let mut command = serve_command();
    command
        .arg("--data-dir")
        .arg(dir.path().join("restored"))
        .arg("--database")
        .arg(format!("sqlite://{}", copy.display()));
    // Whatever the first server sent is dropped before the second starts:
    // the second may deliver as soon as it is up, before `spawn` returns.
    receiver.drain();
    let restored = Serving::spawn(command).expect("hookwire starts on the copy");
    let r = http
        .get(format!("{}/api/v1/webhooks/{webhook}", restored.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the license and its key came along");
    let mut delivered = HashSet::new();
    while !pending.is_subset(&delivered) {
        let got = receiver.next().await;
        delivered.insert(got.json()["event_unique_id"].as_str().unwrap().to_string());
    }
    restored.terminate().await;
}

/// Waits until `accepted` holds at least `n` answers.
async fn wait_accepted(accepted: &Mutex<Vec<Accepted>>, n: usize) {
    eventually("the load's answers", Duration::from_secs(30), async || {
        let have = accepted.lock().unwrap().len();
        if have >= n {
            Ok(())
        } else {
            Err(format!("{have} of {n} accepted"))
        }
    })
    .await
}

#[test]
fn a_backup_refuses_to_overwrite_and_names_pg_dump_for_postgresql() {
    let dir = tempfile::TempDir::new().unwrap();
    let existing = dir.path().join("exists.db");
    std::fs::write(&existing, b"keep me").unwrap();
    let out = run_backup(&dir.path().join("data"), &existing);
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    assert!(String::from_utf8_lossy(&out.stderr).contains("never overwrites"));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args([
            "backup",
            "--database",
            "postgres://u@127.0.0.1:1/db",
            "--to",
        ])
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}
