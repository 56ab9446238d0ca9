//! The real binary, killed and restarted: nothing accepted is lost.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn start_binary(dir: &std::path::Path, database: &hookwire::config::DatabaseUrl) -> Serving {
    start_binary_with(dir, database, &[])
}

/// `start_binary` with more environment (`HOOKWIRE_*` settings).
fn start_binary_with(
    dir: &std::path::Path,
    database: &hookwire::config::DatabaseUrl,
    env: &[(&str, &str)],
) -> Serving {
    let mut command = serve_command();
    command.envs(env.iter().copied());
    command
        .arg("--data-dir")
        .arg(dir)
        .args(["--database", &database_arg(database)])
        .env("HOOKWIRE_RETRY_SCHEDULE", "100ms,100ms,100ms,100ms,100ms")
        .env("HOOKWIRE_POLL_INTERVAL", "50ms")
        .env("HOOKWIRE_SHUTDOWN_GRACE", "5s")
        // On PostgreSQL a killed node's deliveries (handed off to it at
        // ingest, or claimed) wait for their lease to run out before the
        // next node resumes them: keep that wait well inside the test's.
        .env("HOOKWIRE_ATTEMPT_TIMEOUT", "3s")
        .env("HOOKWIRE_LEASE", "6s")
        .env("HOOKWIRE_LOG", "warn")
        .stderr(Stdio::inherit());
    Serving::spawn(command).expect("hookwire binary starts")
}

async fn setup(http: &reqwest::Client, url: &str, receiver: &TestReceiver) -> String {
    let key = create_license_at(http, url, "77").await;
    let r = http.post(format!("{url}/webhooks")).bearer_auth(&key)
        .json(&json!({"event_type": "chat_started", "data_types": ["chat"], "url": receiver.url("/")}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    key
}

#[tokio::test]
async fn a_second_server_on_the_same_sqlite_file_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let database = hookwire::config::DatabaseUrl::Sqlite(dir.path().join("hookwire.db"));
    let mut first = start_binary(dir.path(), &database);
    let second = serve_command()
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another hookwire is serving"));
    first.kill();
}

crate::backend_tests! {
    async fn kill_9_under_load_loses_no_accepted_event() {
        let dir = tempfile::TempDir::new().unwrap();
        let database = fresh_database(&dir).await;
        let mut receiver = TestReceiver::start().await;
        // A slow receiver, so attempts are in flight when the process dies.
        receiver.script((0..50).map(|_| Reply::Sleep(Duration::from_millis(30))));
        let mut process = start_binary(dir.path(), &database);
        let http = reqwest::Client::new();
        setup(&http, &process.url, &receiver).await;

        let mut senders = Vec::new();
        for worker in 0..4 {
            let http = http.clone();
            let url = process.url.clone();
            senders.push(tokio::spawn(async move {
                let mut accepted = Vec::new();
                for i in 0..150 {
                    let mut event = chat_started("77");
                    event["chat"]["id"] = json!(format!("W{worker}-{i}"));
                    match http
                        .post(format!("{url}/api/v1/events"))
                        .bearer_auth(PLATFORM_KEY)
                        .json(&event)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 202 => accepted.push(
                            r.json::<Value>().await.unwrap()["id"]
                                .as_str()
                                .unwrap()
                                .to_string(),
                        ),
                        _ => break, // the process is gone
                    }
                }
                accepted
            }));
        }
        // Kill in the middle of the load.
        let mut seen = HashSet::new();
        while seen.len() < 100 {
            seen.insert(
                receiver.next().await.json()["event_unique_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        process.kill();
        let mut accepted = HashSet::new();
        for s in senders {
            accepted.extend(s.await.unwrap());
        }
        assert!(
            accepted.len() >= 100,
            "load ran: {} accepted",
            accepted.len()
        );

        let mut process = start_binary(dir.path(), &database);
        eventually("every accepted event to arrive", Duration::from_secs(60), async || {
            seen.extend(
                receiver
                    .drain()
                    .iter()
                    .map(|r| r.json()["event_unique_id"].as_str().unwrap().to_string()),
            );
            match accepted.difference(&seen).count() {
                0 => Ok(()),
                missing => Err(format!("{missing} of {} accepted events missing", accepted.len())),
            }
        })
        .await;
        process.kill();
    }

    async fn sigterm_drains_and_exits_zero() {
        let dir = tempfile::TempDir::new().unwrap();
        let database = fresh_database(&dir).await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([Reply::Sleep(Duration::from_millis(800))]);
        let mut process = start_binary(dir.path(), &database);
        let http = reqwest::Client::new();
        setup(&http, &process.url, &receiver).await;
        let r = http
            .post(format!("{}/api/v1/events", process.url))
            .bearer_auth(PLATFORM_KEY)
            .json(&chat_started("77"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        receiver.next().await; // the attempt is now in flight
        process.sigterm();
        let started = Instant::now();
        let exit = process.exited().await;
        assert!(exit.success(), "{exit:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "waited for the attempt in flight"
        );

        // The drained attempt was recorded as delivered: nothing is sent again.
        let process = start_binary(dir.path(), &database);
        receiver.expect_silence(Duration::from_millis(600)).await;
        drop(process); // killed on drop
    }
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

/// The crash loop: `HOOKWIRE_CRASH_ITERATIONS` (default 2; `scripts/crash-test`
/// runs 20) rounds of load, `kill -9` at a random moment, restart. Every
/// accepted event must reach the receiver, and an event may arrive twice only
/// if its earlier attempt was in flight when the process died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_loses_nothing_and_duplicates_only_what_was_in_flight() {
    let iterations: usize = std::env::var("HOOKWIRE_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = tempfile::TempDir::new().unwrap();
    let database = hookwire::config::DatabaseUrl::Sqlite(dir.path().join("hookwire.db"));
    // Answers after 5 to 20 ms, so that attempts are in flight when the
    // sender dies.
    let ledger = LedgerReceiver::start(|n| Duration::from_millis(5 + (n % 4) as u64 * 5)).await;
    let http = reqwest::Client::new();
    let mut accepted: HashSet<String> = HashSet::new();
    let mut kills: Vec<Instant> = Vec::new();
    // When each process was spawned: a request the receiver reads before the
    // next spawn can only come from the process killed before it, however
    // late the receiver got round to reading it.
    let mut starts: Vec<Instant> = Vec::new();
    let mut next_chat = 0usize;
    let mut key = String::new();
    // A retention of a second, pruned every 100 ms: the kills land in the
    // middle of prunes too, and a prune must never take a pending delivery.
    let pruning = [
        ("HOOKWIRE_RETENTION", "1s"),
        ("HOOKWIRE_PRUNE_INTERVAL", "100ms"),
    ];
    for round in 0..iterations {
        starts.push(Instant::now());
        let mut process = start_binary_with(dir.path(), &database, &pruning);
        if round == 0 {
            let r = http
                .post(format!("{}/api/v1/licenses", process.url))
                .bearer_auth(PLATFORM_KEY)
                .json(&json!({"license_id": "77"}))
                .send()
                .await
                .unwrap();
            key = r.json::<Value>().await.unwrap()["api_key"]
                .as_str()
                .unwrap()
                .to_string();
            let r = http
                .post(format!("{}/webhooks", process.url))
                .bearer_auth(&key)
                .json(&json!({"event_type": "chat_started", "data_types": ["chat"], "url": ledger.url}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let mut senders = Vec::new();
        for _ in 0..4 {
            let http = http.clone();
            let url = process.url.clone();
            let first = next_chat;
            next_chat += 10_000;
            senders.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in first.. {
                    let mut event = chat_started("77");
                    event["chat"]["id"] = json!(format!("C{i}"));
                    match http
                        .post(format!("{url}/api/v1/events"))
                        .bearer_auth(PLATFORM_KEY)
                        .json(&event)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 202 => {
                            match r.json::<Value>().await {
                                Ok(v) => ids.push(v["id"].as_str().unwrap().to_string()),
                                Err(_) => break, // died while answering: not accepted
                            }
                        }
                        _ => break, // the process is gone
                    }
                }
                ids
            }));
        }
        // The kill at a random moment is what is under test, not a wait.
        tokio::time::sleep(Duration::from_millis(100 + random_below(900))).await;
        process.kill();
        // The moment it is surely dead: whatever it sent before was in flight.
        kills.push(Instant::now());
        for s in senders {
            accepted.extend(s.await.unwrap());
        }
    }
    assert!(
        accepted.len() >= iterations * 10,
        "load ran: {}",
        accepted.len()
    );

    // A last start delivers whatever is left.
    starts.push(Instant::now());
    let process = start_binary_with(dir.path(), &database, &pruning);
    eventually(
        "every accepted event to be answered",
        Duration::from_secs(120),
        async || match accepted.difference(&ledger.answered()).count() {
            0 => Ok(()),
            missing => Err(format!(
                "{missing} of {} accepted events missing",
                accepted.len()
            )),
        },
    )
    .await;
    // Once nothing is pending nothing more is sent: the ledger is complete,
    // with any late duplicate in it.
    wait_nothing_pending(&http, &process.url, &key).await;
    // With everything delivered, the prune takes every event in time.
    let db = dir.path().join("hookwire.db");
    let count_events = || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    eventually(
        "the prune to take every delivered event",
        Duration::from_secs(30),
        async || match count_events() {
            0 => Ok(()),
            kept => Err(format!("{kept} events kept")),
        },
    )
    .await;
    drop(process); // killed on drop
                   // Prunes ran between the kills and were killed too: the database is
                   // consistent.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");

    // Duplicates: each repeat must follow a kill that caught the previous
    // attempt in flight (sent by the killed process, and unanswered or
    // answered too shortly before the kill for the result to be committed).
    let ledger = ledger.arrivals();
    let mut by_event: std::collections::HashMap<&str, Vec<&Arrival>> = Default::default();
    for s in &ledger {
        by_event.entry(&s.event).or_default().push(s);
    }
    let margin = Duration::from_secs(1);
    let mut duplicates = 0;
    for (event, seen) in &by_event {
        for pair in seen.windows(2) {
            duplicates += 1;
            let (before, again) = (pair[0], pair[1]);
            let excused = kills.iter().zip(&starts[1..]).any(|(&k, &next_start)| {
                before.received < next_start
                    && again.received > k
                    && before.answered.is_none_or(|a| a + margin >= k)
            });
            let t0 = kills[0];
            let rel = |t: Instant| {
                t.checked_duration_since(t0)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or_else(|| -(t0.duration_since(t).as_millis() as i64))
            };
            assert!(
                excused,
                "{event} was delivered twice without a crash in between: first at {} answered {:?}, again at {}; kills at {:?}",
                rel(before.received),
                before.answered.map(rel),
                rel(again.received),
                kills.iter().map(|&k| rel(k)).collect::<Vec<_>>()
            );
        }
    }
    let unique = by_event.len();
    eprintln!(
        "crash loop: {iterations} kills, {} accepted, {unique} delivered, {duplicates} duplicates",
        accepted.len()
    );
}
