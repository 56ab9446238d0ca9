//! The real binary, killed and restarted: nothing accepted is lost.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Process {
    child: Child,
    url: String,
}

fn database_arg(database: &hookwire::config::DatabaseUrl) -> String {
    match database {
        hookwire::config::DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        hookwire::config::DatabaseUrl::Postgres(url) => url.expose().to_string(),
    }
}

fn start_binary(dir: &std::path::Path, database: &hookwire::config::DatabaseUrl) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-private-targets",
            "--data-dir",
        ])
        .arg(dir)
        .args(["--database", &database_arg(database)])
        .env("HOOKWIRE_PLATFORM_KEY", PLATFORM_KEY)
        .env("HOOKWIRE_RETRY_SCHEDULE", "100ms,100ms,100ms,100ms,100ms")
        .env("HOOKWIRE_POLL_INTERVAL", "50ms")
        .env("HOOKWIRE_SHUTDOWN_GRACE", "5s")
        .env("HOOKWIRE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("hookwire binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    // Keep draining stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Process { child, url }
}

async fn setup(http: &reqwest::Client, url: &str, receiver: &TestReceiver) -> String {
    let r = http
        .post(format!("{url}/api/v1/licenses"))
        .bearer_auth(PLATFORM_KEY)
        .json(&json!({"license_id": "77"}))
        .send()
        .await
        .unwrap();
    let key = r.json::<Value>().await.unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
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
    let second = Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("HOOKWIRE_PLATFORM_KEY", PLATFORM_KEY)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another hookwire is serving"));
    first.child.kill().unwrap();
    first.child.wait().unwrap();
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
        process.child.kill().unwrap(); // SIGKILL
        process.child.wait().unwrap();
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while !accepted.is_subset(&seen) {
            assert!(
                Instant::now() < deadline,
                "{} accepted events never arrived",
                accepted.difference(&seen).count()
            );
            seen.insert(
                receiver.next().await.json()["event_unique_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        process.child.kill().unwrap();
        process.child.wait().unwrap();
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
        let status = Command::new("kill")
            .args(["-TERM", &process.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        let exit = loop {
            if let Some(exit) = process.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "did not exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(exit.success(), "{exit:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "waited for the attempt in flight"
        );

        // The drained attempt was recorded as delivered: nothing is sent again.
        let process = start_binary(dir.path(), &database);
        receiver.expect_silence(Duration::from_millis(600)).await;
        let mut child = process.child;
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
