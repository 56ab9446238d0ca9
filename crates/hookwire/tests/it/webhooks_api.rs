//! LiveChat's v2 webhooks API and hookwire's own webhook routes.

use crate::support::*;
use serde_json::{json, Value};

async fn create_error(app: &TestApp, key: &str, body: Value) -> Value {
    let r = app
        .http
        .post(app.url("/webhooks"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{body}");
    r.json::<Value>().await.unwrap()
}

crate::backend_tests! {
    async fn v2_create_list_delete_with_form_and_json() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;

        // Exactly what a PHP client sends: form-encoded with data_types[].
        let r = app
            .http
            .post(app.url("/v2/webhooks"))
            .basic_auth("agent@example.com", Some(&key))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("event_type=chat_started&data_types%5B%5D=chat&data_types%5B%5D=visitor&url=https%3A%2F%2Flivechat%3Ap%2540ss%40hooks.example.com%2Fin")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let created: Value = r.json().await.unwrap();
        let hook = &created["events"][0];
        assert_eq!(hook["licence"], 1025707);
        assert_eq!(hook["event_type"], "chat_started");
        assert_eq!(hook["data_types"], json!(["chat", "visitor"]));
        assert_eq!(hook["url"], "https://livechat:****@hooks.example.com/in");
        assert_eq!(hook["verified"], true);
        assert!(hook["token"].as_str().unwrap().len() == 32);
        let id = hook["id"].as_str().unwrap().to_string();

        let id2 = app
            .create_webhook(&key, "ticket_created", &["ticket"], "http://x.example/t")
            .await;
        let (status, list) = app.get(&key, "/webhooks").await;
        assert_eq!(status, 200);
        let ids: Vec<&str> = list["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str(), id2.as_str()]);
        assert!(!list.to_string().contains("p@ss") && !list.to_string().contains("p%40ss"));

        let r = app
            .http
            .delete(app.url(&format!("/webhooks/{id}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"result": "Push notification removed successfully"})
        );
        let r = app
            .http
            .delete(app.url(&format!("/webhooks/{id}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let (_, list) = app.get(&key, "/v2/webhooks").await;
        assert_eq!(list["events"].as_array().unwrap().len(), 1);
    }

    async fn validation_names_the_field() {
        let app = spawn_app().await;
        let key = app.create_license("1").await;
        let cases = [
            (
                json!({"event_type": "chat_exploded", "url": "https://x.io"}),
                "event_type",
            ),
            (json!({"url": "https://x.io"}), "event_type"),
            (
                json!({"event_type": "visitor_queued", "data_types": ["chat"], "url": "https://x.io"}),
                "data_types",
            ),
            (
                json!({"event_type": "ticket_created", "data_types": ["visitor"], "url": "https://x.io"}),
                "data_types",
            ),
            (
                json!({"event_type": "chat_changed", "data_types": ["pre_chat_survey"], "url": "https://x.io"}),
                "data_types",
            ),
            (
                json!({"event_type": "chat_started", "data_types": ["weather"], "url": "https://x.io"}),
                "data_types",
            ),
            (
                json!({"event_type": "chat_started", "url": "ftp://x.io/in"}),
                "url",
            ),
            (
                json!({"event_type": "chat_started", "url": "/relative"}),
                "url",
            ),
            (
                json!({"event_type": "chat_started", "url": "x.io/in"}),
                "url",
            ),
            (json!({"event_type": "chat_started"}), "url"),
        ];
        for (body, field) in cases {
            let err = create_error(&app, &key, body.clone()).await;
            assert_eq!(err["field"], field, "{body} -> {err}");
            assert!(livechat_client_message(&err).contains(field), "{err}");
        }
        // Nothing was created by the rejected requests.
        let (_, list) = app.get(&key, "/webhooks").await;
        assert_eq!(list["events"], json!([]));
    }

    async fn keys_are_required_and_licenses_are_isolated() {
        let app = spawn_app().await;
        let a = app.create_license("111").await;
        let b = app.create_license("222").await;
        let hook = app
            .create_webhook(&a, "chat_ended", &["chat"], "https://a.example/x")
            .await;

        let r = app.http.get(app.url("/webhooks")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
        let (status, _) = app.get("wrong-key", "/webhooks").await;
        assert_eq!(status, 401);
        // The platform key is not a license key.
        let (status, _) = app.get(PLATFORM_KEY, "/webhooks").await;
        assert_eq!(status, 401);

        let (_, list) = app.get(&b, "/webhooks").await;
        assert_eq!(list["events"], json!([]));
        for path in [
            format!("/api/v1/webhooks/{hook}"),
            format!("/api/v1/webhooks/{hook}/deliveries"),
        ] {
            assert_eq!(app.get(&b, &path).await.0, 404, "{path}");
        }
        let r = app
            .http
            .delete(app.url(&format!("/webhooks/{hook}")))
            .bearer_auth(&b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(
            app.get(&a, &format!("/api/v1/webhooks/{hook}")).await.0,
            200
        );

        // Creating a license needs the platform key, and ids are unique.
        let r = app
            .http
            .post(app.url("/api/v1/licenses"))
            .bearer_auth(&a)
            .json(&json!({"license_id": "9"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let (status, body) = app
            .post_platform("/api/v1/licenses", &json!({"license_id": "111"}))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("conflict"))
        );
        let (status, body) = app
            .post_platform("/api/v1/licenses", &json!({"license_id": "no spaces"}))
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("license_id"))
        );
    }

    async fn native_get_and_patch() {
        let app = spawn_app().await;
        let key = app.create_license("5").await;
        let id = app
            .create_webhook(
                &key,
                "chat_started",
                &["visitor"],
                "https://u:secret@a.example/x",
            )
            .await;
        let (status, hook) = app.get(&key, &format!("/api/v1/webhooks/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(hook["url"], "https://u:****@a.example/x");
        assert_eq!(hook["enabled"], true);
        assert_eq!(hook["disabled_reason"], Value::Null);
        assert!(hook["created_at"].as_str().unwrap().ends_with('Z'));

        let patch = |body: Value| {
            app.http
                .patch(app.url(&format!("/api/v1/webhooks/{id}")))
                .bearer_auth(&key)
                .json(&body)
                .send()
        };
        let r = patch(json!({"data_types": ["chat", "pre_chat_survey"], "enabled": false, "url": "https://b.example/y"})).await.unwrap();
        assert_eq!(r.status(), 200);
        let hook: Value = r.json().await.unwrap();
        assert_eq!(hook["data_types"], json!(["chat", "pre_chat_survey"]));
        assert_eq!(hook["enabled"], false);
        assert_eq!(hook["disabled_reason"], "disabled by the license");
        assert_eq!(hook["url"], "https://b.example/y");

        let r = patch(json!({"data_types": ["ticket"]})).await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["field"],
            "data_types"
        );
        let r = patch(json!({"url": "nope"})).await.unwrap();
        assert_eq!(r.status(), 400);
        let r = patch(json!({"colour": "red"})).await.unwrap();
        assert_eq!(r.status(), 400);
        let r = patch(json!({"enabled": true})).await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["enabled"], true);
    }

    async fn unknown_routes_and_methods_answer_json() {
        let app = spawn_app().await;
        let r = app.http.get(app.url("/nope")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "not_found"
        );
        let r = app.http.put(app.url("/webhooks")).send().await.unwrap();
        assert_eq!(r.status(), 405);
        let body = r.json::<Value>().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed", "{body}");
        assert!(livechat_client_message(&body).contains("method not allowed"));
    }
}

crate::backend_tests! {
    async fn livechat_routes_answer_errors_their_clients_can_read() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        // As LiveChat's PHP client sends it: a form body, basic auth
        // `login:api_key`, X-API-Version 2.
        let send = |path: &str, form: &str, login_key: &str| {
            app.http
                .post(app.url(path))
                .basic_auth("agent@example.com", Some(login_key))
                .header("X-API-Version", "2")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.to_string())
                .send()
        };
        let cases = [
            ("/webhooks", "event_type=chat_started&data_types[0]=ticket&url=https://x.io/h", key.as_str(), 400, "ticket"),
            ("/v2/webhooks", "event_type=chat_started&data_types[0]=chat", key.as_str(), 400, "url"),
            ("/webhooks", "event_type=chat_exploded&data_types[0]=chat&url=https://x.io/h", key.as_str(), 400, "event_type"),
            ("/webhooks", "event_type=chat_started&data_types[0]=weather&url=https://x.io/h", key.as_str(), 400, "data_types"),
            ("/webhooks", "event_type=chat_started&data_types[0]=chat&url=https://x.io/h", "hwk_wrong", 401, "invalid API key"),
            ("/v2/visitors/S1/details", "license_id=1025707&token=0123456789abcdef0123456789abcdef&id=x&fields[0][name]=a&fields[0][value]=b", key.as_str(), 401, "invalid token"),
        ];
        for (path, form, login_key, status, needle) in cases {
            let r = send(path, form, login_key).await.unwrap();
            assert_eq!(r.status(), status, "{path} {form}");
            assert_eq!(r.headers()["content-type"], "application/json");
            let body: Value = r.json().await.unwrap();
            let message = livechat_client_message(&body);
            assert!(message.contains(needle), "{path} {form}: {message:?} from {body}");
            assert!(message.ends_with('.'), "one sentence: {message:?}");
        }
        // Deleting what is not there, and a method the route lacks.
        let r = app
            .http
            .delete(app.url("/v2/webhooks/nope"))
            .basic_auth("agent@example.com", Some(&key))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.unwrap();
        assert!(livechat_client_message(&body).contains("nope"), "{body}");
        assert_eq!(body["code"], "not_found");
        // hookwire's own routes keep their structured error.
        let (status, body) = app.get("hwk_wrong", "/api/v1/webhooks").await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        // Nothing was created by the refused requests.
        let (_, list) = app.get(&key, "/webhooks").await;
        assert_eq!(list["events"], json!([]));
    }
}
