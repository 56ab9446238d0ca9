//! The REST call-back: custom visitor details pushed with a webhook's token.

use crate::support::*;
use hookwire::config::DatabaseUrl;
use hookwire::secret::hash_secret;
use serde_json::{json, Value};
use std::time::Duration;

const VISITOR: &str = "S1354547427.0c151b0e1b";

/// Sets up a license and a chat_started webhook, reports one chat, and
/// answers the API key and the token the receiver got.
async fn token_from_a_webhook(app: &TestApp, license: &str) -> (String, String) {
    let key = app.create_license(license).await;
    let mut receiver = TestReceiver::start().await;
    app.create_webhook(&key, "chat_started", &["visitor"], &receiver.url("/"))
        .await;
    app.ingest(&chat_started(license)).await;
    let token = receiver.next().await.json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    (key, token)
}

/// Rewrites the database (hookwire stopped) the way hookwire kept a token
/// before tokens named their event: the token was the 32 hex characters of
/// MAC alone, its hash was stored in `events.token_hash` and indexed by
/// `events_by_token`, and the schema version was the one before that change
/// (on SQLite also without what later versions added and cannot add twice).
fn store_token_the_old_way(database: &DatabaseUrl, unique_id: &str, old_token: &str) {
    let hash = hash_secret(old_token);
    match database {
        DatabaseUrl::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            c.execute_batch(
                "DROP INDEX events_by_legacy_token;
                 CREATE INDEX events_by_token ON events (token_hash);
                 DROP INDEX deliveries_first_attempt_by_license;
                 ALTER TABLE deliveries DROP COLUMN first_at;
                 ALTER TABLE deliveries DROP COLUMN first_status;
                 ALTER TABLE deliveries DROP COLUMN first_latency_ms;
                 ALTER TABLE deliveries DROP COLUMN first_error;
                 ALTER TABLE deliveries DROP COLUMN first_excerpt;
                 DROP INDEX webhooks_v3_by_owner;
                 ALTER TABLE webhooks DROP COLUMN v3_version;
                 ALTER TABLE webhooks DROP COLUMN v3_kind;
                 ALTER TABLE webhooks DROP COLUMN v3_owner_client_id;
                 ALTER TABLE webhooks DROP COLUMN v3_secret_key;
                 ALTER TABLE webhooks DROP COLUMN v3_filters;
                 ALTER TABLE webhooks DROP COLUMN v3_description;
                 ALTER TABLE events DROP COLUMN v3_payload;
                 ALTER TABLE events DROP COLUMN v3_extra;
                 DROP INDEX deliveries_line;
                 DROP INDEX deliveries_line_failed;
                 ALTER TABLE webhooks DROP COLUMN ordered_since;
                 ALTER TABLE deliveries DROP COLUMN order_key;
                 ALTER TABLE webhooks DROP COLUMN v3_log_filtered;
                 ALTER TABLE deliveries DROP COLUMN filtered_by;
                 PRAGMA user_version = 5;",
            )
            .unwrap();
            let n = c
                .execute(
                    "UPDATE events SET token_hash = ?1 WHERE unique_id = ?2",
                    [&hash, unique_id],
                )
                .unwrap();
            assert_eq!(n, 1);
        }
        DatabaseUrl::Postgres(url) => {
            let (url, unique_id) = (url.expose().to_string(), unique_id.to_string());
            // The caller is async; this runs on a runtime of its own.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    tokio::spawn(conn);
                    let n = c
                        .execute(
                            "UPDATE events SET token_hash = $1 WHERE unique_id = $2",
                            &[&hash, &unique_id],
                        )
                        .await
                        .unwrap();
                    assert_eq!(n, 1);
                    c.batch_execute(
                        "DROP INDEX events_by_legacy_token;
                         CREATE INDEX events_by_token ON events (token_hash);
                         ALTER TABLE events ALTER COLUMN token_hash SET NOT NULL;
                         UPDATE hookwire_schema SET version = 4;",
                    )
                    .await
                    .unwrap();
                })
            })
            .join()
            .unwrap();
        }
    }
}

async fn post_form(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .header("X-API-Version", "2")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post_json(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

crate::backend_tests! {
    async fn details_round_trip_in_both_body_formats() {
        let app = spawn_app().await;
        let (key, token) = token_from_a_webhook(&app, "1025707").await;

        // Byte for byte what PHP's http_build_query writes for the seed's script.
        let form = format!(
            "license_id=1025707&token={token}&id=my-integration&icon=example.com%2Fico-64.png\
             &fields%5B0%5D%5Bname%5D=Age&fields%5B0%5D%5Bvalue%5D=36\
             &fields%5B1%5D%5Bname%5D=Position&fields%5B1%5D%5Bvalue%5D=CEO"
        );
        let (status, body) = post_form(&app, &format!("/visitors/{VISITOR}/details"), &form).await;
        assert_eq!(
            (status, &body),
            (200, &json!({"result": "Visitor details added"}))
        );

        let (status, body) = post_json(
            &app,
            &format!("/v2/visitors/{VISITOR}/details"),
            &json!({
                "license_id": 1025707, "token": token, "id": "crm",
                "fields": [{"name": "Plan", "value": 99, "url": "https://crm.example.com/c/1"}]
            }),
        )
        .await;
        assert_eq!(status, 200, "{body}");

        let (status, seen) = app.get(&key, &format!("/visitors/{VISITOR}/details")).await;
        assert_eq!(status, 200);
        assert_eq!(seen["visitor_id"], VISITOR);
        assert_eq!(
            seen["email"], "mary.brown@email.com",
            "the visitor is known from the event"
        );
        let sets = seen["details"].as_array().unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0]["id"], "my-integration");
        assert_eq!(sets[0]["icon"], "example.com/ico-64.png");
        assert_eq!(
            sets[0]["fields"],
            json!([{"name": "Age", "value": "36"}, {"name": "Position", "value": "CEO"}])
        );
        assert_eq!(
            sets[1]["fields"],
            json!([{"name": "Plan", "value": 99, "url": "https://crm.example.com/c/1"}])
        );
        assert!(sets[0]["updated_at"].as_str().unwrap().ends_with('Z'));

        // The same id again replaces that set; the other stays.
        let (status, _) = post_json(&app, &format!("/visitors/{VISITOR}/details"), &json!({
            "license_id": "1025707", "token": token, "id": "my-integration", "fields": [{"name": "Age", "value": "37"}]
        })).await;
        assert_eq!(status, 200);
        let (_, seen) = app
            .get(&key, &format!("/v2/visitors/{VISITOR}/details"))
            .await;
        let sets = seen["details"].as_array().unwrap();
        assert_eq!(sets.len(), 2);
        let mine = sets.iter().find(|s| s["id"] == "my-integration").unwrap();
        assert_eq!(mine["fields"], json!([{"name": "Age", "value": "37"}]));
        assert_eq!(mine["icon"], Value::Null);

        // Details for a visitor no event has mentioned yet are kept too.
        let (status, _) = post_json(&app, "/visitors/NEW-VISITOR/details", &json!({
            "license_id": "1025707", "token": token, "id": "x", "fields": [{"name": "a", "value": "b"}]
        })).await;
        assert_eq!(status, 200);
        let (status, seen) = app.get(&key, "/visitors/NEW-VISITOR/details").await;
        assert_eq!((status, seen["name"].clone()), (200, Value::Null));

        let (status, list) = app.get(&key, "/api/v1/visitors").await;
        assert_eq!(status, 200);
        assert_eq!(list["visitors"][0]["visitor_id"], VISITOR);
        assert_eq!(list["visitors"][0]["details"].as_array().unwrap().len(), 2);
    }

    async fn bad_arguments_are_400_and_bad_tokens_401() {
        let app = spawn_app().await;
        let (key, token) = token_from_a_webhook(&app, "100").await;
        let (other_key, other_token) = token_from_a_webhook(&app, "200").await;
        let path = format!("/visitors/{VISITOR}/details");
        let good = json!({"license_id": "100", "token": token, "id": "set", "fields": [{"name": "n", "value": "v"}]});
        let with = |k: &str, v: Value| {
            let mut b = good.clone();
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v;
            }
            b
        };
        let bad_args = [
            (with("id", Value::Null), "id"),
            (with("id", json!("two words")), "id"),
            (with("icon", json!("https://example.com/i.png")), "icon"),
            (with("fields", Value::Null), "fields"),
            (with("fields", json!([])), "fields"),
            (with("fields", json!([{"value": "v"}])), "fields[0].name"),
            (with("fields", json!([{"name": "n"}])), "fields[0].value"),
            (
                with(
                    "fields",
                    json!([{"name": "n", "value": "v", "url": "javascript:alert(1)"}]),
                ),
                "fields[0].url",
            ),
            (with("license_id", Value::Null), "license_id"),
            (with("token", Value::Null), "token"),
        ];
        for (body, field) in bad_args {
            let (status, answer) = post_json(&app, &path, &body).await;
            assert_eq!(status, 400, "{body} -> {answer}");
            assert_eq!(answer["field"], field, "{body} -> {answer}");
            assert!(livechat_client_message(&answer).contains(field), "{answer}");
        }
        let (status, answer) =
            post_form(&app, &path, "license_id=100&token=x&fields[0][name=broken").await;
        assert_eq!(status, 400, "{answer}");

        let unauthorized = [
            (
                with("token", json!("0123456789abcdef0123456789abcdef")),
                "invalid token",
            ),
            // A token is valid only for its own license.
            (with("token", json!(other_token)), "another license"),
            (with("license_id", json!("200")), "another license"),
        ];
        for (body, message) in unauthorized {
            let (status, answer) = post_json(&app, &path, &body).await;
            assert_eq!(status, 401, "{body} -> {answer}");
            assert!(livechat_client_message(&answer).contains(message), "{answer}");
        }
        // Nothing was stored by any rejected request.
        assert_eq!(app.get(&key, &path).await.1["details"], json!([]));

        // Reading needs the license key, and one license cannot read another's visitors.
        assert_eq!(
            app.http.get(app.url(&path)).send().await.unwrap().status(),
            401
        );
        let (status, _) = post_json(&app, &path, &good).await;
        assert_eq!(status, 200);
        assert_eq!(app.get(&other_key, &path).await.1["details"], json!([]));
        assert_eq!(
            app.get(&other_key, "/visitors/never-seen/details").await.0,
            404
        );
    }

    async fn tokens_expire() {
        // A token that lives a millisecond has expired by the time the test
        // holds it; the wait only covers a clock that has not moved on yet.
        let app = spawn_app_with(|s| s.token_ttl = Duration::from_millis(1)).await;
        let (_, token) = token_from_a_webhook(&app, "300").await;
        let details = json!({
            "license_id": "300", "token": token, "id": "s", "fields": [{"name": "n", "value": "v"}]
        });
        let (status, answer) = eventually("the token to expire", Duration::from_secs(10), async || {
            match post_json(&app, "/visitors/V/details", &details).await {
                (401, answer) => Ok((401, answer)),
                (status, answer) => Err(format!("{status} {answer}")),
            }
        })
        .await;
        assert_eq!(status, 401);
        assert!(livechat_client_message(&answer).contains("expired"), "{answer}");
    }

    async fn a_batch_tells_of_its_visitors_as_one_event_after_another() {
        // PostgreSQL folds a batch's visitors into one upsert: a later event
        // without a name or email must not erase what an earlier one gave.
        let app = spawn_app().await;
        let key = app.create_license("301").await;
        let queued = |visitor: Value| json!({"event_type": "visitor_queued", "license_id": "301", "visitor": visitor});
        let batch = json!([
            queued(json!({"id": "V1", "name": "Ann"})),
            queued(json!({"id": "V2", "email": "bo@example.com"})),
            queued(json!({"id": "V1", "email": "ann@example.com"})),
            queued(json!({"id": "V1"})),
            queued(json!({"id": "V2", "name": "Bo", "email": "bo@example.org"})),
        ]);
        let (status, body) = app.post_platform("/api/v1/events/batch", &batch).await;
        assert_eq!(status, 200, "{body}");
        let (_, v1) = app.get(&key, "/visitors/V1/details").await;
        assert_eq!((v1["name"].clone(), v1["email"].clone()), (json!("Ann"), json!("ann@example.com")));
        let (_, v2) = app.get(&key, "/visitors/V2/details").await;
        assert_eq!((v2["name"].clone(), v2["email"].clone()), (json!("Bo"), json!("bo@example.org")));
    }

    async fn tokens_name_their_event_and_forged_ones_are_refused() {
        let app = spawn_app().await;
        let key = app.create_license("400").await;
        let mut receiver = TestReceiver::start().await;
        app.create_webhook(&key, "chat_started", &["visitor"], &receiver.url("/"))
            .await;
        let event_id = app.ingest_accepted(&chat_started("400")).await;
        let body = receiver.next().await.json();
        let token = body["token"].as_str().unwrap();
        assert_eq!(body["event_unique_id"], event_id.as_str());
        assert_eq!(token.len(), 32, "LiveChat's shape: {token}");
        assert!(
            token.starts_with(&event_id[..12]),
            "{token} starts with the time of {event_id}"
        );

        let path = format!("/visitors/{VISITOR}/details");
        let with_token = |t: &str| json!({"license_id": "400", "token": t, "id": "s", "fields": [{"name": "n", "value": "v"}]});
        let flip = |c: char| if c == '0' { '1' } else { '0' };
        let mut wrong_mac = token[..31].to_string();
        wrong_mac.push(flip(token.chars().last().unwrap()));
        let mut wrong_event = String::from(flip(token.chars().next().unwrap()));
        wrong_event.push_str(&token[1..]);
        for forged in [wrong_mac, wrong_event, token[..31].to_string(), format!("{token}0"), token.to_uppercase()] {
            let (status, answer) = post_json(&app, &path, &with_token(&forged)).await;
            assert_eq!(status, 401, "{forged} -> {answer}");
            assert!(livechat_client_message(&answer).contains("invalid token"), "{answer}");
        }
        assert_eq!(app.get(&key, &path).await.1["details"], json!([]));
        let (status, answer) = post_json(&app, &path, &with_token(token)).await;
        assert_eq!(status, 200, "{answer}");
    }

    async fn tokens_issued_before_the_upgrade_still_work() {
        let app = spawn_app().await;
        let key = app.create_license("500").await;
        let mut receiver = TestReceiver::start().await;
        app.create_webhook(&key, "chat_started", &["visitor"], &receiver.url("/"))
            .await;
        let event_id = app.ingest_accepted(&chat_started("500")).await;
        let token = receiver.next().await.json()["token"].as_str().unwrap().to_string();
        // A token of the old kind (random-looking 32 hex, found by its
        // stored hash): the one in LiveChat's documentation.
        let old_token = "27f41c8da685c81a890f9e5f8ce48387".to_string();
        let database = app.database.clone();
        let app = app
            .restart_after(|_| store_token_the_old_way(&database, &event_id, &old_token))
            .await;

        let path = format!("/visitors/{VISITOR}/details");
        for (t, set) in [(&old_token, "old"), (&token, "new")] {
            let (status, answer) = post_json(&app, &path, &json!({
                "license_id": "500", "token": t, "id": set, "fields": [{"name": "n", "value": "v"}]
            })).await;
            assert_eq!(status, 200, "{set} token -> {answer}");
        }
        assert_eq!(app.get(&key, &path).await.1["details"].as_array().unwrap().len(), 2);
        // A 32-hex token nobody was given is still refused.
        let mut unknown = old_token.clone();
        unknown.replace_range(..1, if old_token.starts_with('0') { "1" } else { "0" });
        let (status, _) = post_json(&app, &path, &json!({
            "license_id": "500", "token": unknown, "id": "x", "fields": [{"name": "n", "value": "v"}]
        })).await;
        assert_eq!(status, 401);
    }
}
