//! The web app in a real headless Chromium, driven over WebDriver.
//!
//! Needs `chromium` and `chromedriver` (`scripts/install-browser` installs
//! both). Without them the test prints why it is skipped, and fails when the
//! `CI` environment variable is set. Screenshots of the main pages are written
//! to `<target dir>/ui-screenshots/`.

use crate::support::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium's real binary (Debian's `/usr/bin/chromium` is a launcher script).
fn chromium() -> Option<PathBuf> {
    let real = Path::new("/usr/lib/chromium/chromium");
    if real.is_file() {
        return Some(real.to_path_buf());
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| on_path(n))
}

fn screenshots_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target dir>/tmp.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

struct Driver {
    _process: tokio::process::Child,
    client: Client,
    _profile: tempfile::TempDir,
}

async fn start_driver(driver: &Path, chrome: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    // Both of rustls' providers are compiled in somewhere; pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let profile = tempfile::TempDir::new().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chrome.to_string_lossy(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver takes a moment to listen, and Chromium to start.
    let client = eventually("a WebDriver session", Duration::from_secs(30), async || {
        let mut builder = ClientBuilder::rustls().expect("rustls");
        builder.capabilities(caps.clone());
        builder.connect(&url).await.map_err(|e| e.to_string())
    })
    .await;
    Driver {
        _process: process,
        client,
        _profile: profile,
    }
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn css(c: &Client, selector: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"))
}

async fn body_text(c: &Client) -> String {
    eventually(
        "the page to have a body",
        Duration::from_secs(10),
        async || match c
            .execute(
                "return document.body ? document.body.innerText : null",
                vec![],
            )
            .await
        {
            Ok(Value::String(text)) => Ok(text),
            other => Err(format!("{other:?}")),
        },
    )
    .await
}

/// Clicks a button that leaves the page, and waits for the next page.
async fn submit(c: &Client, selector: &str) {
    let old = css(c, "html").await;
    css(c, selector).await.click().await.unwrap();
    // The old page's element goes stale once the next page has replaced it.
    let what = format!("clicking {selector} to load a page");
    eventually(&what, Duration::from_secs(10), async || {
        old.tag_name().await.is_err()
    })
    .await;
    css(c, "body").await;
}

/// Reloads `path` until its text contains `needle`.
async fn reload_until(c: &Client, url: &str, needle: &str) {
    let what = format!("{url} to show {needle:?}");
    eventually(&what, Duration::from_secs(20), async || {
        c.goto(url).await.unwrap();
        let text = body_text(c).await;
        if text.contains(needle) {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
}

/// chromedriver and Chromium, or `None` when they are missing (a failure
/// under `CI`; otherwise `test` says it is skipped).
fn browser_tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let (Some(driver), Some(chrome)) = (on_path("chromedriver"), chromium()) else {
        let msg = "the browser test needs chromium and chromedriver: run scripts/install-browser";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED {test}: {msg}");
        return None;
    };
    Some((driver, chrome))
}

/// Opens the sign-in page and signs in as `license` with `key`.
async fn sign_in(c: &Client, app: &TestApp, license: &str, key: &str) {
    c.goto(&app.url("/ui/login")).await.unwrap();
    css(c, "#license_id")
        .await
        .send_keys(license)
        .await
        .unwrap();
    css(c, "#api_key").await.send_keys(key).await.unwrap();
    submit(c, "main form button[type=submit]").await;
    css(c, "#queue-depth").await;
}

#[tokio::test]
async fn the_web_app_in_a_real_browser() {
    let Some((driver, chrome)) = browser_tools("the_web_app_in_a_real_browser") else {
        return;
    };
    let app = spawn_app().await;
    let key = app.create_license("1025707").await;
    let mut receiver = TestReceiver::start().await;
    let d = start_driver(&driver, &chrome).await;
    let c = &d.client;

    // Sign in.
    c.goto(&app.url("/ui/login")).await.unwrap();
    css(c, "#license_id")
        .await
        .send_keys("1025707")
        .await
        .unwrap();
    css(c, "#api_key").await.send_keys(&key).await.unwrap();
    shot(c, "login").await;
    submit(c, "main form button[type=submit]").await;
    css(c, "#queue-depth").await;

    // Create a webhook through the form. The script offers only the data
    // types the chosen event supports.
    c.goto(&app.url("/ui/webhooks")).await.unwrap();
    assert!(body_text(c).await.contains("No webhooks yet"));
    c.goto(&app.url("/ui/webhooks/new")).await.unwrap();
    css(c, "#event_type")
        .await
        .select_by_value("visitor_queued")
        .await
        .unwrap();
    assert!(!css(c, "#dt-chat").await.is_displayed().await.unwrap());
    assert!(css(c, "#dt-visitor").await.is_displayed().await.unwrap());
    css(c, "#event_type")
        .await
        .select_by_value("chat_started")
        .await
        .unwrap();
    assert!(css(c, "#dt-chat").await.is_displayed().await.unwrap());
    assert!(!css(c, "#dt-ticket").await.is_displayed().await.unwrap());
    css(c, "#dt-chat").await.click().await.unwrap();
    css(c, "#dt-visitor").await.click().await.unwrap();
    // A bad URL comes back with the error beside the field, choices kept.
    css(c, "#url")
        .await
        .send_keys("ftp://example.com/hook")
        .await
        .unwrap();
    submit(c, "form.webhook-form button[type=submit]").await;
    let error = css(c, "#url-error").await.text().await.unwrap();
    assert!(error.contains("http"), "{error}");
    assert!(css(c, "#dt-chat").await.is_selected().await.unwrap());
    shot(c, "webhook-form-error").await;
    let url = css(c, "#url").await;
    url.clear().await.unwrap();
    url.send_keys(&receiver.url("/hook")).await.unwrap();
    assert!(css(c, "#http-warning").await.is_displayed().await.unwrap());
    css(c, "#user").await.send_keys("agent").await.unwrap();
    css(c, "#password").await.send_keys("s3cret").await.unwrap();
    submit(c, "form.webhook-form button[type=submit]").await;
    let text = body_text(c).await;
    assert!(text.contains("travel unencrypted"), "{text}");
    assert!(text.contains("agent:****@127.0.0.1"), "{text}");

    // An event reported through the API shows up delivered in the log.
    app.ingest_accepted(&chat_started("1025707")).await;
    let first = receiver.next().await.json();
    reload_until(c, &app.url("/ui/deliveries"), "delivered").await;
    c.goto(&app.url("/ui/webhooks")).await.unwrap();
    css(c, "td .badge.delivered").await;
    shot(c, "webhooks").await;
    c.set_window_size(390, 844).await.unwrap();
    shot(c, "webhooks-phone").await;
    c.set_window_size(1280, 900).await.unwrap();

    // Times arrive as UTC ISO and are shown in the viewer's zone by the script.
    let when = css(c, "td time").await;
    let iso = when.attr("datetime").await.unwrap().unwrap();
    assert_ne!(when.text().await.unwrap(), iso);
    assert_eq!(
        when.attr("title").await.unwrap().as_deref(),
        Some(iso.as_str())
    );

    // The receiver fails until retries run out; redeliver from the UI.
    receiver.script([
        Reply::Status(500, "receiver down"),
        Reply::Status(500, "receiver down"),
        Reply::Status(500, "receiver down"),
    ]);
    app.ingest_accepted(&chat_started("1025707")).await;
    for _ in 0..3 {
        receiver.next().await;
    }
    reload_until(c, &app.url("/ui/deliveries?state=failed"), "failed").await;
    shot(c, "delivery-log").await;
    submit(c, "#deliveries tbody a").await;
    let text = body_text(c).await;
    assert!(
        text.contains("HTTP 500") && text.contains("receiver down"),
        "{text}"
    );
    assert!(css(c, "#body-sent")
        .await
        .text()
        .await
        .unwrap()
        .contains("event_unique_id"));
    shot(c, "delivery").await;
    submit(c, "main form button[type=submit]").await;
    receiver.next().await;
    let detail = c.current_url().await.unwrap();
    let detail = format!("{}{}", app.url(""), detail.path());
    reload_until(c, &detail, "HTTP 200").await;

    // The agent view picks up posted details without a reload.
    c.goto(&app.url("/ui/agents")).await.unwrap();
    assert!(body_text(c).await.contains("Mary Brown"));
    let r = app
        .http
        .post(app.url("/visitors/S1354547427.0c151b0e1b/details"))
        .form(&[
            ("license_id", "1025707"),
            ("token", first["token"].as_str().unwrap()),
            ("id", "crm"),
            ("fields[0][name]", "Plan"),
            ("fields[0][value]", "Enterprise <b>gold</b>"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dd = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//dd[contains(., 'Enterprise <b>gold</b>')]",
        ))
        .await
        .expect("details appear without a reload, as text");
    assert_eq!(dd.text().await.unwrap(), "Enterprise <b>gold</b>");
    shot(c, "agents").await;

    c.goto(&app.url("/ui/overview")).await.unwrap();
    css(c, "svg.chart").await;
    shot(c, "overview").await;
    let _: Value = c.execute("return document.title", vec![]).await.unwrap();

    // A portal link signs a fresh browser in without the API key, once.
    let (status, link) = app
        .post_platform(
            "/api/v1/licenses/1025707/portal-links",
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let link = link["url"].as_str().unwrap().to_string();
    c.delete_all_cookies().await.unwrap();
    c.goto(&app.url("/ui/webhooks")).await.unwrap();
    css(c, "#api_key").await;
    c.goto(&link).await.unwrap();
    reload_until(c, &app.url("/ui/webhooks"), "webhooks of license 1025707").await;
    shot(c, "portal").await;
    c.delete_all_cookies().await.unwrap();
    c.goto(&link).await.unwrap();
    let text = body_text(c).await;
    assert!(text.contains("This link cannot sign you in"), "{text}");
    c.goto(&app.url("/ui/webhooks")).await.unwrap();
    css(c, "#api_key").await;
    d.client.close().await.unwrap();
}

/// A webhook that was off holds what came meanwhile; enabling it from the
/// list asks whether to deliver or discard them, showing how many.
#[tokio::test]
async fn enabling_a_webhook_asks_about_what_it_held() {
    let Some((driver, chrome)) = browser_tools("enabling_a_webhook_asks_about_what_it_held") else {
        return;
    };
    let app = spawn_app_with(|s| s.delivery.per_target_concurrency = 1).await;
    let key = app.create_license("1025707").await;
    let mut receiver = TestReceiver::start().await;
    let webhook = app
        .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/hook"))
        .await;
    let (status, _) = app
        .patch(
            &key,
            &format!("/api/v1/webhooks/{webhook}"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 200);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(app.ingest_accepted(&chat_started("1025707")).await);
    }
    let d = start_driver(&driver, &chrome).await;
    let c = &d.client;
    sign_in(c, &app, "1025707", &key).await;

    c.goto(&app.url("/ui/webhooks")).await.unwrap();
    let count = css(c, &format!("#webhook-{webhook} .held-count")).await;
    assert_eq!(count.text().await.unwrap(), "3 held");
    shot(c, "webhooks-held").await;
    submit(c, &format!("#webhook-{webhook} a.enable")).await;
    assert_eq!(css(c, "#held-count").await.text().await.unwrap(), "3");
    let text = body_text(c).await;
    assert!(
        text.contains("Deliver them") && text.contains("Discard them"),
        "{text}"
    );
    shot(c, "enable-held").await;
    submit(c, "#deliver-held").await;
    let text = body_text(c).await;
    assert!(text.contains("delivered, oldest first"), "{text}");
    let mut arrived = Vec::new();
    for _ in 0..3 {
        let body = receiver.next().await.json();
        arrived.push(body["event_unique_id"].as_str().unwrap().to_string());
    }
    assert_eq!(arrived, held, "in the order they came");
    reload_until(c, &app.url("/ui/webhooks"), "enabled").await;
    assert!(
        c.find(Locator::Css(".held-count")).await.is_err(),
        "nothing held any more"
    );
    d.client.close().await.unwrap();
}
