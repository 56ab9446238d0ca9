//! v3 webhooks' rules, once for both backends: which registered webhooks an
//! event goes to (the license-webhooks switch, bot webhooks, filters), what
//! its deliveries add, and v3 rows read back.

use crate::store::v3_webhooks::{V3Body, V3Extra, V3Webhook};
use crate::store::{Millis, StoreError, StoreResult};
use hookwire_livechat::v3::{
    Action, AdditionalDataSet, Context, Exclusion, Filters, Version, WebhookKind,
};
use hookwire_livechat::TargetUrl;
use serde_json::value::RawValue;

/// What ingest knows of a webhook registered for the event's action.
pub struct Candidate {
    pub kind: WebhookKind,
    pub owner_client_id: String,
    /// As stored (JSON); parsed here.
    pub filters: Option<String>,
    /// The owner's license webhooks are switched on for the license.
    pub license_enabled: bool,
}

/// Whether an event goes to a webhook, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Deliver,
    /// A license webhook whose owner's license webhooks are off.
    LicenseWebhooksDisabled,
    /// A bot webhook, and none of its owner's bots is in the event's chat.
    NoBotOfOwner,
    Filtered(Exclusion),
}

/// Decides one webhook for an event with `context` (and `agent_id`, the
/// payload's, for `agent_ids`). Filters that cannot be read are corrupt.
pub fn decide(
    webhook_id: &str,
    candidate: &Candidate,
    context: &Context,
    agent_id: Option<&str>,
) -> StoreResult<Decision> {
    match candidate.kind {
        WebhookKind::License if !candidate.license_enabled => {
            return Ok(Decision::LicenseWebhooksDisabled)
        }
        WebhookKind::Bot if !context.has_bot_of(&candidate.owner_client_id) => {
            return Ok(Decision::NoBotOfOwner)
        }
        _ => {}
    }
    let filters = filters(webhook_id, candidate.filters.as_deref())?;
    Ok(
        match filters.admits(context, agent_id, &candidate.owner_client_id) {
            Ok(()) => Decision::Deliver,
            Err(why) => Decision::Filtered(why),
        },
    )
}

/// What an event's deliveries add, from its context: the parts
/// `additional_data` may carry, for the webhooks that ask.
pub fn extra(organization_id: String, context: &Context) -> V3Extra {
    V3Extra {
        organization_id,
        chat_properties: context.chat_properties.clone(),
        chat_presence_user_ids: context
            .chat_presence
            .as_ref()
            .map(|p| p.all_user_ids().into_iter().map(str::to_string).collect()),
    }
}

/// `events.v3_extra` as stored.
pub fn extra_text(extra: &V3Extra) -> String {
    serde_json::to_string(extra).unwrap_or_else(|_| "{}".to_string())
}

fn filters(webhook_id: &str, text: Option<&str>) -> StoreResult<Filters> {
    match text {
        None => Ok(Filters::default()),
        Some(t) => serde_json::from_str(t).map_err(|e| {
            StoreError::corrupt(
                format_args!("webhook {webhook_id}"),
                format_args!("v3_filters: {e}"),
            )
        }),
    }
}

/// A v3 event's stored columns read back as its body.
pub fn body(
    event_id: &str,
    action: Action,
    payload: Option<String>,
    extra: Option<String>,
) -> StoreResult<V3Body> {
    let row = || format!("event {event_id}");
    let payload =
        payload.ok_or_else(|| StoreError::corrupt(row(), "v3_payload: missing for a v3 action"))?;
    let payload = RawValue::from_string(payload)
        .map_err(|e| StoreError::corrupt(row(), format_args!("v3_payload: not JSON ({e})")))?;
    let extra = extra.ok_or_else(|| StoreError::corrupt(row(), "v3_extra: missing"))?;
    let extra: V3Extra = serde_json::from_str(&extra)
        .map_err(|e| StoreError::corrupt(row(), format_args!("v3_extra: {e}")))?;
    Ok(V3Body {
        action,
        payload,
        extra,
    })
}

/// A v3 `webhooks` row as stored, column by column.
pub struct V3WebhookRow {
    pub id: String,
    pub license_id: String,
    pub event_type: String,
    pub data_types: i64,
    pub url: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: Millis,
    pub signed: bool,
    pub max_per_second: Option<i64>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub owner_client_id: Option<String>,
    pub secret_key: Option<String>,
    pub filters: Option<String>,
    pub description: Option<String>,
    /// `ordered_since` is set.
    pub ordered: bool,
    /// `v3_log_filtered` is set.
    pub log_filtered: bool,
    /// Its deliveries in state `held`.
    pub held_deliveries: i64,
}

impl V3WebhookRow {
    pub fn into_webhook(self) -> StoreResult<V3Webhook> {
        let row = || format!("webhook {}", self.id);
        let bad = |field: &str, detail: &dyn std::fmt::Display| {
            StoreError::corrupt(row(), format_args!("{field}: {detail}"))
        };
        let version: Version = self
            .version
            .as_deref()
            .ok_or_else(|| bad("v3_version", &"missing"))?
            .parse()
            .map_err(|e| bad("v3_version", &e))?;
        let action: Action = self.event_type.parse().map_err(|e| bad("event_type", &e))?;
        let kind = self
            .kind
            .as_deref()
            .and_then(WebhookKind::parse)
            .ok_or_else(|| bad("v3_kind", &format_args!("{:?}", self.kind)))?;
        let owner_client_id = self
            .owner_client_id
            .ok_or_else(|| bad("v3_owner_client_id", &"missing"))?;
        let secret_key = self
            .secret_key
            .ok_or_else(|| bad("v3_secret_key", &"missing"))?;
        let additional_data = u8::try_from(self.data_types)
            .ok()
            .filter(|b| *b <= 3)
            .map(AdditionalDataSet::from_bits)
            .ok_or_else(|| bad("data_types", &"not a set of additional data"))?;
        let filters = filters(&self.id, self.filters.as_deref())?;
        let url = TargetUrl::parse_stored(&self.url).map_err(|e| bad("url", &e))?;
        let max_per_second = self
            .max_per_second
            .map(|n| u32::try_from(n).map_err(|_| bad("max_per_second", &n)))
            .transpose()?;
        Ok(V3Webhook {
            id: self.id,
            license_id: self.license_id,
            version,
            action,
            kind,
            owner_client_id,
            url,
            secret_key,
            description: self.description,
            additional_data,
            filters,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            signed: self.signed,
            max_per_second,
            ordered: self.ordered,
            log_filtered: self.log_filtered,
            held_deliveries: self.held_deliveries.max(0) as u64,
            created_at: self.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(v: serde_json::Value) -> Context {
        Context::from_json(&serde_json::value::to_raw_value(&v).unwrap()).unwrap()
    }

    fn candidate(kind: WebhookKind, filters: Option<&str>, enabled: bool) -> Candidate {
        Candidate {
            kind,
            owner_client_id: "app".into(),
            filters: filters.map(str::to_string),
            license_enabled: enabled,
        }
    }

    #[test]
    fn license_webhooks_need_the_switch_and_bot_webhooks_a_bot() {
        let none = Context::default();
        let with_bot =
            context(json!({"chat_presence": {"bots": [{"id": "b", "owner_client_id": "app"}]}}));
        let d = |c: &Candidate, ctx: &Context| decide("w", c, ctx, None).unwrap();
        assert_eq!(
            d(&candidate(WebhookKind::License, None, true), &none),
            Decision::Deliver
        );
        assert_eq!(
            d(&candidate(WebhookKind::License, None, false), &none),
            Decision::LicenseWebhooksDisabled
        );
        assert_eq!(
            d(&candidate(WebhookKind::Bot, None, false), &none),
            Decision::NoBotOfOwner
        );
        assert_eq!(
            d(&candidate(WebhookKind::Bot, None, false), &with_bot),
            Decision::Deliver
        );
        let filtered = d(
            &candidate(
                WebhookKind::License,
                Some(r#"{"source_type":["my_client"]}"#),
                true,
            ),
            &none,
        );
        assert!(matches!(filtered, Decision::Filtered(e) if e.filter == "source_type"));
        assert!(matches!(
            decide("w9", &candidate(WebhookKind::License, Some("{"), true), &none, None),
            Err(StoreError::Corrupt(m)) if m.starts_with("webhook w9: v3_filters")
        ));
    }

    #[test]
    fn the_extra_keeps_the_context_parts_additional_data_may_carry() {
        let ctx = context(json!({"chat_properties": {"source": {"client_id": "x"}},
                                 "chat_presence": {"user_ids": ["a"], "bots": [{"id": "b", "owner_client_id": "app"}]}}));
        let text = extra_text(&extra("org".into(), &ctx));
        let back = body("e", Action::IncomingChat, Some("{}".into()), Some(text)).unwrap();
        assert_eq!(back.extra.organization_id, "org");
        assert_eq!(back.extra.chat_presence_user_ids.unwrap(), ["a", "b"]);
        assert!(body("e", Action::IncomingChat, None, Some("{}".into())).is_err());
        assert!(body(
            "e",
            Action::IncomingChat,
            Some("{}".into()),
            Some("[]".into())
        )
        .is_err());
    }
}
