//! The `V3Webhooks` part of the store's contract, on both backends, through
//! `dyn Store`: the per-action limit, listing and unregistering by owner,
//! switches per Client ID, organization ids, v3 ingest with its decisions,
//! and stored v3 rows that cannot be read.

use crate::store::{corrupt, open};
use hookwire::secret::{Cipher, Secret};
use hookwire::store::{
    now_millis, DeliveryQuery, EventName, NewV3Event, NewV3Webhook, V3Registered,
};
use hookwire_livechat::v3::{Action, AdditionalDataSet, Context, Filters, Version, WebhookKind};
use hookwire_livechat::TargetUrl;
use serde_json::json;
use serde_json::value::{to_raw_value, RawValue};

fn webhook(id: &str, owner: &str, action: Action, filters: Filters) -> NewV3Webhook {
    let cipher = Cipher::new(&[7; 32]);
    NewV3Webhook {
        id: id.into(),
        license_id: "L".into(),
        version: Version::V3_6,
        action,
        kind: WebhookKind::License,
        owner_client_id: owner.into(),
        url: cipher.seal_url(&TargetUrl::parse("https://hooks.example.com/x").unwrap()),
        secret_key: cipher.seal_v3_secret_key(&Secret::new("sk")),
        description: None,
        additional_data: AdditionalDataSet::from_bits(1),
        filters,
        created_at: now_millis(),
    }
}

fn event(id: &str, context: serde_json::Value, key: Option<&str>) -> NewV3Event {
    let raw: Box<RawValue> = to_raw_value(&context).unwrap();
    NewV3Event {
        unique_id: id.into(),
        license_id: "L".into(),
        action: Action::IncomingChat,
        payload: RawValue::from_string(r#"{"chat":{"id":"C"}}"#.into()).unwrap(),
        context: Context::from_json(&raw).unwrap(),
        agent_id: None,
        order_key: Some("C".into()),
        new_organization_id: "org-new".into(),
        idempotency: key.map(|k| (k.to_string(), "hash".to_string())),
        received_at: now_millis(),
    }
}

fn accepted(outcome: &hookwire::store::IngestOutcome) -> usize {
    match outcome {
        hookwire::store::IngestOutcome::Accepted { delivery_count, .. } => *delivery_count,
        other => panic!("{other:?}"),
    }
}

crate::backend_tests! {
    async fn v3_webhooks_keep_their_limit_owners_and_switches() {
        let t = open().await;
        let s = t.store.as_ref();
        assert!(matches!(s.register_v3_webhook(webhook("w0", "a", Action::IncomingChat, Filters::default())).await.unwrap(),
            V3Registered::UnknownLicense));
        s.create_license("L", "hash-of-key", 1).await.unwrap();
        for i in 0..3 {
            let got = s.register_v3_webhook(webhook(&format!("w{i}"), "a", Action::IncomingChat, Filters::default())).await.unwrap();
            let V3Registered::Registered(w) = got else { panic!("{got:?}") };
            assert_eq!((w.owner_client_id.as_str(), w.action, w.additional_data.bits()), ("a", Action::IncomingChat, 1));
        }
        assert!(matches!(s.register_v3_webhook(webhook("w3", "a", Action::IncomingChat, Filters::default())).await.unwrap(),
            V3Registered::LimitReached));
        assert!(matches!(s.register_v3_webhook(webhook("w4", "b", Action::IncomingChat, Filters::default())).await.unwrap(),
            V3Registered::Registered(_)));
        assert_eq!(s.list_v3_webhooks("L", Some("a")).await.unwrap().len(), 3);
        assert_eq!(s.list_v3_webhooks("L", None).await.unwrap().len(), 4);
        assert!(s.list_webhooks("L").await.unwrap().is_empty(), "v2's listing holds no v3 webhook");
        assert!(!s.unregister_v3_webhook("L", "b", "w0", now_millis()).await.unwrap());
        assert!(s.unregister_v3_webhook("L", "a", "w0", now_millis()).await.unwrap());
        assert!(matches!(s.register_v3_webhook(webhook("w5", "a", Action::IncomingChat, Filters::default())).await.unwrap(),
            V3Registered::Registered(_)), "room again after unregistering");

        assert!(!s.license_webhooks_enabled("L", "a").await.unwrap());
        s.set_license_webhooks_enabled("L", "a", true, 1).await.unwrap();
        assert!(s.license_webhooks_enabled("L", "a").await.unwrap());
        assert!(!s.license_webhooks_enabled("L", "b").await.unwrap());

        assert_eq!(s.organization_id("L", "first").await.unwrap().as_deref(), Some("first"));
        assert_eq!(s.organization_id("L", "second").await.unwrap().as_deref(), Some("first"));
        assert!(s.set_organization_id("L", "set").await.unwrap());
        assert_eq!(s.organization_id("L", "third").await.unwrap().as_deref(), Some("set"));
        assert!(!s.set_organization_id("nope", "x").await.unwrap());
        assert_eq!(s.organization_id("nope", "x").await.unwrap(), None);
    }

    async fn v3_ingest_decides_in_the_transaction_and_keeps_the_event() {
        let t = open().await;
        let s = t.store.as_ref();
        s.create_license("L", "hash-of-key", 1).await.unwrap();
        let mine: Filters = serde_json::from_value(json!({"source_type": ["my_client"]})).unwrap();
        s.register_v3_webhook(webhook("plain", "a", Action::IncomingChat, Filters::default())).await.unwrap();
        s.register_v3_webhook(webhook("mine", "a", Action::IncomingChat, mine)).await.unwrap();
        s.register_v3_webhook(webhook("off", "b", Action::IncomingChat, Filters::default())).await.unwrap();
        s.set_license_webhooks_enabled("L", "a", true, 1).await.unwrap();

        let out = s.ingest_v3(vec![
            event("e1", json!({}), None),
            event("e2", json!({"source_client_id": "a", "chat_properties": {"x": 1}}), Some("k")),
        ], None).await.unwrap();
        assert_eq!((accepted(&out[0]), accepted(&out[1])), (1, 2));
        let replay = s.ingest_v3(vec![event("e3", json!({}), Some("k"))], None).await.unwrap();
        assert!(matches!(&replay[0], hookwire::store::IngestOutcome::Replayed { delivery_count: 2, .. }), "{replay:?}");

        let listed = s.list_deliveries(DeliveryQuery {
            license_id: "L", webhook_id: Some("mine"), state: None, event_type: None, before: None, limit: 10,
        }).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].event_type, EventName::V3(Action::IncomingChat));
        let (body, bits) = s.delivery_body("L", listed[0].id).await.unwrap().unwrap();
        let v3 = body.v3.expect("a v3 event's body");
        assert_eq!(v3.payload.get(), r#"{"chat":{"id":"C"}}"#);
        assert_eq!(v3.extra.organization_id, "org-new");
        assert_eq!(v3.extra.chat_properties.unwrap().get(), r#"{"x":1}"#);
        assert_eq!(bits.bits(), 1, "the additional data asked for");

        // Stored filters that are not JSON are corrupt, named.
        t.sql("UPDATE webhooks SET v3_filters = '{' WHERE id = 'plain'").await;
        let msg = corrupt(s.ingest_v3(vec![event("e4", json!({}), None)], None).await);
        assert!(msg.starts_with("webhook plain: v3_filters"), "{msg}");
        let msg = corrupt(s.list_v3_webhooks("L", None).await);
        assert!(msg.starts_with("webhook plain: v3_filters"), "{msg}");
    }
}
