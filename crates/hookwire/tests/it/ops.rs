//! Operating hookwire: `/metrics` counts real work, health and readiness.

use crate::support::*;
use std::time::Duration;

/// The value of one series in a Prometheus text exposition (`name{labels}`
/// exactly as rendered), if present.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

pub(crate) async fn scrape(app: &TestApp) -> String {
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    r.text().await.unwrap()
}

crate::backend_tests! {
    async fn metrics_count_ingest_attempts_and_the_backlog() {
        let app = spawn_app_with(|s| {
            // One retry, an hour away: a failing delivery stays pending.
            s.delivery.retry_schedule = vec![Duration::from_secs(3600)];
        })
        .await;
        let before = scrape(&app).await;
        assert_eq!(sample(&before, "hookwire_queue_depth"), Some(0.0), "{before}");
        assert_eq!(sample(&before, "hookwire_database_up"), Some(1.0));
        assert!(sample(&before, "hookwire_db_connections{state=\"max\"}").unwrap() >= 1.0);

        let key = app.create_license("1025707").await;
        let ok = TestReceiver::start().await;
        let failing = TestReceiver::start().await;
        failing.script([Reply::Status(500, "boom")]);
        let gone = TestReceiver::start().await;
        gone.script([Reply::Status(410, "gone")]);
        let ok_hook = app.create_webhook(&key, "chat_started", &["chat"], &ok.url("/ok")).await;
        let failing_hook = app
            .create_webhook(&key, "chat_started", &["chat"], &failing.url("/fail"))
            .await;
        let gone_hook = app
            .create_webhook(&key, "chat_started", &["chat"], &gone.url("/gone"))
            .await;

        app.ingest_accepted(&chat_started("1025707")).await;
        app.wait_deliveries(&key, &ok_hook, |d| d.len() == 1 && d[0]["state"] == "delivered")
            .await;
        app.wait_deliveries(&key, &failing_hook, |d| {
            d.len() == 1 && d[0]["attempts"].as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
        app.wait_deliveries(&key, &gone_hook, |d| d.len() == 1 && d[0]["state"] == "failed")
            .await;
        // The attempt is logged before the dispatcher counts it: wait for the count.
        let text = eventually("three attempts to be counted", Duration::from_secs(10), async || {
            let text = scrape(&app).await;
            if sample(&text, "hookwire_attempt_duration_seconds_count") == Some(3.0) {
                Ok(text)
            } else {
                Err(text)
            }
        })
        .await;

        let get = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
        assert_eq!(get("hookwire_events_ingested_total{event_type=\"chat_started\"}"), 1.0);
        assert_eq!(get("hookwire_attempts_total{outcome=\"delivered\"}"), 1.0);
        assert_eq!(get("hookwire_attempts_total{outcome=\"retry\"}"), 1.0);
        assert_eq!(get("hookwire_attempts_total{outcome=\"failed\"}"), 1.0);
        assert_eq!(get("hookwire_deliveries_total{outcome=\"delivered\"}"), 1.0);
        assert_eq!(get("hookwire_deliveries_total{outcome=\"failed\"}"), 1.0);
        assert_eq!(get("hookwire_attempt_duration_seconds_count"), 3.0);
        assert_eq!(get("hookwire_attempt_duration_seconds_bucket{le=\"+Inf\"}"), 3.0);
        assert!(get("hookwire_attempt_duration_seconds_sum") > 0.0);
        // The failing delivery waits for its retry; the 410 disabled its webhook.
        assert_eq!(get("hookwire_queue_depth"), 1.0);
        assert!(get("hookwire_oldest_pending_age_seconds") > 0.0);
        assert_eq!(get("hookwire_webhooks_disabled"), 1.0);
        assert_eq!(get("hookwire_database_up"), 1.0);
        let (open, max) = (
            get("hookwire_db_connections{state=\"open\"}"),
            get("hookwire_db_connections{state=\"max\"}"),
        );
        assert!(open >= 1.0 && open <= max, "open {open}, max {max}");
        assert!(text.contains("# TYPE hookwire_attempt_duration_seconds histogram"));
        assert!(text.contains("# HELP hookwire_queue_depth "));

        // A replayed ingest (same idempotency key) is not a new event.
        for _ in 0..2 {
            let r = app
                .http
                .post(app.url("/api/v1/events"))
                .bearer_auth(PLATFORM_KEY)
                .header("idempotency-key", "metrics-replay")
                .json(&chat_started("1025707"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
        let text = scrape(&app).await;
        assert_eq!(
            sample(&text, "hookwire_events_ingested_total{event_type=\"chat_started\"}"),
            Some(2.0)
        );
        app.shutdown().await;
    }

    async fn health_and_readiness_answer_json() {
        let app = spawn_app().await;
        let (status, body) = app.get("", "/healthz").await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
        let (status, body) = app.get("", "/readyz").await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
        app.shutdown().await;
    }
}

fn hookwire(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookwire"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hookwire {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_and_man_page_cover_every_subcommand() {
    let subcommands = [
        "serve",
        "licenses",
        "migrate",
        "config",
        "completions",
        "man",
    ];
    for shell in ["bash", "zsh", "fish"] {
        let script = hookwire(&["completions", shell]);
        for sub in subcommands {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        // Options of a subcommand are completed too.
        assert!(script.contains("allow-private-targets"), "{shell}");
    }
    let man = hookwire(&["man"]);
    assert!(man.contains(".TH hookwire 1"), "{man}");
    assert!(man.contains(".SH SUBCOMMANDS"), "{man}");
    for sub in subcommands {
        assert!(man.contains(sub), "the man page lacks {sub}");
    }
}

/// `serve --log-format json`: one JSON object a line; each attempt's lines
/// carry the attempt span with the event, webhook, target host, status and
/// latency, and never the URL's credentials or query.
#[tokio::test]
async fn json_logs_carry_the_attempt_span() {
    use serde_json::{json, Value};
    let dir = tempfile::TempDir::new().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut command = serve_command();
    command
        .args(["--log-format", "json"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        // Successful attempts are logged one by one only at DEBUG.
        .env("HOOKWIRE_LOG", "hookwire=debug")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let server = Serving::spawn(command).expect("hookwire starts");
    let url = server.url.clone();
    let http = reqwest::Client::new();
    let api_key = create_license_at(&http, &url, "77").await;
    let mut receiver = TestReceiver::start().await;
    let target = format!(
        "http://hook:SpanPassw0rd@{}/in?token=SpanQueryToken",
        receiver.addr
    );
    let r = http
        .post(format!("{url}/api/v1/webhooks"))
        .bearer_auth(&api_key)
        .json(&json!({"event_type": "chat_started", "data_types": ["chat"], "url": target}))
        .send()
        .await
        .unwrap();
    let webhook = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .post(format!("{url}/api/v1/events"))
        .bearer_auth(PLATFORM_KEY)
        .json(&chat_started("77"))
        .send()
        .await
        .unwrap();
    let event = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    receiver.next().await;
    let line = eventually(
        "a \"delivered\" log line",
        Duration::from_secs(10),
        async || {
            let logs = std::fs::read_to_string(&log_path).unwrap();
            logs.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .find(|l| l["fields"]["message"] == "delivered")
                .ok_or(logs)
        },
    )
    .await;
    server.terminate().await;
    let span = &line["span"];
    assert_eq!(span["name"], "attempt", "{line}");
    assert_eq!(span["event_id"], event.as_str(), "{line}");
    assert_eq!(span["webhook_id"], webhook.as_str(), "{line}");
    assert_eq!(span["target_host"], receiver.addr.to_string(), "{line}");
    assert_eq!(span["status"], 200, "{line}");
    assert_eq!(span["outcome"], "delivered", "{line}");
    assert!(
        span["latency_ms"].is_u64() || span["latency_ms"].is_i64(),
        "{line}"
    );
    let logs = std::fs::read_to_string(&log_path).unwrap();
    for needle in ["SpanPassw0rd", "SpanQueryToken", PLATFORM_KEY, &api_key] {
        assert!(!logs.contains(needle), "the logs hold {needle}");
    }
}

/// Starts `command`, reads its start-up message up to the printed command
/// that creates a license, runs that command in `sh` with `env`, and
/// answers what it printed. The server is killed afterwards.
fn run_printed_next_step(mut command: std::process::Command, env: &[(&str, &str)]) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("hookwire starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed = lines
        .by_ref()
        .map(|l| l.expect("a line"))
        .find(|l| l.trim_start().starts_with("curl "))
        .expect("the start-up message prints the next step");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(printed.trim())
        .envs(env.iter().copied())
        .output()
        .expect("sh runs");
    let _ = child.kill();
    let _ = child.wait();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_start_up_hint_works_as_printed_wherever_the_key_comes_from() {
    // From the environment: the hint names the variable, not a file.
    let dir = tempfile::TempDir::new().unwrap();
    let mut command = serve_command();
    command.arg("--data-dir").arg(dir.path());
    let answer = run_printed_next_step(command, &[("HOOKWIRE_PLATFORM_KEY", PLATFORM_KEY)]);
    assert!(answer.contains("\"api_key\":\"hwk_"), "{answer}");
    assert!(!dir.path().join("platform.key").exists());

    // Generated into the data directory (a path with a space in it).
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("my data");
    let mut command = serve_command();
    command
        .env_remove("HOOKWIRE_PLATFORM_KEY")
        .arg("--data-dir")
        .arg(&data);
    let answer = run_printed_next_step(command, &[]);
    assert!(answer.contains("\"api_key\":\"hwk_"), "{answer}");
    assert!(data.join("platform.key").exists());
}

/// At the default level a successful attempt writes no line of its own; a
/// periodic summary counts them, and a log written to a file has no colour
/// codes.
#[tokio::test]
async fn the_default_log_summarises_successes_and_has_no_colour_in_a_file() {
    use serde_json::json;
    let dir = tempfile::TempDir::new().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut command = serve_command();
    command
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("HOOKWIRE_LOG")
        .env_remove("NO_COLOR")
        .env("HOOKWIRE_LOG_SUMMARY_INTERVAL", "200ms")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let server = Serving::spawn(command).expect("hookwire starts");
    let http = reqwest::Client::new();
    let api_key = create_license_at(&http, &server.url, "78").await;
    let mut receiver = TestReceiver::start().await;
    let r = http
        .post(format!("{}/api/v1/webhooks", server.url))
        .bearer_auth(&api_key)
        .json(&json!({"event_type": "chat_started", "data_types": ["chat"], "url": receiver.url("/")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for _ in 0..3 {
        let r = http
            .post(format!("{}/api/v1/events", server.url))
            .bearer_auth(PLATFORM_KEY)
            .json(&chat_started("78"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        receiver.next().await;
    }
    // The three deliveries show up in summary lines, added up.
    eventually(
        "summaries counting 3 delivered",
        Duration::from_secs(10),
        async || {
            let logs = std::fs::read_to_string(&log_path).unwrap();
            let delivered: u64 = logs
                .lines()
                .filter(|l| l.contains("attempts since the last summary"))
                .filter_map(|l| l.split("delivered=").nth(1))
                .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
                .sum();
            if delivered == 3 {
                Ok(())
            } else {
                Err(format!("{delivered} so far: {logs}"))
            }
        },
    )
    .await;
    server.terminate().await;
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !logs.contains(" delivered\n")
            && !logs.lines().any(|l| l.trim_end().ends_with("delivered")),
        "no line per success: {logs}"
    );
    assert!(
        !logs.contains('\u{1b}'),
        "no ANSI escape codes in a file: {logs}"
    );
}
