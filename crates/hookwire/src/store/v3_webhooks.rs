//! LiveChat v3.x webhooks: registrations per (license, owner Client ID),
//! each application's license-webhooks switch, the license's organization
//! id, and the ingest of v3 events.
//!
//! A v3 webhook is a `webhooks` row (so the delivery queue, endpoint health,
//! signing secrets and rate limits are the v2 ones), marked by its version;
//! the v2 `Webhooks` methods never see it. A v3 event is an `events` row
//! whose deliveries go through the same queue: only the body differs
//! (`engine::attempt` renders the six-key envelope for it).

use super::{EventBody, Handoff, IngestOutcome, IngestTarget, Millis, StoreError, StoreResult};
use crate::secret::{SealedSecret, SealedTargetUrl};
use async_trait::async_trait;
use hookwire_livechat::v3::{Action, AdditionalDataSet, Filters, Version, WebhookKind};
use hookwire_livechat::{EventType, TargetUrl};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// At most this many webhooks per action per Client ID on a license.
pub const MAX_V3_WEBHOOKS_PER_ACTION: usize = 3;

/// What an event is: a v2 event type or a v3 action (the names differ, so
/// the stored text says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventName {
    V2(EventType),
    V3(Action),
}

impl EventName {
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::V2(t) => t.as_str(),
            EventName::V3(a) => a.as_str(),
        }
    }

    /// A stored name: a v2 event type, else a v3 action.
    pub fn parse(text: &str) -> Result<Self, hookwire_livechat::ValidationError> {
        match text.parse::<EventType>() {
            Ok(t) => Ok(EventName::V2(t)),
            Err(e) => text.parse::<Action>().map(EventName::V3).map_err(|_| e),
        }
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a v3 event's deliveries add to its payload, kept with the event
/// (`events.v3_extra`): the organization id as it was when the event came,
/// and the context's parts `additional_data` may carry.
#[derive(Debug, Serialize, Deserialize)]
pub struct V3Extra {
    pub organization_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_properties: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_presence_user_ids: Option<Vec<String>>,
}

/// A v3 event's part of an [`EventBody`](super::EventBody).
#[derive(Debug)]
pub struct V3Body {
    pub action: Action,
    /// The platform's JSON text, sent byte for byte.
    pub payload: Box<RawValue>,
    pub extra: V3Extra,
}

/// A v3 webhook as stored (its secret key stays sealed).
#[derive(Debug, Clone)]
pub struct V3Webhook {
    pub id: String,
    pub license_id: String,
    pub version: Version,
    pub action: Action,
    pub kind: WebhookKind,
    pub owner_client_id: String,
    pub url: TargetUrl,
    /// Sealed; only the sender and `list_webhooks` open it.
    pub secret_key: String,
    pub description: Option<String>,
    pub additional_data: AdditionalDataSet,
    pub filters: Filters,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub signed: bool,
    pub max_per_second: Option<u32>,
    /// Ordered delivery per chat (`rules::ordering`).
    pub ordered: bool,
    /// An event its filters exclude is logged (a `filtered` delivery).
    pub log_filtered: bool,
    /// Deliveries held while it is disabled, waiting for it to be enabled.
    pub held_deliveries: u64,
    pub created_at: Millis,
}

/// A registration, sealed, on its way to the store.
pub struct NewV3Webhook {
    pub id: String,
    pub license_id: String,
    pub version: Version,
    pub action: Action,
    pub kind: WebhookKind,
    pub owner_client_id: String,
    pub url: SealedTargetUrl,
    pub secret_key: SealedSecret,
    pub description: Option<String>,
    pub additional_data: AdditionalDataSet,
    pub filters: Filters,
    pub created_at: Millis,
}

/// What a registration came to.
#[derive(Debug)]
pub enum V3Registered {
    Registered(Box<V3Webhook>),
    /// The owner has [`MAX_V3_WEBHOOKS_PER_ACTION`] for the action already.
    LimitReached,
    UnknownLicense,
}

/// A v3 event ready to be committed with its deliveries.
pub struct NewV3Event {
    pub unique_id: String,
    pub license_id: String,
    pub action: Action,
    pub payload: Box<RawValue>,
    /// The context, for filters: deciding happens in the ingest transaction.
    pub context: hookwire_livechat::v3::Context,
    /// The payload's `agent_id`, for `agent_ids`.
    pub agent_id: Option<String>,
    /// Its chat, kept on its deliveries to ordered webhooks.
    pub order_key: Option<String>,
    /// Used as the license's organization id if it has none yet.
    pub new_organization_id: String,
    pub idempotency: Option<(String, String)>,
    pub received_at: Millis,
}

/// A webhook ingest found for a v3 event, before `rules::v3` decides.
pub(super) struct Found {
    pub target: IngestTarget,
    /// `v3_kind` as stored.
    pub kind: String,
    pub owner_client_id: String,
    pub filters: Option<String>,
    pub license_enabled: bool,
    /// Exclusions by its filters are logged.
    pub log_filtered: bool,
}

/// What a v3 event makes: deliveries for the webhooks that take it, and
/// for those that asked, a record of why their filters excluded it.
pub(super) struct Admitted {
    pub targets: Vec<IngestTarget>,
    /// The webhooks that excluded it and log that.
    pub filtered: Vec<FilteredOut>,
}

/// A webhook whose filters excluded an event, and which logs that.
pub(super) struct FilteredOut {
    pub webhook_id: String,
    pub data_types: hookwire_livechat::DataTypes,
    /// The exclusion: the filter and why.
    pub why: String,
}

/// The targets among `found` that `rules::v3` admits `ev` to; the others
/// are logged at DEBUG with the reason.
pub(super) fn admitted(found: Vec<Found>, ev: &NewV3Event) -> StoreResult<Admitted> {
    let mut targets = Vec::with_capacity(found.len());
    let mut filtered = Vec::new();
    for f in found {
        let kind = WebhookKind::parse(&f.kind).ok_or_else(|| {
            StoreError::corrupt(
                format_args!("webhook {}", f.target.webhook_id),
                format_args!("v3_kind: {:?}", f.kind),
            )
        })?;
        let candidate = super::rules::v3::Candidate {
            kind,
            owner_client_id: f.owner_client_id,
            filters: f.filters,
            license_enabled: f.license_enabled,
        };
        let webhook_id = &f.target.webhook_id;
        match super::rules::v3::decide(webhook_id, &candidate, &ev.context, ev.agent_id.as_deref())?
        {
            super::rules::v3::Decision::Deliver => targets.push(f.target),
            super::rules::v3::Decision::Filtered(why) if f.log_filtered => {
                filtered.push(FilteredOut {
                    webhook_id: f.target.webhook_id,
                    data_types: f.target.data_types,
                    why: why.to_string(),
                })
            }
            not => {
                tracing::debug!(webhook = %webhook_id, decision = ?not, "v3 event not delivered")
            }
        }
    }
    Ok(Admitted { targets, filtered })
}

/// What a handed-over delivery of a v3 event carries of it.
pub(super) fn v3_event_body(ev: NewV3Event, extra: V3Extra) -> EventBody {
    EventBody {
        unique_id: ev.unique_id,
        license_id: ev.license_id,
        event_type: EventName::V3(ev.action),
        sections: Default::default(),
        v3: Some(V3Body {
            action: ev.action,
            payload: ev.payload,
            extra,
        }),
    }
}

/// Registrations, switches and ingest for v3 webhooks.
#[async_trait]
pub trait V3Webhooks: Send + Sync {
    /// Registers a webhook unless its owner has the most for its action
    /// (decided in the transaction that inserts it).
    async fn register_v3_webhook(&self, webhook: NewV3Webhook) -> StoreResult<V3Registered>;
    /// The license's v3 webhooks (one owner's, if given), oldest first.
    async fn list_v3_webhooks(
        &self,
        license_id: &str,
        owner_client_id: Option<&str>,
    ) -> StoreResult<Vec<V3Webhook>>;
    /// Switches a license's v3 webhook on or off (and what becomes of what
    /// it held), ordered or not, and its rate limit, as
    /// [`Webhooks::update_webhook`](super::Webhooks::update_webhook) does a
    /// v2 one's (`url` and `data_types` of the patch are not for v3: a v3
    /// webhook is registered again to change them). `None` if the license
    /// has no such v3 webhook.
    async fn update_v3_webhook(
        &self,
        license_id: &str,
        id: &str,
        patch: super::WebhookPatch,
    ) -> StoreResult<Option<V3Webhook>>;
    /// Unregisters an owner's webhook; its pending deliveries end as
    /// failed. False if the owner has no such webhook on the license.
    async fn unregister_v3_webhook(
        &self,
        license_id: &str,
        owner_client_id: &str,
        id: &str,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Switches an application's license webhooks on the license.
    async fn set_license_webhooks_enabled(
        &self,
        license_id: &str,
        owner_client_id: &str,
        enabled: bool,
        now: Millis,
    ) -> StoreResult<()>;
    /// Whether an application's license webhooks fire on the license (off
    /// until enabled).
    async fn license_webhooks_enabled(
        &self,
        license_id: &str,
        owner_client_id: &str,
    ) -> StoreResult<bool>;
    /// The license's organization id, made `new_id` if it had none; `None`
    /// for an unknown license.
    async fn organization_id(&self, license_id: &str, new_id: &str) -> StoreResult<Option<String>>;
    /// Sets the license's organization id; false for an unknown license.
    async fn set_organization_id(
        &self,
        license_id: &str,
        organization_id: &str,
    ) -> StoreResult<bool>;
    /// Commits v3 events with a delivery per webhook their filters admit
    /// (`rules::v3`), as [`DeliveryQueue::ingest`](super::DeliveryQueue::ingest)
    /// does for v2 events.
    async fn ingest_v3(
        &self,
        events: Vec<NewV3Event>,
        handoff: Option<Handoff>,
    ) -> StoreResult<Vec<IngestOutcome>>;
}
