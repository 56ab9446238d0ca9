//! A `register_webhook` request, checked: the action against the version's
//! catalog, the filters and additional data against the action.

use super::{Action, AdditionalData, AdditionalDataSet, Filters, Version};
use crate::{TargetUrl, ValidationError};
use serde_json::{Map, Value};

/// The longest `url` LiveChat accepts.
pub const MAX_URL_LEN: usize = 500;
/// The longest `secret_key`, `owner_client_id` and `description` hookwire keeps.
pub const MAX_SECRET_KEY_LEN: usize = 256;
pub const MAX_CLIENT_ID_LEN: usize = 128;
pub const MAX_DESCRIPTION_LEN: usize = 1000;

/// `type`: whom a webhook is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookKind {
    /// Fires for the license while its owner's license webhooks are enabled.
    License,
    /// Fires for events concerning the owner's bots.
    Bot,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::License => "license",
            WebhookKind::Bot => "bot",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "license" => Some(WebhookKind::License),
            "bot" => Some(WebhookKind::Bot),
            _ => None,
        }
    }
}

/// A registration that passed every check.
#[derive(Debug, Clone)]
pub struct Registration {
    pub action: Action,
    /// In the clear: the service seals it before the store sees it.
    pub secret_key: String,
    pub url: TargetUrl,
    pub kind: WebhookKind,
    pub owner_client_id: String,
    pub description: Option<String>,
    pub additional_data: AdditionalDataSet,
    pub filters: Filters,
}

const KEYS: [&str; 8] = [
    "action",
    "secret_key",
    "url",
    "type",
    "owner_client_id",
    "description",
    "additional_data",
    "filters",
];

/// A required, non-empty string field of at most `max` characters.
pub fn required_string(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<String, ValidationError> {
    match body.get(key) {
        None | Some(Value::Null) => Err(ValidationError::new(key, "is required")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ValidationError::new(key, "must not be empty"))
        }
        Some(Value::String(s)) if s.chars().count() > max => Err(ValidationError::new(
            key,
            format!("must be at most {max} characters"),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ValidationError::new(key, "must be a string")),
    }
}

/// `owner_client_id`, which every webhook method but `list_webhook_names` needs.
pub fn owner_client_id(body: &Map<String, Value>) -> Result<String, ValidationError> {
    required_string(body, "owner_client_id", MAX_CLIENT_ID_LEN)
}

impl Registration {
    /// Checks a `register_webhook` body for `version`.
    pub fn parse(version: Version, body: &Map<String, Value>) -> Result<Self, ValidationError> {
        if let Some(k) = body.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(ValidationError::new(
                k.as_str(),
                format!(
                    "unknown parameter; register_webhook takes {}",
                    KEYS.join(", ")
                ),
            ));
        }
        let action: Action = required_string(body, "action", 64)?.parse()?;
        if !action.in_version(version) {
            return Err(ValidationError::new(
                "action",
                format!("{action} is not a webhook of version {version}"),
            ));
        }
        let secret_key = required_string(body, "secret_key", MAX_SECRET_KEY_LEN)?;
        let url_text = required_string(body, "url", MAX_URL_LEN)?;
        let url =
            TargetUrl::parse(&url_text).map_err(|e| ValidationError::new("url", e.message))?;
        let kind_text = required_string(body, "type", 16)?;
        let kind = WebhookKind::parse(&kind_text)
            .ok_or_else(|| ValidationError::new("type", "must be \"license\" or \"bot\""))?;
        let owner_client_id = owner_client_id(body)?;
        let description = match body.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() > MAX_DESCRIPTION_LEN => {
                return Err(ValidationError::new(
                    "description",
                    format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
                ))
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ValidationError::new("description", "must be a string")),
        };
        let additional_data = match body.get("additional_data") {
            None | Some(Value::Null) => AdditionalDataSet::default(),
            Some(v) => additional_data(action, v)?,
        };
        let filters = match body.get("filters") {
            None | Some(Value::Null) => Filters::default(),
            Some(v) => Filters::parse(action, v)?,
        };
        Ok(Registration {
            action,
            secret_key,
            url,
            kind,
            owner_client_id,
            description,
            additional_data,
            filters,
        })
    }
}

fn additional_data(action: Action, v: &Value) -> Result<AdditionalDataSet, ValidationError> {
    let names: Vec<String> = serde_json::from_value(v.clone())
        .map_err(|_| ValidationError::new("additional_data", "must be a list of strings"))?;
    let mut set = AdditionalDataSet::default();
    for name in names {
        let kind = AdditionalData::ALL
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| {
                ValidationError::new(
                    "additional_data",
                    format!("unknown additional data {name:?}; there are chat_properties and chat_presence_user_ids"),
                )
            })?;
        if !action.additional_data().contains(&kind) {
            return Err(ValidationError::new(
                "additional_data",
                format!("{action} does not support additional data {name}"),
            ));
        }
        set.insert(kind);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn good() -> Value {
        json!({"action": "incoming_chat", "secret_key": "s3cret", "url": "https://hooks.example.com/lc",
               "type": "license", "owner_client_id": "app-1"})
    }

    #[test]
    fn a_registration_is_checked_field_by_field() {
        let r = Registration::parse(Version::V3_6, &body(good())).unwrap();
        assert_eq!(r.action, Action::IncomingChat);
        assert_eq!(r.kind, WebhookKind::License);
        assert!(r.filters.is_empty());

        for (key, value, field) in [
            ("action", json!("chat_started"), "action"),
            ("type", json!("app"), "type"),
            ("url", json!("ftp://x"), "url"),
            (
                "url",
                json!(format!("https://x.io/{}", "a".repeat(500))),
                "url",
            ),
            ("secret_key", json!(""), "secret_key"),
            ("additional_data", json!(["visitor"]), "additional_data"),
            (
                "filters",
                json!({"author_type": "agent"}),
                "filters.author_type",
            ),
            ("extra", json!(1), "extra"),
        ] {
            let mut b = good();
            b[key] = value;
            let err = Registration::parse(Version::V3_6, &body(b)).unwrap_err();
            assert_eq!(err.field, field, "{key}: {err}");
        }
        let mut b = good();
        b.as_object_mut().unwrap().remove("owner_client_id");
        assert_eq!(
            Registration::parse(Version::V3_6, &body(b))
                .unwrap_err()
                .field,
            "owner_client_id"
        );
        let mut b = good();
        b["action"] = json!("incoming_customer");
        assert!(Registration::parse(Version::V3_6, &body(b.clone())).is_err());
        assert!(Registration::parse(Version::V3_5, &body(b)).is_ok());
    }
}
