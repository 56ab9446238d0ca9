//! The web app's sessions beyond the sign-in form: portal links (once,
//! expiring, framed for a dashboard) and a session any node serves.

use crate::support::*;
use crate::web::Browser;
use serde_json::json;
use std::time::Duration;

/// A portal link for `license`, made with the platform key: its URL's path.
async fn portal_link(app: &TestApp, license: &str) -> String {
    let (status, body) = app
        .post_platform(
            &format!("/api/v1/licenses/{license}/portal-links"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["expires_at"].as_str().unwrap().ends_with('Z'),
        "{body}"
    );
    let url = body["url"].as_str().unwrap();
    let prefix = format!("http://{}", app.addr);
    assert!(url.starts_with(&format!("{prefix}/ui/portal/")), "{url}");
    url[prefix.len()..].to_string()
}

crate::backend_tests! {
    async fn a_portal_link_signs_in_once_without_the_api_key() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let id = app
            .create_webhook(&key, "chat_started", &["chat"], "https://example.com/h")
            .await;
        let path = portal_link(&app, "1025707").await;

        // Opened: signed in as the license, on Webhooks, never framed by default.
        let mut b = Browser::new(&app);
        let r = b.get(&path).await;
        assert_eq!((r.status, r.location.as_str()), (303, "/ui/webhooks"), "{}", r.body);
        assert!(r.set_cookies[0].contains("SameSite=Strict"), "{:?}", r.set_cookies);
        let page = b.get("/ui/webhooks").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains(&id), "the license's webhooks");
        let csp = b.http.get(app.url("/ui/webhooks")).send().await.unwrap();
        let csp = csp.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

        // A second opening, in another browser: a clear page and no session.
        let mut other = Browser::new(&app);
        let r = other.get(&path).await;
        assert_eq!(r.status, 410);
        assert!(r.body.contains("used already or has expired"), "{}", r.body);
        assert!(r.set_cookies.is_empty(), "{:?}", r.set_cookies);
        assert_eq!(other.get("/ui/webhooks").await.location, "/ui/login");
        let r = other.get("/ui/portal/0123456789abcdef").await;
        assert_eq!(r.status, 410);

        // Only the platform key makes links, and only for licenses that exist.
        let r = app
            .http
            .post(app.url("/api/v1/licenses/1025707/portal-links"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let (status, body) = app
            .post_platform("/api/v1/licenses/999/portal-links", &json!({}))
            .await;
        assert_eq!(status, 404, "{body}");

        // Signing out ends the session.
        let token = b.csrf("/ui/webhooks").await;
        let r = b.post("/ui/logout", &[("csrf", &token)]).await;
        assert_eq!(r.status, 303);
        assert_eq!(b.get("/ui/webhooks").await.location, "/ui/login");
    }

    async fn an_expired_portal_link_signs_nobody_in() {
        let app = spawn_app_with(|s| s.portal.link_ttl = Duration::from_millis(1)).await;
        app.create_license("1025707").await;
        let path = portal_link(&app, "1025707").await;
        let mut b = Browser::new(&app);
        let r = eventually("the link to expire", Duration::from_secs(10), async || {
            let r = b.get(&path).await;
            if r.status == 410 { Ok(r) } else { Err(format!("{} {}", r.status, r.location)) }
        })
        .await;
        assert!(r.set_cookies.is_empty());
    }

    async fn a_framing_dashboard_gets_frame_ancestors_and_a_cookie_for_its_frame() {
        let app = spawn_app_with(|s| {
            s.portal.frame_ancestors = vec!["https://dashboard.example.com".into()]
        })
        .await;
        app.create_license("1025707").await;
        let path = portal_link(&app, "1025707").await;
        let mut b = Browser::new(&app);
        let r = b.get(&path).await;
        assert_eq!(r.status, 303);
        let cookie = &r.set_cookies[0];
        assert!(cookie.contains("SameSite=None") && cookie.contains("Secure"), "{cookie}");
        let page = b.http.get(app.url("/ui/login")).send().await.unwrap();
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors https://dashboard.example.com"), "{csp}");
        // A session signed in with a key is not framed: its cookie stays strict.
        let key = app.create_license("2").await;
        let r = Browser::new(&app).sign_in("2", &key).await;
        assert!(r.set_cookies.iter().any(|c| c.contains("SameSite=Strict") && c.starts_with("hookwire_session=")));
    }
}

/// Sessions live in the shared database: one node signs in, another serves
/// the session, and signing out on one ends it on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_serves_a_signed_in_browser() {
    run_on(Backend::Postgres, async {
        let a = spawn_app().await;
        let b_node = spawn_app_with(|s| s.database = a.database.clone()).await;
        let key = a.create_license("1025707").await;
        let mut on_a = Browser::new(&a);
        assert_eq!(on_a.sign_in("1025707", &key).await.status, 303);
        let mut on_b = Browser::new(&b_node);
        on_b.cookies = on_a.cookies.clone();
        let page = on_b.get("/ui/webhooks").await;
        assert_eq!(page.status, 200, "node B serves node A's session");
        let token = on_b.csrf("/ui/webhooks").await;
        assert_eq!(
            on_b.post("/ui/logout", &[("csrf", &token)]).await.status,
            303
        );
        assert_eq!(
            on_a.get("/ui/webhooks").await.location,
            "/ui/login",
            "signed out everywhere"
        );
    })
    .await
}
