//! The web app over plain HTTP: sign-in, CSRF, forms, escaping, the log.

use crate::support::*;
use crate::web::{csrf_in, Browser};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hookwire::testing::inspect::{stored_text, stored_webhook_url};
use serde_json::json;
use std::time::Duration;

crate::backend_tests! {
    async fn pages_need_a_session_and_sign_in_sets_a_strict_cookie() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut b = Browser::new(&app);
        for path in [
            "/ui/webhooks",
            "/ui/deliveries",
            "/ui/overview",
            "/ui/agents",
        ] {
            let r = b.get(path).await;
            assert_eq!(
                (r.status, r.location.as_str()),
                (303, "/ui/login"),
                "{path}"
            );
        }
        assert_eq!(b.get("/ui/agents.json").await.status, 401);
        // The server's address leads into the web app, and from there to
        // the sign-in page; an unknown page is HTML with a way home.
        let r = b.get("/").await;
        assert_eq!((r.status, r.location.as_str()), (303, "/ui"));
        let r = b.get("/ui").await;
        assert_eq!((r.status, r.location.as_str()), (303, "/ui/overview"));
        let r = b.get("/ui/login").await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("API key"), "the sign-in page");
        for path in ["/ui/nope", "/ui/webhooks/a/b/c"] {
            let r = b.get(path).await;
            assert_eq!(r.status, 404, "{path}");
            assert!(r.body.starts_with("<!DOCTYPE html>") || r.body.contains("<html"), "{path}: {}", r.body);
            assert!(r.body.contains(r#"href="/ui/overview""#), "a link home");
            assert!(r.body.contains(&format!("There is no page at {path}.")));
        }
        // A wrong key is refused with the form again.
        let r = b.sign_in("1025707", "hwk_wrong").await;
        assert_eq!(r.status, 401);
        assert!(r.body.contains("do not match"));
        // A POST without the sign-in form's cookie is refused.
        let mut stranger = Browser::new(&app);
        let r = stranger
            .post(
                "/ui/login",
                &[("csrf", "x"), ("license_id", "1025707"), ("api_key", &key)],
            )
            .await;
        assert_eq!(r.status, 403);

        let r = b.sign_in("1025707", &key).await;
        assert_eq!((r.status, r.location.as_str()), (303, "/ui/overview"));
        let session = r
            .set_cookies
            .iter()
            .find(|c| c.starts_with("hookwire_session="))
            .expect("a session cookie");
        assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
        assert!(!session.contains("Secure"));
        let r = b.get("/ui/overview").await;
        assert_eq!(r.status, 200);
        let r2 = reqwest::Client::new()
            .get(app.url("/ui/login"))
            .send()
            .await
            .unwrap();
        let csp = r2.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"));
        assert_eq!(r2.headers()["cache-control"], "no-store");
        assert!(r.body.contains("<svg"), "overview has charts");
        assert!(r.body.contains("Pending deliveries"));

        // Behind an https proxy the cookie is Secure.
        let mut proxied = Browser::new(&app);
        let token = proxied.csrf("/ui/login").await;
        let req = proxied
            .http
            .post(app.url("/ui/login"))
            .header("x-forwarded-proto", "https")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={token}&license_id=1025707&api_key={key}"));
        let r = proxied.send(req).await;
        assert_eq!(r.status, 303);
        assert!(r
            .set_cookies
            .iter()
            .any(|c| c.starts_with("hookwire_session=") && c.contains("; Secure")));

        // Signing out needs the token too, and ends the session.
        let r = b.post("/ui/logout", &[("csrf", "forged")]).await;
        assert_eq!(r.status, 403);
        let token = b.csrf("/ui/webhooks").await;
        let r = b.post("/ui/logout", &[("csrf", &token)]).await;
        assert_eq!((r.status, r.location.as_str()), (303, "/ui/login"));
        assert_eq!(b.get("/ui/webhooks").await.status, 303);
    }

    async fn webhook_form_validates_like_the_api_and_checks_csrf() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut b = Browser::new(&app);
        b.sign_in("1025707", &key).await;
        let r = b.get("/ui/webhooks").await;
        assert!(r.body.contains("No webhooks yet"), "empty state");
        let token = csrf_in(&r.body);

        // No CSRF token: refused, nothing created.
        let r = b
            .post(
                "/ui/webhooks",
                &[
                    ("event_type", "chat_started"),
                    ("data_types[]", "chat"),
                    ("url", "https://example.com/h"),
                ],
            )
            .await;
        assert_eq!(r.status, 403);
        assert!(app.get(&key, "/api/v1/webhooks").await.1["webhooks"]
            .as_array()
            .unwrap()
            .is_empty());

        // A data type the event does not support, and a bad URL: both fields explain.
        let r = b
            .post(
                "/ui/webhooks",
                &[
                    ("csrf", &token),
                    ("event_type", "visitor_queued"),
                    ("data_types[]", "chat"),
                    ("url", "ftp://example.com"),
                ],
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains(r#"id="data_types-error""#), "{}", r.body);
        assert!(r
            .body
            .contains("visitor_queued does not support data type chat"));
        assert!(r.body.contains(r#"id="url-error""#));

        // Valid, with basic auth composed into the URL, over http: created with a warning.
        let receiver = TestReceiver::start().await;
        let r = b
            .post(
                "/ui/webhooks",
                &[
                    ("csrf", &token),
                    ("event_type", "chat_started"),
                    ("data_types[]", "chat"),
                    ("data_types[]", "visitor"),
                    ("url", &receiver.url("/hook")),
                    ("user", "agent"),
                    ("password", "s3cret"),
                ],
            )
            .await;
        assert_eq!(
            (r.status, r.location.as_str()),
            (303, "/ui/webhooks?n=created_http")
        );
        let r = b.get("/ui/webhooks?n=created_http").await;
        assert!(r.body.contains("travel unencrypted"));
        assert!(r.body.contains("agent:****@"), "password masked");
        assert!(!r.body.contains("s3cret"));
        let (_, list) = app.get(&key, "/api/v1/webhooks").await;
        let id = list["webhooks"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(
            list["webhooks"][0]["data_types"],
            json!(["chat", "visitor"])
        );

        // Editing keeps the password when the field is left empty.
        let r = b.get(&format!("/ui/webhooks/{id}")).await;
        assert!(!r.body.contains("s3cret"));
        let r = b
            .post(
                &format!("/ui/webhooks/{id}"),
                &[
                    ("csrf", &token),
                    ("data_types[]", "chat"),
                    ("url", &receiver.url("/other")),
                    ("user", "agent"),
                ],
            )
            .await;
        assert_eq!(r.status, 303);
        let (_, w) = app.get(&key, &format!("/api/v1/webhooks/{id}")).await;
        assert_eq!(w["data_types"], json!(["chat"]));
        assert!(w["url"].as_str().unwrap().contains("agent:****@"));

        // Disable, then delete after the confirmation page.
        let r = b
            .post(
                &format!("/ui/webhooks/{id}/enabled"),
                &[("csrf", &token), ("enabled", "false")],
            )
            .await;
        assert_eq!(r.status, 303);
        assert_eq!(
            app.get(&key, &format!("/api/v1/webhooks/{id}")).await.1["enabled"],
            false
        );
        let r = b.get(&format!("/ui/webhooks/{id}/delete")).await;
        assert!(r.body.contains("cannot be undone"));
        let r = b
            .post(&format!("/ui/webhooks/{id}/delete"), &[("csrf", &token)])
            .await;
        assert_eq!(
            (r.status, r.location.as_str()),
            (303, "/ui/webhooks?n=deleted")
        );
        assert_eq!(
            app.get(&key, &format!("/api/v1/webhooks/{id}")).await.0,
            404
        );

        // Another license's webhook is not found; bad input never panics.
        assert_eq!(b.get("/ui/webhooks/nope").await.status, 404);
        assert_eq!(b.get("/ui/deliveries/abc").await.status, 404);
        assert_eq!(
            b.get("/ui/deliveries?state=bogus&before=x&event=nah")
                .await
                .status,
            200
        );
    }

    async fn delivery_log_shows_the_exact_body_and_redelivers() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut receiver = TestReceiver::start().await;
        let webhook = app
            .create_webhook(&key, "chat_started", &["visitor"], &receiver.url("/hook"))
            .await;
        receiver.script([
            Reply::Status(500, "boom"),
            Reply::Status(500, "boom"),
            Reply::Status(500, "boom"),
        ]);
        app.ingest_accepted(&chat_started("1025707")).await;
        let list = app
            .wait_deliveries(&key, &webhook, |d| {
                d.first().is_some_and(|d| d["state"] == "failed")
            })
            .await;
        let delivery = list[0]["id"].as_str().unwrap().to_string();
        let sent = receiver.next().await;

        let mut b = Browser::new(&app);
        b.sign_in("1025707", &key).await;
        let r = b
            .get("/ui/deliveries?state=failed&event=chat_started")
            .await;
        assert!(r.body.contains(&format!("/ui/deliveries/{delivery}")));
        let r = b.get("/ui/deliveries?state=delivered").await;
        assert!(!r.body.contains(&format!("/ui/deliveries/{delivery}\"")));
        let r = b.get(&format!("/ui/deliveries/{delivery}")).await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("HTTP 500"));
        assert!(r.body.contains("boom"));
        // The body shown is byte for byte what the receiver got (HTML-escaped).
        let shown = String::from_utf8_lossy(&sent.body)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        assert!(r.body.contains(&shown), "body shown as sent");

        let token = csrf_in(&r.body);
        let r = b
            .post(
                &format!("/ui/deliveries/{delivery}/redeliver"),
                &[("csrf", &token)],
            )
            .await;
        assert_eq!(r.status, 303);
        app.wait_deliveries(&key, &webhook, |d| d[0]["state"] == "delivered")
            .await;

        // Every failed delivery since a time, from the log's bulk form.
        receiver.script([
            Reply::Status(503, "down"),
            Reply::Status(503, "down"),
            Reply::Status(503, "down"),
        ]);
        app.ingest_accepted(&chat_started("1025707")).await;
        app.wait_deliveries(&key, &webhook, |d| {
            d.len() == 2 && d[0]["state"] == "failed"
        })
        .await;
        let r = b
            .post(
                "/ui/deliveries/redeliver-failed",
                &[
                    ("csrf", &token),
                    ("webhook", &webhook),
                    ("since_hours", "1"),
                ],
            )
            .await;
        assert_eq!(r.status, 303);
        assert!(
            r.location.contains("n=redelivered&count=1"),
            "{}",
            r.location
        );
        assert!(b
            .get(&r.location)
            .await
            .body
            .contains("Redelivery queued for 1"));
        app.wait_deliveries(&key, &webhook, |d| {
            d.iter().all(|d| d["state"] == "delivered")
        })
        .await;
        let r = b
            .post(
                "/ui/deliveries/redeliver-failed",
                &[("csrf", &token), ("since_hours", "-3")],
            )
            .await;
        assert_eq!(r.status, 400);

        // A free time, typed in the viewer's zone (here UTC+2, whose
        // getTimezoneOffset() is -120), instead of a preset period.
        receiver.script([
            Reply::Status(503, "down"),
            Reply::Status(503, "down"),
            Reply::Status(503, "down"),
        ]);
        app.ingest_accepted(&chat_started("1025707")).await;
        app.wait_deliveries(&key, &webhook, |d| {
            d.len() == 3 && d[0]["state"] == "failed"
        })
        .await;
        let in_utc_plus_2 = |t: time::OffsetDateTime| {
            let t = t + std::time::Duration::from_secs(2 * 3600);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        };
        let now = time::OffsetDateTime::now_utc();
        for (since, expected) in [
            (now + std::time::Duration::from_secs(3600), "count=0"),
            (now - std::time::Duration::from_secs(600), "count=1"),
        ] {
            let r = b
                .post(
                    "/ui/deliveries/redeliver-failed",
                    &[
                        ("csrf", &token),
                        ("since_hours", "24"),
                        ("since_time", &in_utc_plus_2(since)),
                        ("tz_offset", "-120"),
                    ],
                )
                .await;
            assert_eq!(r.status, 303);
            assert!(r.location.contains(expected), "{}", r.location);
        }
        app.wait_deliveries(&key, &webhook, |d| {
            d.iter().all(|d| d["state"] == "delivered")
        })
        .await;
        let r = b
            .post(
                "/ui/deliveries/redeliver-failed",
                &[("csrf", &token), ("since_time", "yesterday")],
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains("is not a date and time"), "{}", r.body);

        // Send test: a direct attempt, answered inline.
        let r = b
            .post(&format!("/ui/webhooks/{webhook}/test"), &[("csrf", &token)])
            .await;
        assert_eq!(r.status, 200);
        assert!(
            r.body.contains("the receiver answered HTTP 200"),
            "{}",
            r.body
        );
        let got = receiver.drain().pop().expect("the test send arrived");
        assert!(got.headers.get("webhook-signature").is_none(), "unsigned webhook");
        // With a signing secret, a test send is signed like a delivery.
        let secret = crate::safety::rotate(&app, &key, &webhook).await;
        let r = b
            .post(&format!("/ui/webhooks/{webhook}/test"), &[("csrf", &token)])
            .await;
        assert_eq!(r.status, 200);
        let got = receiver.drain().pop().expect("the signed test send arrived");
        let signatures = crate::safety::signatures(&got);
        assert!(crate::safety::verify(&secret, &got, &signatures[0]), "{signatures:?}");
    }

    async fn user_content_is_escaped_and_operators_switch_licenses() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut event = chat_started("1025707");
        event["visitor"]["name"] = json!("<script>alert(1)</script>");
        event["visitor"]["id"] = json!("V\"><img src=x onerror=alert(2)>");
        app.ingest_accepted(&event).await;

        let mut b = Browser::new(&app);
        b.sign_in("1025707", &key).await;
        // The page, and the cards the agent view's script swaps in, are escaped;
        // the JSON data itself carries the name as sent.
        let page = b.get("/ui/agents").await;
        let data: serde_json::Value =
            serde_json::from_str(&b.get("/ui/agents.json").await.body).unwrap();
        assert_eq!(data["visitors"][0]["name"], "<script>alert(1)</script>");
        for html in [page.body.as_str(), data["html"].as_str().unwrap()] {
            assert!(!html.contains("<script>alert"));
            assert!(!html.contains("<img src=x"));
            assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        }

        // The operator signs in with the platform key, creates and switches licenses.
        let mut op = Browser::new(&app);
        let r = op.sign_in("", PLATFORM_KEY).await;
        assert_eq!(r.status, 303);
        assert_eq!(op.get("/ui/webhooks").await.location, "/ui/licenses");
        let token = op.csrf("/ui/licenses").await;
        let r = op
            .post("/ui/licenses", &[("csrf", &token), ("license_id", "2002")])
            .await;
        assert_eq!(r.status, 201);
        assert!(r.body.contains("hwk_"), "the new key is shown once");
        let r = op
            .post(
                "/ui/license",
                &[("csrf", &token), ("license_id", "1025707")],
            )
            .await;
        assert_eq!(r.status, 303);
        let r = op.get("/ui/agents").await;
        assert!(r.body.contains("&lt;script&gt;"));
        assert!(r.body.contains(r#"<option value="2002">"#));
        // A license key holder cannot reach the operator's pages.
        assert_eq!(b.get("/ui/licenses").await.status, 404);
    }
}

crate::backend_tests! {
    async fn a_password_typed_into_the_edit_form_is_stored_sealed() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut receiver = TestReceiver::start().await;
        let first = "FirstPassw0rdTyped";
        let url = format!("http://shop:{first}@{}/hook", receiver.addr);
        let id = app
            .create_webhook(&key, "chat_started", &["chat"], &url)
            .await;
        let mut b = Browser::new(&app);
        b.sign_in("1025707", &key).await;
        let token = b.csrf(&format!("/ui/webhooks/{id}")).await;

        // A new password typed into the edit form.
        let second = "SECONDpass-plain";
        let r = b
            .post(
                &format!("/ui/webhooks/{id}"),
                &[
                    ("csrf", &token),
                    ("data_types[]", "chat"),
                    ("url", &receiver.url("/hook")),
                    ("user", "shop"),
                    ("password", second),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let stored = stored_webhook_url(&app, &id).await;
        assert!(!stored.contains(second), "stored in the clear: {stored}");
        assert!(stored.contains("shop:hwenc1."), "{stored}");
        let everything = stored_text(&app).await;
        assert!(!everything.contains(second) && !everything.contains(first));
        app.ingest_accepted(&chat_started("1025707")).await;
        let got = receiver.next().await;
        let basic = format!("Basic {}", STANDARD.encode(format!("shop:{second}")));
        assert_eq!(got.headers["authorization"], basic.as_str());

        // Saved again with the password field left empty: the sealed password
        // is kept as it is, not sealed a second time, and still opens.
        let r = b
            .post(
                &format!("/ui/webhooks/{id}"),
                &[
                    ("csrf", &token),
                    ("data_types[]", "chat"),
                    ("url", &receiver.url("/hook")),
                    ("user", "shop"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(stored_webhook_url(&app, &id).await, stored);
        app.ingest_accepted(&chat_started("1025707")).await;
        let got = receiver.next().await;
        assert_eq!(got.headers["authorization"], basic.as_str());
    }

    async fn a_password_patched_through_the_api_is_stored_sealed() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut receiver = TestReceiver::start().await;
        let url = format!("https://shop:firstpass@{}/hook", receiver.addr);
        let id = app
            .create_webhook(&key, "chat_started", &["chat"], &url)
            .await;
        let patched = "PatchedPlainPassw0rd";
        let (status, body) = app
            .patch(
                &key,
                &format!("/api/v1/webhooks/{id}"),
                &json!({"url": format!("http://shop:{patched}@{}/hook", receiver.addr)}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let stored = stored_webhook_url(&app, &id).await;
        assert!(!stored.contains(patched), "stored in the clear: {stored}");
        assert!(stored.contains("shop:hwenc1."), "{stored}");
        assert!(!stored_text(&app).await.contains(patched));
        app.ingest_accepted(&chat_started("1025707")).await;
        let got = receiver.next().await;
        let basic = format!("Basic {}", STANDARD.encode(format!("shop:{patched}")));
        assert_eq!(got.headers["authorization"], basic.as_str());
    }

    async fn enabling_a_webhook_that_holds_deliveries_asks_which_one() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut receiver = TestReceiver::start().await;
        let webhook = app
            .create_webhook(&key, "chat_started", &["chat"], &receiver.url("/hook"))
            .await;
        let path = format!("/api/v1/webhooks/{webhook}");
        app.patch(&key, &path, &json!({"enabled": false})).await;
        for _ in 0..2 {
            app.ingest_accepted(&chat_started("1025707")).await;
        }
        let mut b = Browser::new(&app);
        b.sign_in("1025707", &key).await;

        // The list shows what is held, and enabling goes through a question.
        let r = b.get("/ui/webhooks").await;
        assert!(r.body.contains("2 held"), "{}", r.body);
        assert!(r.body.contains(&format!(r#"href="/ui/webhooks/{webhook}/enable""#)));
        assert!(!r.body.contains(&format!(r#"action="/ui/webhooks/{webhook}/enabled""#)));
        let r = b.get("/ui/overview").await;
        assert!(r.body.contains(r#"<dd id="queue-held"><a href="/ui/deliveries?state=held">2</a>"#), "{}", r.body);
        let r = b.get(&format!("/ui/deliveries?webhook={webhook}&state=held")).await;
        assert_eq!(r.body.matches(r#"<span class="badge held">held</span>"#).count(), 2);
        let (_, list) = app.get(&key, "/api/v1/deliveries").await;
        let one = list["deliveries"][0]["id"].as_str().unwrap().to_string();
        let r = b.get(&format!("/ui/deliveries/{one}")).await;
        assert!(r.body.contains(r#"id="held-note""#), "{}", r.body);
        assert!(!r.body.contains("/redeliver\""), "no redeliver button for a held one");

        let r = b.get(&format!("/ui/webhooks/{webhook}/enable")).await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains(r#"<strong id="held-count">2</strong> deliveries were held"#), "{}", r.body);
        assert!(r.body.contains(r#"id="deliver-held""#) && r.body.contains(r#"id="discard-held""#));
        let token = csrf_in(&r.body);
        let enabled = format!("/ui/webhooks/{webhook}/enabled");
        let r = b
            .post(&enabled, &[("csrf", &token), ("enabled", "true"), ("held", "later")])
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("not a choice"), "{}", r.body);

        // Discarded: nothing is sent, the log says so.
        let r = b
            .post(&enabled, &[("csrf", &token), ("enabled", "true"), ("held", "discard")])
            .await;
        assert_eq!((r.status, r.location.as_str()), (303, "/ui/webhooks?n=enabled_discarded"));
        let r = b.get(&r.location).await;
        assert!(r.body.contains("was discarded"), "{}", r.body);
        let (_, list) = app.get(&key, "/api/v1/deliveries").await;
        assert!(list["deliveries"].as_array().unwrap().iter().all(|d| d["state"] == "discarded"));
        receiver.expect_silence(Duration::from_millis(300)).await;

        // Off again from the page, one held, and delivered when enabled.
        let r = b.post(&enabled, &[("csrf", &token), ("enabled", "false")]).await;
        assert_eq!((r.status, r.location.as_str()), (303, "/ui/webhooks?n=disabled"));
        let held = app.ingest_accepted(&chat_started("1025707")).await;
        let r = b.get(&format!("/ui/webhooks/{webhook}/enable")).await;
        assert!(r.body.contains(r#"<strong id="held-count">1</strong> delivery was held"#), "{}", r.body);
        let r = b
            .post(&enabled, &[("csrf", &token), ("enabled", "true"), ("held", "deliver")])
            .await;
        assert_eq!((r.status, r.location.as_str()), (303, "/ui/webhooks?n=enabled"));
        assert_eq!(receiver.next().await.json()["event_unique_id"], held.as_str());
        let (_, hook) = app.get(&key, &path).await;
        assert_eq!((&hook["enabled"], &hook["held_deliveries"]), (&json!(true), &json!(0)));
    }
}
