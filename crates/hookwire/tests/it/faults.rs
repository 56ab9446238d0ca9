//! The fault matrix: receivers that misbehave in every way we know of. One
//! event goes to one webhook per receiver; each delivery must end in the
//! right state after the right number of attempts.

use crate::support::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy)]
enum Broken {
    /// Promises 100 bytes, sends a few, then resets the connection.
    ResetMidResponse,
    /// Sends the body one byte at a time, slower than the attempt timeout.
    Trickle,
    /// Answers 200 with a 20 MB body.
    HugeBody,
    /// Reads the request and closes without answering.
    CloseBeforeHeaders,
}

/// Reads one HTTP request (headers and a Content-Length body).
async fn read_request(socket: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return false;
        };
        if n == 0 {
            return false;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            return true;
        }
    }
}

/// A raw TCP receiver for what a well-behaved HTTP server cannot do; counts requests.
async fn raw_receiver(kind: Broken) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                if !read_request(&mut socket).await {
                    return;
                }
                seen.fetch_add(1, Ordering::SeqCst);
                match kind {
                    Broken::ResetMidResponse => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
                            .await;
                        let _ = socket.flush().await;
                        // Part of the act: the partial answer goes out on its
                        // own before the reset, which would discard it if sent
                        // along with it.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        // Linger 0: close sends RST instead of FIN.
                        let _ = socket.set_zero_linger();
                        drop(socket);
                    }
                    Broken::Trickle => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
                            .await;
                        for _ in 0..20 {
                            if socket.write_all(b"x").await.is_err() {
                                return;
                            }
                            let _ = socket.flush().await;
                            // The act itself: 20 bytes over 4 s, slower than
                            // the attempt timeout.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    Broken::HugeBody => {
                        let size = 20 * 1024 * 1024;
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                        let _ = socket.write_all(head.as_bytes()).await;
                        let block = vec![b'a'; 64 * 1024];
                        for _ in 0..size / block.len() {
                            if socket.write_all(&block).await.is_err() {
                                return;
                            }
                        }
                    }
                    Broken::CloseBeforeHeaders => drop(socket),
                }
            });
        }
    });
    (addr, count)
}

fn millis(at: &Value) -> i128 {
    OffsetDateTime::parse(at.as_str().unwrap(), &Rfc3339)
        .unwrap()
        .unix_timestamp_nanos()
        / 1_000_000
}

struct Case {
    name: &'static str,
    webhook: String,
    state: &'static str,
    attempts: usize,
    check: fn(&Value),
}

crate::backend_tests! {
    async fn every_kind_of_broken_receiver_ends_in_the_right_state() {
        let app = spawn_app_with(|s| {
            s.delivery.attempt_timeout = Duration::from_millis(500);
            s.delivery.lease = Duration::from_secs(5);
        })
        .await;
        let key = app.create_license("1").await;
        let mut cases = Vec::new();
        let mut receivers = Vec::new();
        let add = |name, url: String, state, attempts, check: fn(&Value)| {
            let app = &app;
            let key = &key;
            async move {
                let webhook = app
                    .create_webhook(key, "chat_started", &["chat"], &url)
                    .await;
                Case {
                    name,
                    webhook,
                    state,
                    attempts,
                    check,
                }
            }
        };

        let r500 = TestReceiver::start().await;
        r500.script((0..3).map(|_| Reply::Status(500, "oops")));
        cases.push(
            add("500", r500.url("/"), "failed", 3, |d| {
                let a = d["attempts"].as_array().unwrap();
                assert!(a
                    .iter()
                    .all(|a| a["status"] == 500 && a["response_excerpt"] == "oops"));
                // The schedule: 100 ms between attempts (no jitter in tests).
                for pair in a.windows(2) {
                    let gap = millis(&pair[1]["at"]) - millis(&pair[0]["at"]);
                    assert!(gap >= 95, "retried after {gap} ms");
                }
            })
            .await,
        );
        let r429 = TestReceiver::start().await;
        r429.script([Reply::WithHeaders(429, vec![("retry-after", "1".into())])]);
        cases.push(
            add("429 + Retry-After", r429.url("/"), "delivered", 2, |d| {
                let a = d["attempts"].as_array().unwrap();
                assert_eq!(a[0]["status"], 429);
                let waited = millis(&a[1]["at"]) - millis(&a[0]["at"]);
                assert!(waited >= 950, "waited {waited} ms");
            })
            .await,
        );
        let r410 = TestReceiver::start().await;
        r410.script([Reply::Status(410, "")]);
        cases.push(
            add("410", r410.url("/"), "failed", 1, |d| {
                assert_eq!(d["attempts"][0]["status"], 410);
            })
            .await,
        );
        let r301 = TestReceiver::start().await;
        r301.script(
            (0..3).map(|_| Reply::WithHeaders(301, vec![("location", "http://127.0.0.1:1/x".into())])),
        );
        cases.push(
            add("301", r301.url("/"), "failed", 3, |d| {
                let a = &d["attempts"][0];
                assert_eq!(a["status"], 301);
                assert!(a["error"].as_str().unwrap().contains("redirects"));
            })
            .await,
        );
        let slow = TestReceiver::start().await;
        slow.script((0..3).map(|_| Reply::Sleep(Duration::from_secs(2))));
        cases.push(
            add("timeout", slow.url("/"), "failed", 3, |d| {
                for a in d["attempts"].as_array().unwrap() {
                    assert_eq!(a["error"], "timed out");
                    assert!(a["latency_ms"].as_i64().unwrap() < 1500);
                }
            })
            .await,
        );
        receivers.extend([r500, r429, r410, r301, slow]);

        let mut counters = Vec::new();
        for (name, kind, state, attempts, check) in [
            (
                "reset mid-response",
                Broken::ResetMidResponse,
                "failed",
                3,
                (|d: &Value| {
                    let a = &d["attempts"][0];
                    assert_eq!(a["status"], 200, "{a}");
                    assert!(a["error"].is_string());
                }) as fn(&Value),
            ),
            ("trickle", Broken::Trickle, "failed", 3, |d: &Value| {
                let a = &d["attempts"][0];
                assert_eq!(a["error"], "timed out", "{a}");
            }),
            (
                "20 MB body",
                Broken::HugeBody,
                "delivered",
                1,
                |d: &Value| {
                    let a = &d["attempts"][0];
                    assert_eq!(a["status"], 200);
                    assert_eq!(a["response_excerpt"].as_str().unwrap().len(), 4096);
                    assert!(a["latency_ms"].as_i64().unwrap() < 500, "capped read: {a}");
                },
            ),
            (
                "close before headers",
                Broken::CloseBeforeHeaders,
                "failed",
                3,
                |d: &Value| {
                    let a = &d["attempts"][0];
                    assert_eq!(a["status"], Value::Null);
                    assert!(a["error"].is_string(), "{a}");
                },
            ),
        ] {
            let (addr, count) = raw_receiver(kind).await;
            counters.push((name, count, attempts));
            cases.push(add(name, format!("http://{addr}/"), state, attempts, check).await);
        }

        app.ingest_accepted(&chat_started("1")).await;
        for case in &cases {
            let list = app
                .wait_deliveries(&key, &case.webhook, |d| {
                    d.len() == 1 && d[0]["state"] != "pending"
                })
                .await;
            let d = &list[0];
            assert_eq!(d["state"], case.state, "{}: {d:#}", case.name);
            assert_eq!(
                d["attempts"].as_array().unwrap().len(),
                case.attempts,
                "{}: {d:#}",
                case.name
            );
            (case.check)(d);
        }
        for (name, count, attempts) in counters {
            assert_eq!(count.load(Ordering::SeqCst), attempts, "{name}");
        }
        // 410 disabled its webhook; the others stay enabled.
        let (_, hooks) = app.get(&key, "/api/v1/webhooks").await;
        let disabled: Vec<&str> = hooks["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["enabled"] == false)
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert_eq!(disabled, [cases[2].webhook.as_str()]);
    }
}
