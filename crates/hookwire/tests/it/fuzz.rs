//! Property tests: whatever arrives, the parsers answer (Ok or a validation
//! error) and never panic. Each property runs a few hundred cases, in well
//! under a few seconds.

use hookwire::secret::Cipher;
use hookwire_livechat::details::DetailsRequest;
use hookwire_livechat::{form, IncomingEvent, TargetUrl};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// JSON values shaped like what the parsers look at: known keys, wrong types,
/// deep nesting, odd numbers and strings.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("event_type".to_string()),
        Just("license_id".to_string()),
        Just("chat".to_string()),
        Just("visitor".to_string()),
        Just("pre_chat_survey".to_string()),
        Just("ticket".to_string()),
        Just("tags".to_string()),
        Just("id".to_string()),
        Just("token".to_string()),
        Just("fields".to_string()),
        Just("name".to_string()),
        Just("value".to_string()),
        Just("url".to_string()),
        Just("icon".to_string()),
        Just("email".to_string()),
        "[a-z_]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("chat_started".to_string()),
            Just("chat_changed".to_string()),
            Just("ticket_created".to_string()),
            Just("1025707".to_string()),
            ".{0,40}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn event_parsing_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = IncomingEvent::from_json(&bytes);
    }

    #[test]
    fn event_parsing_never_panics_on_json(value in json_value()) {
        let text = serde_json::to_vec(&value).unwrap();
        if let Ok(event) = IncomingEvent::from_json(&text) {
            // What validates names a license and carries what its type needs.
            prop_assert!(!event.license_id.is_empty());
            prop_assert!(event.event_type.required().is_subset_of(event.carried()));
        }
    }

    #[test]
    fn form_parsing_never_panics(body in "[a-z0-9_\\[\\]=&%+.]{0,200}") {
        if let Ok(value) = form::parse(&body) {
            prop_assert!(value.is_object());
        }
    }

    #[test]
    fn form_parsing_never_panics_on_any_text(body in ".{0,200}") {
        let _ = form::parse(&body);
    }

    #[test]
    fn details_parsing_never_panics(value in json_value()) {
        let _ = DetailsRequest::credentials(&value);
        let _ = DetailsRequest::parse(&value);
    }

    #[test]
    fn details_parsing_never_panics_on_forms(body in "(fields\\[[0-9]{0,3}\\]\\[(name|value|url)\\]|id|icon|token|license_id)=[a-z%0-9]{0,8}(&(fields\\[[0-9a-z]{0,3}\\]\\[(name|value|url)?\\]|id|icon)=[a-z%0-9]{0,8}){0,6}") {
        if let Ok(value) = form::parse(&body) {
            let _ = DetailsRequest::parse(&value);
        }
    }

    #[test]
    fn url_validation_never_panics(input in ".{0,600}") {
        let _ = TargetUrl::parse(&input);
    }

    #[test]
    fn valid_urls_round_trip_and_never_show_their_password(
        input in "(https?|ftp|)(://)?([a-z%0-9]{1,6}(:[a-zA-Z0-9%!$]{0,10})?@)?[a-z0-9.\\[\\]:-]{0,20}(:[0-9]{1,6})?(/[a-z0-9%?=&#]{0,20})?"
    ) {
        if let Ok(url) = TargetUrl::parse(&input) {
            let again = TargetUrl::parse(url.as_stored());
            prop_assert!(again.as_ref().is_ok_and(|a| *a == url), "{input}");
            if url.raw_password().is_some() {
                let masked = url.masked();
                prop_assert!(masked.contains(":****@"), "{masked}");
            }
            // Sealed at rest and opened again, the credentials are the same.
            let cipher = Cipher::new(&[9u8; 32]);
            let stored = cipher.seal_url(&url);
            let reread = TargetUrl::parse_stored(stored.as_stored()).unwrap();
            let opened = cipher.open_url(&reread).unwrap();
            prop_assert_eq!(opened.credentials(), url.credentials());
            prop_assert_eq!(opened.without_credentials(), url.without_credentials());
        }
    }
}
