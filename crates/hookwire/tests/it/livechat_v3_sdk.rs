//! LiveChat's official Python SDK against hookwire, on both stores: its
//! Configuration API client runs every webhook method over HTTPS (a test
//! certificate trusted through `SSL_CERT_FILE`), and its `parse_webhook`
//! parses every body delivered, for every action of 3.5, 3.6 and 3.7, with
//! every optional payload key present and absent.

use crate::support::*;
use crate::tls::{client_trusting, self_signed, write_pair};
use hookwire::config::TlsFiles;
use hookwire_livechat::v3::{sample, Action, Version};
use serde_json::{json, Value};
use std::time::Duration;

const CONFIGURATION: &str = include_str!("python/lc_sdk_configuration.py");
const PARSE: &str = include_str!("python/lc_sdk_parse.py");

crate::backend_tests! {
    async fn the_official_sdk_registers_and_parses_every_v3_webhook() {
        let certs = tempfile::TempDir::new().unwrap();
        let pair = self_signed();
        let (cert, key_file) = write_pair(certs.path(), &pair);
        let app = spawn_app_with(|s| {
            s.tls = Some(TlsFiles { cert: cert.clone(), key: key_file.clone() });
        })
        .await;
        let https = client_trusting(&pair.0);
        let base = format!("https://{}", app.addr);
        let key = create_license_at(&https, &base, "1025707").await;
        let mut receiver = TestReceiver::start().await;

        let input = json!({"base_url": app.addr.to_string(), "key": key,
                           "receiver": receiver.url(""), "prefix": "sdk"});
        let Some(registered) = lc_sdk::run_lc_sdk(CONFIGURATION, &input, Some(&cert)) else {
            return;
        };
        let registered: Value = serde_json::from_str(&registered.expect("the SDK's configuration calls")).unwrap();
        assert_eq!(registered["3.5"].as_object().unwrap().len(), 39);
        assert_eq!(registered["3.6"].as_object().unwrap().len(), 38);

        // Every action, with and without its optional keys, in one batch;
        // the context fills the additional data the webhooks asked for.
        let context = json!({
            "author_type": "customer", "source_client_id": "sdk-3.6",
            "chat_presence": {"user_ids": ["smith@example.com"], "bots": [{"id": "bot-1", "owner_client_id": "other"}]},
            "chat_properties": {"source": {"client_id": "sdk-3.6"}}
        });
        let mut events = Vec::new();
        for action in Action::ALL {
            for optional in [false, true] {
                events.push(json!({"action": action.as_str(), "license_id": "1025707",
                                   "payload": sample::payload(action, optional), "context": context}));
            }
        }
        let r = https.post(format!("{base}/api/v1/events/batch")).bearer_auth(PLATFORM_KEY)
            .json(&events).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().await.unwrap();
        let expected: usize = Action::ALL
            .iter()
            .map(|a| 2 * Version::ALL.iter().filter(|v| a.in_version(**v)).count())
            .sum();
        let counted: u64 = answer["results"].as_array().unwrap().iter()
            .map(|r| r["deliveries"].as_u64().unwrap_or_else(|| panic!("{r}"))).sum();
        assert_eq!(counted as usize, expected, "{answer}");

        let mut bodies = Vec::with_capacity(expected);
        while bodies.len() < expected {
            let got = tokio::time::timeout(Duration::from_secs(30), receiver.next())
                .await
                .unwrap_or_else(|_| panic!("{} of {expected} bodies arrived", bodies.len()));
            let version = got.uri.path().trim_start_matches('/').to_string();
            let body = String::from_utf8(got.body.to_vec()).unwrap();
            let parsed: Value = serde_json::from_str(&body).unwrap();
            let action: Action = parsed["action"].as_str().unwrap().parse().unwrap();
            let all_keys = action.payload_keys().len();
            let optional = parsed["payload"].as_object().unwrap().len() == all_keys;
            assert_eq!(parsed["webhook_id"], registered[&version][action.as_str()], "{body}");
            if !action.additional_data().is_empty() {
                assert_eq!(parsed["additional_data"]["chat_presence_user_ids"], json!(["smith@example.com", "bot-1"]));
            }
            bodies.push(json!({"version": version, "body": body,
                               "secret_key": format!("secret-{version}"), "optional": optional}));
        }
        let parsed = lc_sdk::run_lc_sdk(PARSE, &Value::Array(bodies), None)
            .expect("the SDK ran before")
            .expect("parse_webhook accepts every body");
        assert_eq!(serde_json::from_str::<Value>(&parsed).unwrap(), json!({"parsed": expected}));
    }
}
