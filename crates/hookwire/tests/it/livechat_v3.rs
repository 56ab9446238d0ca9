//! LiveChat v3.x webhooks: the Configuration API's webhook methods, v3
//! ingest with its checks, enablement per Client ID, filters, and v3
//! deliveries through the same queue as v2 (retried, logged).

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Calls a Configuration API method with the license's key (`None`: no key).
async fn call(
    app: &TestApp,
    key: Option<&str>,
    version: &str,
    method: &str,
    body: Value,
) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url(&format!("/v{version}/configuration/action/{method}")))
        .json(&body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn registration(action: &str, owner: &str, url: &str) -> Value {
    json!({"action": action, "secret_key": "laudla991lamda0pnoaa0", "url": url,
           "type": "license", "owner_client_id": owner})
}

/// Registers a webhook that must be accepted; answers its id.
async fn register(app: &TestApp, key: &str, body: Value) -> String {
    let (status, answer) = call(app, Some(key), "3.6", "register_webhook", body).await;
    assert_eq!(status, 200, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

async fn enable(app: &TestApp, key: &str, owner: &str) {
    let (status, answer) = call(
        app,
        Some(key),
        "3.6",
        "enable_license_webhooks",
        json!({"owner_client_id": owner}),
    )
    .await;
    assert_eq!((status, answer), (200, json!({})));
}

fn v3_event(license: &str, action: &str, payload: Value, context: Value) -> Value {
    json!({"action": action, "license_id": license, "payload": payload, "context": context})
}

/// The `deliveries` count of an accepted event.
async fn delivered_to(app: &TestApp, event: &Value) -> u64 {
    let (status, body) = app.ingest(event).await;
    assert_eq!(status, 202, "{body}");
    body["deliveries"].as_u64().unwrap()
}

fn assert_v3_error(status: u16, body: &Value, want_status: u16, kind: &str, mentions: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
}

crate::backend_tests! {
    async fn the_configuration_methods_answer_as_documented() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;

        let id = register(&app, &key, json!({
            "action": "incoming_event", "secret_key": "s3cret", "url": "https://user:p%40ss@hooks.example.com/lc",
            "type": "license", "owner_client_id": "app-1", "description": "Events",
            "additional_data": ["chat_properties"],
            "filters": {"author_type": "customer", "chat_presence": {"user_ids": {"values": ["a@x"]}}}
        })).await;
        // Basic auth with the key as the password, as a PAT is sent.
        let r = app.http
            .post(app.url("/v3.7/configuration/action/list_webhooks"))
            .basic_auth("account-id", Some(&key))
            .json(&json!({"owner_client_id": "app-1"}))
            .send().await.unwrap();
        assert_eq!(r.status(), 200);
        let list: Value = r.json().await.unwrap();
        assert_eq!(list, json!([{
            "id": id, "url": "https://user:****@hooks.example.com/lc", "description": "Events",
            "action": "incoming_event", "secret_key": "s3cret",
            "filters": {"author_type": "customer", "chat_presence": {"user_ids": {"values": ["a@x"]}}},
            "owner_client_id": "app-1", "type": "license", "additional_data": ["chat_properties"]
        }]));
        let (_, other) = call(&app, Some(&key), "3.6", "list_webhooks", json!({"owner_client_id": "app-2"})).await;
        assert_eq!(other, json!([]), "webhooks belong to their Client ID");
        let (_, v2) = app.get(&key, "/v2/webhooks").await;
        assert_eq!(v2["events"], json!([]), "v2's list holds v2 webhooks only");

        // The state is off until enabled, per Client ID.
        let state = |owner: &'static str| {
            let (app, key) = (&app, key.clone());
            async move { call(app, Some(&key), "3.5", "get_license_webhooks_state", json!({"owner_client_id": owner})).await }
        };
        assert_eq!(state("app-1").await, (200, json!({"license_webhooks_enabled": false})));
        enable(&app, &key, "app-1").await;
        assert_eq!(state("app-1").await, (200, json!({"license_webhooks_enabled": true})));
        assert_eq!(state("app-2").await, (200, json!({"license_webhooks_enabled": false})));
        let (status, answer) = call(&app, Some(&key), "3.6", "disable_license_webhooks", json!({"owner_client_id": "app-1"})).await;
        assert_eq!((status, answer), (200, json!({})));
        assert_eq!(state("app-1").await, (200, json!({"license_webhooks_enabled": false})));

        // At most three per action per Client ID; the fourth names the limit.
        for _ in 0..2 {
            register(&app, &key, registration("incoming_event", "app-1", "https://hooks.example.com/e")).await;
        }
        let (status, body) = call(&app, Some(&key), "3.6", "register_webhook",
            registration("incoming_event", "app-1", "https://hooks.example.com/e")).await;
        assert_v3_error(status, &body, 400, "validation", "limit of 3 webhooks per action per Client ID");
        register(&app, &key, registration("incoming_event", "app-2", "https://hooks.example.com/e")).await;
        register(&app, &key, registration("incoming_chat", "app-1", "https://hooks.example.com/e")).await;

        // Unregistering is the owner's; a second time finds nothing.
        let unregister = |owner: &'static str| {
            let (app, key, id) = (&app, key.clone(), id.clone());
            async move { call(app, Some(&key), "3.6", "unregister_webhook", json!({"id": id, "owner_client_id": owner})).await }
        };
        let (status, body) = unregister("app-2").await;
        assert_v3_error(status, &body, 404, "not_found", "no webhook");
        assert_eq!(unregister("app-1").await, (200, json!({})));
        let (status, body) = unregister("app-1").await;
        assert_v3_error(status, &body, 404, "not_found", "no webhook");

        // The catalog, without a key: the stable version unless asked.
        let names = |body: Value| {
            let app = &app;
            async move {
                let (status, list) = call(app, None, "3.6", "list_webhook_names", body).await;
                assert_eq!(status, 200, "{list}");
                list.as_array().unwrap().clone()
            }
        };
        assert_eq!(names(json!({})).await.len(), 38);
        let v35 = names(json!({"version": "3.5"})).await;
        assert_eq!(v35.len(), 39);
        assert!(v35.contains(&json!({"action": "incoming_event",
            "filters": ["chat_presence", "author_type", "only_my_chats", "source_type"],
            "additional_data": ["chat_properties", "chat_presence_user_ids"]})));
        assert!(v35.contains(&json!({"action": "incoming_customer", "filters": ["source_type"], "additional_data": []})));
        assert_eq!(names(json!({"version": "3.7"})).await.len(), 38);
        let (status, body) = call(&app, None, "3.6", "list_webhook_names", json!({"version": "2.0"})).await;
        assert_v3_error(status, &body, 400, "validation", "version");
    }

    async fn bad_configuration_requests_are_named() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let (status, body) = call(&app, None, "3.6", "list_webhooks", json!({"owner_client_id": "a"})).await;
        assert_v3_error(status, &body, 401, "authentication", "API key");
        let (status, body) = call(&app, Some("hwk_wrong"), "3.6", "list_webhooks", json!({"owner_client_id": "a"})).await;
        assert_v3_error(status, &body, 401, "authentication", "invalid API key");
        let (status, body) = call(&app, Some(&key), "3.6", "create_bot", json!({})).await;
        assert_v3_error(status, &body, 404, "not_found", "create_bot");
        let (status, body) = call(&app, Some(&key), "3.6", "list_webhooks", json!({})).await;
        assert_v3_error(status, &body, 400, "validation", "owner_client_id is required");
        for (change, mentions) in [
            (json!({"action": "chat_started"}), "chat_started"),
            (json!({"action": "incoming_chat", "filters": {"author_type": "agent"}}), "filters.author_type"),
            (json!({"action": "routing_status_set", "filters": {"only_my_chats": true}}), "filters.only_my_chats"),
            (json!({"type": "application"}), "type"),
            (json!({"url": format!("https://x.example/{}", "a".repeat(500))}), "500"),
            (json!({"additional_data": ["visitor"]}), "additional_data"),
            (json!({"action": "agent_deleted", "additional_data": ["chat_properties"]}), "agent_deleted"),
            (json!({"extra": 1}), "extra"),
            (json!({"secret_key": null}), "secret_key is required"),
        ] {
            let mut body = registration("incoming_chat", "app", "https://hooks.example.com/x");
            for (k, v) in change.as_object().unwrap() {
                body[k] = v.clone();
            }
            let (status, answer) = call(&app, Some(&key), "3.6", "register_webhook", body.clone()).await;
            assert_v3_error(status, &answer, 400, "validation", mentions);
        }
        // incoming_customer is 3.5's alone.
        let (status, answer) = call(&app, Some(&key), "3.6", "register_webhook",
            registration("incoming_customer", "app", "https://hooks.example.com/x")).await;
        assert_v3_error(status, &answer, 400, "validation", "3.6");
        let (status, _) = call(&app, Some(&key), "3.5", "register_webhook",
            registration("incoming_customer", "app", "https://hooks.example.com/x")).await;
        assert_eq!(status, 200);
        // The error shape holds for a body that is not JSON too.
        let r = app.http.post(app.url("/v3.6/configuration/action/list_webhooks"))
            .bearer_auth(&key).header("content-type", "application/json").body("{")
            .send().await.unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["type"], "validation");
    }

    async fn v3_events_are_checked_and_delivered_in_the_six_key_envelope() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut receiver = TestReceiver::start().await;
        let id = register(&app, &key, json!({
            "action": "incoming_chat", "secret_key": "laudla991", "url": receiver.url("/lc"),
            "type": "license", "owner_client_id": "app-1",
            "additional_data": ["chat_properties", "chat_presence_user_ids"]
        })).await;
        let payload = r#"{"chat":{"id":"PJ0MRSHTDG","n":1.50,"users":[]}}"#;
        let event = format!(
            r#"{{"action":"incoming_chat","license_id":"1025707","payload":{payload},
                "context":{{"source_client_id":"app-9","author_type":"agent",
                            "chat_presence":{{"user_ids":["a@x","c-1"],"bots":[{{"id":"bot-1","owner_client_id":"app-1"}}]}},
                            "chat_properties":{{"source":{{"client_id":"app-9"}}}}}}}}"#
        );
        let post = |body: String| {
            let app = &app;
            async move {
                let r = app.http.post(app.url("/api/v1/events")).bearer_auth(PLATFORM_KEY)
                    .header("content-type", "application/json").body(body).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let (status, answer) = post(event.clone()).await;
        assert_eq!((status, &answer["deliveries"]), (202, &json!(0)), "not enabled yet: {answer}");
        enable(&app, &key, "app-1").await;
        let (status, answer) = post(event.clone()).await;
        assert_eq!((status, &answer["deliveries"]), (202, &json!(1)), "{answer}");

        let got = receiver.next().await;
        let text = String::from_utf8(got.body.to_vec()).unwrap();
        assert!(text.ends_with(&format!(r#""payload":{payload}}}"#)), "the payload byte for byte: {text}");
        let body = got.json();
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6, "{body}");
        assert_eq!(body["webhook_id"], id.as_str());
        assert_eq!(body["secret_key"], "laudla991");
        assert_eq!(body["action"], "incoming_chat");
        assert_eq!(body["additional_data"], json!({
            "chat_properties": {"source": {"client_id": "app-9"}},
            "chat_presence_user_ids": ["a@x", "c-1", "bot-1"]
        }));
        let org = body["organization_id"].as_str().unwrap().to_string();
        assert_eq!(org.len(), 36, "{org}");
        assert!(!text.contains("source_client_id") && !text.contains("bots"), "the context is never sent on");

        // The delivery is logged like a v2 one, its event named by its action.
        let deliveries = app.wait_deliveries(&key, &id, |d| d.len() == 1 && d[0]["state"] == "delivered").await;
        assert_eq!(deliveries[0]["event_type"], "incoming_chat");
        // The license's organization id, shown to the platform, which may set its own.
        let (status, license) = app.get(PLATFORM_KEY, "/api/v1/licenses/1025707").await;
        assert_eq!(status, 200, "{license}");
        assert_eq!((&license["license_id"], &license["organization_id"]), (&json!("1025707"), &json!(org)));
        let (_, _) = post(event.clone()).await;
        assert_eq!(receiver.next().await.json()["organization_id"], org.as_str());
        // One PATCH may set both the organization id and the retention.
        let (status, license) = app.patch(PLATFORM_KEY, "/api/v1/licenses/1025707", &json!({"organization_id": "org-42", "retention": "7d"})).await;
        assert_eq!(status, 200, "{license}");
        assert_eq!((&license["organization_id"], &license["retention_seconds"]), (&json!("org-42"), &json!(7 * 86_400)));
        let (status, body) = app.patch(PLATFORM_KEY, "/api/v1/licenses/1025707", &json!({"organization_id": "a b"})).await;
        assert_eq!((status, &body["error"]["field"]), (400, &json!("organization_id")));
        assert_eq!(app.get(PLATFORM_KEY, "/api/v1/licenses/404").await.0, 404);
        let (_, _) = post(event.clone()).await;
        assert_eq!(receiver.next().await.json()["organization_id"], "org-42");

        // Bad input: a 400 naming the key.
        for (event, field) in [
            (json!({"action": "incoming_chatt", "license_id": "1025707", "payload": {}}), "action"),
            (json!({"action": "incoming_chat", "license_id": "1025707", "payload": {}}), "payload.chat"),
            (json!({"action": "incoming_chat", "license_id": "1025707", "payload": {"chat": {}, "chats": 1}}), "payload.chats"),
            (json!({"action": "incoming_chat", "license_id": "1025707"}), "payload"),
            (json!({"action": "incoming_chat", "license_id": "1025707", "payload": {"chat": {}}, "context": {"who": 1}}), "context.who"),
            (json!({"action": "incoming_chat", "license_id": "1025707", "payload": {"chat": {}}, "event_type": "chat_started"}), "event_type"),
        ] {
            let (status, body) = app.ingest(&event).await;
            assert_eq!(status, 400, "{event}: {body}");
            assert_eq!(body["error"]["field"], field, "{body}");
        }
        let (status, _) = app.ingest(&v3_event("404404", "incoming_chat", json!({"chat": {}}), json!({}))).await;
        assert_eq!(status, 404);

        // A batch mixes v2 and v3 events, answering each in order.
        let (status, body) = app.post_platform("/api/v1/events/batch", &json!([
            v3_event("1025707", "incoming_chat", json!({"chat": {"id": "C2"}}), json!({})),
            chat_started("1025707"),
            v3_event("1025707", "incoming_chat", json!({}), json!({})),
        ])).await;
        assert_eq!(status, 200, "{body}");
        let statuses: Vec<_> = body["results"].as_array().unwrap().iter().map(|r| r["status"].clone()).collect();
        assert_eq!(statuses, [json!(202), json!(202), json!(400)], "{body}");
        assert_eq!(body["results"][0]["deliveries"], 1);
        assert_eq!(body["results"][2]["error"]["field"], "[2].payload.chat");
        let batched = receiver.next().await.json();
        assert_eq!(batched["payload"], json!({"chat": {"id": "C2"}}));
        assert_eq!(batched["additional_data"], json!({}), "nothing known, nothing sent");
    }

    async fn filters_and_enablement_decide_which_webhooks_get_an_event() {
        let app = spawn_app().await;
        let key = app.create_license("7").await;
        let url = "https://hooks.example.com/never-reached";
        let with_filters = |action: &str, owner: &str, filters: Value| {
            let mut r = registration(action, owner, url);
            r["filters"] = filters;
            r
        };
        for (owner, filters) in [
            ("author-customer", json!({"author_type": "customer"})),
            ("source-mine", json!({"source_type": ["my_client"]})),
            ("source-system", json!({"source_type": ["system"]})),
            ("presence-a", json!({"chat_presence": {"user_ids": {"values": ["a@x"]}}})),
            ("presence-not-a", json!({"chat_presence": {"user_ids": {"exclude_values": ["a@x"]}}})),
            ("my-bots", json!({"chat_presence": {"my_bots": true}})),
            ("my-chats", json!({"only_my_chats": true})),
        ] {
            register(&app, &key, with_filters("incoming_event", owner, filters)).await;
            enable(&app, &key, owner).await;
        }
        let payload = json!({"chat_id": "C", "thread_id": "T", "event": {"type": "message"}});
        let event = |context: Value| v3_event("7", "incoming_event", payload.clone(), context);
        // Nothing known: only the filters that need nothing pass (system source).
        assert_eq!(delivered_to(&app, &event(json!({}))).await, 1);
        // A customer's message from source-mine's client in a chat where a@x
        // and my-bots' bot are, started by my-chats' client.
        let rich = json!({"author_type": "customer", "source_client_id": "source-mine",
            "chat_presence": {"user_ids": ["a@x"], "bots": [{"id": "b1", "owner_client_id": "my-bots"}]},
            "chat_properties": {"source": {"client_id": "my-chats"}}});
        // author-customer, source-mine, presence-a, my-bots, my-chats.
        assert_eq!(delivered_to(&app, &event(rich)).await, 5);
        let agent = json!({"author_type": "agent", "chat_presence": {"user_ids": ["b@x"]}});
        // source-system, presence-not-a.
        assert_eq!(delivered_to(&app, &event(agent)).await, 2);

        // License webhooks fire only while their owner enabled them.
        let (s, _) = call(&app, Some(&key), "3.6", "disable_license_webhooks", json!({"owner_client_id": "source-system"})).await;
        assert_eq!(s, 200);
        assert_eq!(delivered_to(&app, &event(json!({}))).await, 0);

        // agent_ids on routing_status_set, from the payload.
        register(&app, &key, with_filters("routing_status_set", "routing", json!({"agent_ids": ["a@x"]}))).await;
        enable(&app, &key, "routing").await;
        let status = |agent: &str| v3_event("7", "routing_status_set", json!({"agent_id": agent, "status": "accepting_chats"}), json!({}));
        assert_eq!(delivered_to(&app, &status("a@x")).await, 1);
        assert_eq!(delivered_to(&app, &status("b@x")).await, 0);

        // A bot webhook fires when one of its owner's bots is in the chat,
        // switch or not.
        let mut bot = registration("chat_deactivated", "bot-app", url);
        bot["type"] = json!("bot");
        register(&app, &key, bot).await;
        let deactivated = |context: Value| v3_event("7", "chat_deactivated", json!({"chat_id": "C", "thread_id": "T"}), context);
        assert_eq!(delivered_to(&app, &deactivated(json!({}))).await, 0);
        let with_bot = json!({"chat_presence": {"bots": [{"id": "b", "owner_client_id": "bot-app"}]}});
        assert_eq!(delivered_to(&app, &deactivated(with_bot)).await, 1);
    }

    async fn v3_deliveries_are_retried_and_redelivered_like_v2() {
        let app = spawn_app().await;
        let key = app.create_license("9").await;
        let mut receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(500, "boom")]);
        let id = register(&app, &key, registration("thread_tagged", "app", &receiver.url("/t"))).await;
        enable(&app, &key, "app").await;
        app.ingest_accepted(&v3_event("9", "thread_tagged", json!({"chat_id": "C", "thread_id": "T", "tag": "sales"}), json!({}))).await;
        let first = receiver.next().await.body;
        let second = receiver.next().await.body;
        assert_eq!(first, second, "a retry sends the same body");
        let deliveries = app.wait_deliveries(&key, &id, |d| d.len() == 1 && d[0]["state"] == "delivered").await;
        assert_eq!(deliveries[0]["attempts"].as_array().unwrap().len(), 2);
        let delivery = deliveries[0]["id"].as_str().unwrap();
        let (status, _) = app.post(&key, &format!("/api/v1/deliveries/{delivery}/redeliver")).await;
        assert_eq!(status, 202);
        assert_eq!(receiver.next().await.body, first);
        // Unregistered, it gets nothing more.
        let (status, _) = call(&app, Some(&key), "3.6", "unregister_webhook", json!({"id": id, "owner_client_id": "app"})).await;
        assert_eq!(status, 200);
        assert_eq!(delivered_to(&app, &v3_event("9", "thread_tagged", json!({"chat_id": "C", "thread_id": "T", "tag": "x"}), json!({}))).await, 0);
    }

    async fn v3_deliveries_follow_their_own_retry_schedule_when_set() {
        let app = spawn_app_with(|s| s.delivery.v3_retry_schedule = vec![Duration::from_millis(100)]).await;
        let key = app.create_license("9").await;
        let receiver = TestReceiver::start().await;
        receiver.script([Reply::Status(500, "boom"), Reply::Status(500, "boom"), Reply::Status(500, "boom")]);
        let id = register(&app, &key, registration("thread_tagged", "app", &receiver.url("/t"))).await;
        enable(&app, &key, "app").await;
        app.ingest_accepted(&v3_event("9", "thread_tagged", json!({"chat_id": "C", "thread_id": "T", "tag": "x"}), json!({}))).await;
        // One retry (v3's schedule), where v2's schedule here makes two.
        let deliveries = app.wait_deliveries(&key, &id, |d| d.len() == 1 && d[0]["state"] == "failed").await;
        assert_eq!(deliveries[0]["attempts"].as_array().unwrap().len(), 2);
    }

    async fn the_web_app_shows_v3_webhooks_by_client_id_and_switches_them() {
        let app = spawn_app().await;
        let key = app.create_license("1025707").await;
        let mut with_filter = registration("incoming_event", "app-<b>", "https://hooks.example.com/e");
        with_filter["filters"] = json!({"author_type": "customer"});
        let a = register(&app, &key, with_filter).await;
        register(&app, &key, registration("incoming_chat", "app-2", "https://u:pw@hooks.example.com/c")).await;

        let mut b = crate::web::Browser::new(&app);
        b.sign_in("1025707", &key).await;
        let page = b.get("/ui/v3-webhooks").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Client ID <code>app-&lt;b&gt;</code>"), "{}", page.body);
        assert!(page.body.contains("Client ID <code>app-2</code>"));
        assert!(page.body.contains("license webhooks off"));
        assert!(page.body.contains("&quot;author_type&quot;:&quot;customer&quot;"));
        assert!(page.body.contains("https://u:****@hooks.example.com/c"));
        assert!(!page.body.contains("laudla991lamda0pnoaa0"), "secret keys are never shown");

        let csrf = b.csrf("/ui/v3-webhooks").await;
        let r = b.post("/ui/v3-webhooks/switch", &[("csrf", &csrf), ("owner_client_id", "app-<b>"), ("enabled", "true")]).await;
        assert_eq!(r.status, 303);
        let (_, state) = call(&app, Some(&key), "3.6", "get_license_webhooks_state", json!({"owner_client_id": "app-<b>"})).await;
        assert_eq!(state, json!({"license_webhooks_enabled": true}));
        assert!(b.get("/ui/v3-webhooks").await.body.contains("license webhooks on"));
        let r = b.post("/ui/v3-webhooks/switch", &[("csrf", "forged"), ("owner_client_id", "app-2"), ("enabled", "true")]).await;
        assert_eq!(r.status, 403);

        // A v3 delivery's page: its webhook, the body with secret_key masked, redelivery.
        app.ingest_accepted(&v3_event("1025707", "incoming_event",
            json!({"chat_id": "C", "thread_id": "T"}), json!({"author_type": "customer"}))).await;
        let deliveries = app.wait_deliveries(&key, &a, |d| d.len() == 1).await;
        let page = b.get(&format!("/ui/deliveries/{}", deliveries[0]["id"].as_str().unwrap())).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("https://hooks.example.com/e") && page.body.contains("Redeliver"), "{}", page.body);
        assert!(page.body.contains("****") && !page.body.contains("laudla991lamda0pnoaa0"), "{}", page.body);

        let r = b.post(&format!("/ui/v3-webhooks/{a}/unregister"), &[("csrf", &csrf), ("owner_client_id", "app-<b>")]).await;
        assert_eq!(r.status, 303);
        let page = b.get("/ui/v3-webhooks").await;
        assert!(!page.body.contains("app-&lt;b&gt;") && page.body.contains("app-2"));
    }

    async fn a_v3_webhook_with_a_signing_secret_is_signed_with_standard_webhooks() {
        let app = spawn_app().await;
        let key = app.create_license("9").await;
        let mut receiver = TestReceiver::start().await;
        let id = register(&app, &key, registration("tag_created", "app", &receiver.url("/t"))).await;
        enable(&app, &key, "app").await;
        let (status, secret) = app.post(&key, &format!("/api/v1/webhooks/{id}/secret")).await;
        assert_eq!(status, 200, "{secret}");
        let secret = secret["secret"].as_str().unwrap().to_string();
        app.ingest_accepted(&v3_event("9", "tag_created", hookwire_livechat::v3::sample::payload(
            hookwire_livechat::v3::Action::TagCreated, true), json!({}))).await;
        let got = receiver.next().await;
        clients::standardwebhooks_verifies(&secret, &got).expect("the published library verifies it");
        assert_eq!(got.json().as_object().unwrap().len(), 6, "signing adds headers, never a key");
    }
}
