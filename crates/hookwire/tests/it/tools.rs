//! The integrator tools, run as the built `hookwire` binary against real
//! servers: `trigger` delivers to a receiver, `listen` receives a signed
//! delivery, prints its verdict and forwards it, `check-receiver` passes a
//! good receiver and fails bad ones with a table, `replay` redelivers.

use crate::backend_tests;
use crate::support::*;
use hookwire_receiver::Verifier;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

fn hookwire() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookwire"));
    cmd.env_remove("HOOKWIRE_PLATFORM_KEY")
        .env_remove("HOOKWIRE_API_KEY")
        .env_remove("HOOKWIRE_SIGNING_SECRET")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs the binary to completion: (success, stdout, stderr).
async fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the command finishes in time")
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("output in time")
        .expect("readable stdout")
        .expect("the process is still running")
}

/// Reads lines until one contains `needle`; answers everything read.
async fn read_until(lines: &mut Lines<BufReader<ChildStdout>>, needle: &str) -> String {
    let mut seen = String::new();
    loop {
        let line = next_line(lines).await;
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(needle) {
            return seen;
        }
    }
}

/// Starts `hookwire listen --port 0 ...` and answers it with its address.
async fn listen(args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>, String) {
    let mut child = hookwire()
        .args(["listen", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = next_line(&mut lines).await;
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .trim_end_matches('/')
        .to_string();
    (child, lines, url)
}

backend_tests! {
    async fn trigger_sends_a_sample_event_that_is_delivered() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut receiver = TestReceiver::start().await;
        app.create_webhook(&key, "chat_ended", &["chat", "visitor"], &receiver.url("/hook")).await;

        let (ok, stdout, stderr) = run(hookwire()
            .args(["trigger", "chat_ended", "--license", "1025707", "--server", &app.url("")])
            .env("HOOKWIRE_PLATFORM_KEY", PLATFORM_KEY))
        .await;
        assert!(ok, "{stdout}{stderr}");
        assert!(stdout.contains("1 delivery queued"), "{stdout}");
        let got = receiver.next().await.json();
        assert_eq!(got["event_type"], "chat_ended");
        assert_eq!(got["license_id"], "1025707");
        assert_eq!(got["chat"]["id"], "MH022RD0K5");
        assert_eq!(got["visitor"]["email"], "mary.brown@email.com");
        assert!(got.get("pre_chat_survey").is_none(), "only the chosen data types");

        // Bad input is refused with the reason, and a non-zero exit.
        let (ok, _, stderr) = run(hookwire()
            .args(["trigger", "chat_paused", "--license", "1025707", "--server", &app.url("")])
            .env("HOOKWIRE_PLATFORM_KEY", PLATFORM_KEY))
        .await;
        assert!(!ok);
        assert!(stderr.contains("unknown event type"), "{stderr}");
        let (ok, _, stderr) = run(hookwire()
            .args(["trigger", "chat_ended", "--license", "1025707", "--server", &app.url("")])
            .env("HOOKWIRE_PLATFORM_KEY", "wrong"))
        .await;
        assert!(!ok);
        assert!(stderr.contains("HTTP 401"), "{stderr}");
    }

    async fn listen_prints_a_real_delivery_with_its_verdict_and_forwards_it() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut app_receiver = TestReceiver::start().await;
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat", "visitor"], &app_receiver.url("/placeholder"))
            .await;
        let (_, body) = app.post(&key, &format!("/api/v1/webhooks/{webhook}/secret")).await;
        let secret = body["secret"].as_str().unwrap().to_string();

        let forward = app_receiver.url("/app/hook");
        let (mut child, mut lines, url) =
            listen(&["--secret", &secret, "--forward", &forward]).await;
        let (status, body) = app
            .patch(&key, &format!("/api/v1/webhooks/{webhook}"), &json!({ "url": format!("{url}/hook") }))
            .await;
        assert_eq!(status, 200, "{body}");

        let event_id = app.ingest_accepted(&chat_started("1025707")).await;
        let printed = read_until(&mut lines, "forwarded:").await;
        assert!(printed.contains("chat_started  [chat, visitor]"), "{printed}");
        assert!(printed.contains(&format!("event_unique_id {event_id}")), "{printed}");
        assert!(printed.contains("chat MH022RD0K5: 3 messages (1 supervisor whisper)"), "{printed}");
        assert!(printed.contains("visitor S1354547427.0c151b0e1b Mary Brown <mary.brown@email.com>"), "{printed}");
        assert!(printed.contains("signature: valid"), "{printed}");
        assert!(printed.contains("answered 200"), "{printed}");
        app.wait_deliveries(&key, &webhook, |d| d.len() == 1 && d[0]["state"] == "delivered").await;

        // The app behind it got the webhook exactly as hookwire sent it.
        let forwarded = app_receiver.next().await;
        assert_eq!(forwarded.uri.path(), "/app/hook");
        assert_eq!(forwarded.headers["webhook-id"], event_id.as_str());
        assert_eq!(forwarded.json()["event_unique_id"], event_id.as_str());
        let verifier = Verifier::new(&secret).unwrap();
        verifier.verify(&forwarded.headers, &forwarded.body).expect("still verifies after forwarding");

        // A tampered request is reported as such (and still answered 200).
        let r = app.http
            .post(format!("{url}/hook"))
            .header("webhook-id", forwarded.headers["webhook-id"].clone())
            .header("webhook-timestamp", forwarded.headers["webhook-timestamp"].clone())
            .header("webhook-signature", forwarded.headers["webhook-signature"].clone())
            .body(String::from_utf8_lossy(&forwarded.body).replace("Mary", "Mallory"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let printed = read_until(&mut lines, "signature:").await;
        assert!(printed.contains("signature: INVALID: no signature matches"), "{printed}");
        child.kill().await.unwrap();
    }

    async fn replay_redelivers_failed_deliveries_since_a_time() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let receiver = TestReceiver::start().await;
        // Three attempts each (the test schedule has two retries), all refused.
        receiver.script((0..9).map(|_| Reply::Status(500, "down")));
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/hook"))
            .await;
        for _ in 0..3 {
            app.ingest_accepted(&chat_started("1025707")).await;
        }
        app.wait_deliveries(&key, &webhook, |d| d.len() == 3 && d.iter().all(|d| d["state"] == "failed"))
            .await;

        // The wrong license for the key is refused before anything happens.
        let (ok, _, stderr) = run(hookwire()
            .args(["replay", "--license", "999", "--since", "1h", "--server", &app.url("")])
            .env("HOOKWIRE_API_KEY", &key))
        .await;
        assert!(!ok);
        assert!(stderr.contains("another license"), "{stderr}");

        let (ok, stdout, stderr) = run(hookwire()
            .args(["replay", "--license", "1025707", "--since", "1h", "--webhook", &webhook,
                   "--batch", "2", "--server", &app.url("")])
            .env("HOOKWIRE_API_KEY", &key))
        .await;
        assert!(ok, "{stdout}{stderr}");
        assert!(stdout.contains("redelivered 3 deliveries of license 1025707"), "{stdout}");
        app.wait_deliveries(&key, &webhook, |d| d.len() == 3 && d.iter().all(|d| d["state"] == "delivered"))
            .await;

        // Nothing failed since: a second run redelivers nothing.
        let (ok, stdout, _) = run(hookwire()
            .args(["replay", "--license", "1025707", "--since", "1h", "--server", &app.url("")])
            .env("HOOKWIRE_API_KEY", &key))
        .await;
        assert!(ok);
        assert!(stdout.contains("redelivered 0 deliveries"), "{stdout}");
    }

    async fn the_replay_api_pages_filters_and_validates() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let other_key = app.create_license("2000").await;
        let receiver = TestReceiver::start().await;
        receiver.script((0..12).map(|_| Reply::Status(500, "down")));
        let a = app.create_webhook(&key, "chat_started", &["chat"], &receiver.url("/a")).await;
        let b = app.create_webhook(&key, "chat_started", &["visitor"], &receiver.url("/b")).await;
        app.ingest_accepted(&chat_started("1025707")).await;
        app.ingest_accepted(&chat_started("1025707")).await;
        for w in [&a, &b] {
            app.wait_deliveries(&key, w, |d| d.len() == 2 && d.iter().all(|d| d["state"] == "failed")).await;
        }
        let replay = |key: String, query: String| {
            let app = &app;
            async move {
                let r = app.http
                    .post(app.url(&format!("/api/v1/deliveries/redeliver?{query}")))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        // One webhook, one at a time.
        let (status, body) = replay(key.clone(), format!("since=1h&webhook_id={a}&limit=1")).await;
        assert_eq!((status, body["redelivered"].as_u64(), body["remaining"].as_u64()), (202, Some(1), Some(1)), "{body}");
        let last = body["last_id"].as_str().unwrap().to_string();
        let since = body["since"].as_str().unwrap().to_string();
        assert!(since.ends_with('Z'), "the duration resolved to a time: {since}");
        let (_, body) = replay(key.clone(), format!("since=1h&webhook_id={a}&limit=1&after={last}")).await;
        assert_eq!((body["redelivered"].as_u64(), body["remaining"].as_u64()), (Some(1), Some(0)), "{body}");
        app.wait_deliveries(&key, &a, |d| d.iter().all(|d| d["state"] == "delivered")).await;
        // Webhook b was not touched.
        let (_, log) = app.get(&key, &format!("/api/v1/webhooks/{b}/deliveries")).await;
        assert!(log["deliveries"].as_array().unwrap().iter().all(|d| d["state"] == "failed"));
        // Another license's key sees none of them.
        let (status, body) = replay(other_key.clone(), "since=1h".into()).await;
        assert_eq!((status, body["redelivered"].as_u64()), (202, Some(0)), "{body}");
        let (status, _) = replay(other_key, format!("since=1h&webhook_id={b}")).await;
        assert_eq!(status, 404);
        // A time after the deliveries were created takes none; RFC 3339 works.
        let (_, body) = replay(key.clone(), "since=2999-01-01T00:00:00Z".into()).await;
        assert_eq!(body["redelivered"], 0);
        // include_delivered takes the delivered ones of a too.
        let (_, body) = replay(key.clone(), "since=1h&include_delivered=true".into()).await;
        assert_eq!(body["redelivered"], 4, "{body}");
        // Bad input: 400 with the field named.
        for (query, field) in [
            ("", "since"),
            ("since=yesterday", "since"),
            ("since=1h&limit=0", "limit"),
            ("since=1h&after=x", "after"),
            ("since=1h&license_id=2000", "license_id"),
            ("since=1h&bogus=1", "query"),
        ] {
            let (status, body) = replay(key.clone(), query.into()).await;
            assert_eq!(status, 400, "{query}: {body}");
            assert_eq!(body["error"]["field"], field, "{query}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_receiver_passes_a_good_receiver_with_signed_webhooks() {
    let mut receiver = TestReceiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let url = format!("http://user:p%40ss@{}/hook", receiver.addr);
    let (ok, stdout, stderr) =
        run(hookwire().args(["check-receiver", &url, "--secret", secret])).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("30 passed, 0 failed"), "{stdout}");
    for name in [
        "chat_started [chat, visitor, pre_chat_survey]",
        "ticket_created [no data]",
        "edge: empty pre_chat_survey",
        "edge: supervisor whispers",
        "edge: unicode",
        "edge: long transcript (2000 messages)",
        "edge: numbers in custom_variables",
        "duplicate delivery of",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(name) && l.ends_with("pass")),
            "{name}: {stdout}"
        );
    }
    let got = receiver.drain();
    assert_eq!(got.len(), 30);
    let verifier = Verifier::new(secret).unwrap();
    for r in &got {
        verifier
            .verify(&r.headers, &r.body)
            .expect("signed like hookwire");
        assert_eq!(r.headers["authorization"], "Basic dXNlcjpwQHNz");
        let p: hookwire_receiver::WebhookPayload = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(p.license_id, "1025707");
    }
    // The duplicate resends the full chat_started webhook byte for byte.
    assert!(stdout.contains("duplicate delivery of chat_started [chat, visitor, pre_chat_survey]"));
    assert_eq!(got[7].body, got[29].body);
    assert_eq!(got[7].headers["webhook-id"], got[29].headers["webhook-id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_receiver_fails_bad_receivers_with_a_table() {
    // A receiver that is down for the first three webhooks.
    let receiver = TestReceiver::start().await;
    receiver.script((0..3).map(|_| Reply::Status(500, "database down")));
    let (ok, stdout, stderr) =
        run(hookwire().args(["check-receiver", &receiver.url("/hook")])).await;
    assert!(!ok);
    assert!(stdout.contains("27 passed, 3 failed"), "{stdout}");
    assert!(stderr.contains("3 of 30 checks failed"), "{stderr}");
    let failing: Vec<&str> = stdout.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(failing.len(), 3, "{stdout}");
    assert!(
        failing
            .iter()
            .all(|l| l.contains(" 500 ") && l.contains("database down")),
        "{stdout}"
    );

    // A receiver that chokes on anything but ASCII.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
        if body.is_ascii() {
            (axum::http::StatusCode::OK, "ok")
        } else {
            (axum::http::StatusCode::BAD_REQUEST, "invalid byte sequence")
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (ok, stdout, _) =
        run(hookwire().args(["check-receiver", &format!("http://{addr}/")])).await;
    assert!(!ok);
    let failing: Vec<&str> = stdout.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(failing.len(), 1, "{stdout}");
    assert!(
        failing[0].starts_with("edge: unicode") && failing[0].contains(" 400 "),
        "{stdout}"
    );
    assert!(
        stdout.lines().next().unwrap().starts_with("Checking"),
        "{stdout}"
    );
    assert!(stdout.contains("CHECK") && stdout.contains("STATUS") && stdout.contains("TIME"));

    // Nobody listening: every check fails with the reason, no panic.
    let (ok, stdout, _) =
        run(hookwire().args(["check-receiver", "http://127.0.0.1:9/", "--timeout", "2s"])).await;
    assert!(!ok);
    assert!(
        stdout.contains("0 passed, 30 failed") && stdout.contains("connection failed"),
        "{stdout}"
    );
}
