//! Webhooks: a license's subscriptions (event type, data types, target URL),
//! their signing secrets and their switches.

use super::{Millis, StoreResult};
use crate::secret::{SealedSecret, SealedTargetUrl};
use async_trait::async_trait;
use hookwire_livechat::{DataTypes, EventType, TargetUrl};

#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    pub license_id: String,
    pub event_type: EventType,
    pub data_types: DataTypes,
    pub url: TargetUrl,
    /// LiveChat's list answer shows a per-webhook token; it identifies the
    /// subscription and grants nothing.
    pub token: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Whether deliveries are signed (a signing secret is set).
    pub signed: bool,
    /// At most this many attempts per second to this webhook (None: no limit).
    pub max_per_second: Option<u32>,
    /// Ordered delivery: a chat's (visitor's, ticket's) deliveries go one at
    /// a time, in the order their events came (`rules::ordering`).
    pub ordered: bool,
    /// Deliveries held while it is disabled, waiting for it to be enabled.
    pub held_deliveries: u64,
    pub created_at: Millis,
}

pub struct NewWebhook {
    pub id: String,
    pub license_id: String,
    pub event_type: EventType,
    pub data_types: DataTypes,
    pub url: SealedTargetUrl,
    pub token: String,
    pub ordered: bool,
    pub created_at: Millis,
}

#[derive(Default)]
pub struct WebhookPatch {
    pub url: Option<SealedTargetUrl>,
    pub data_types: Option<DataTypes>,
    pub enabled: Option<bool>,
    /// With `enabled: Some(true)`: what becomes of the deliveries held
    /// while the webhook was disabled.
    pub held: HeldDeliveries,
    /// `Some(None)` removes the rate limit.
    pub max_per_second: Option<Option<u32>>,
    /// Switches ordered delivery on or off. Off, new deliveries go
    /// unordered; those made while it was on still finish their lines.
    pub ordered: Option<bool>,
    /// A v3 webhook's: log the events its filters exclude.
    pub log_filtered: Option<bool>,
    /// When the patch is applied: the `updated_at` of held deliveries it moves.
    pub at: Millis,
}

/// What enabling a webhook does with its held deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeldDeliveries {
    /// They become pending, due at their creation time, so claims (oldest
    /// due first) take them in the order their events came.
    #[default]
    Deliver,
    /// They end `discarded`, never attempted.
    Discard,
}

/// A license's webhooks: created, listed, changed, deleted, and their
/// sealed secrets and URLs. Disabling for failing is the engine's, in
/// [`DeliveryQueue::disable_webhook`](super::DeliveryQueue::disable_webhook).
#[async_trait]
pub trait Webhooks: Send + Sync {
    async fn create_webhook(&self, webhook: NewWebhook) -> StoreResult<Webhook>;
    async fn list_webhooks(&self, license_id: &str) -> StoreResult<Vec<Webhook>>;
    async fn get_webhook(&self, license_id: &str, id: &str) -> StoreResult<Option<Webhook>>;
    /// Applies a patch, in one transaction. Enabling clears
    /// `disabled_reason` and `failing_since`, and moves the held deliveries
    /// as `patch.held` says; no delivery made held concurrently (by an
    /// ingest that read the webhook disabled) is left behind held.
    async fn update_webhook(
        &self,
        license_id: &str,
        id: &str,
        patch: WebhookPatch,
    ) -> StoreResult<Option<Webhook>>;
    /// Deletes a webhook; its pending deliveries end as failed, its held
    /// ones as discarded. False if unknown.
    async fn delete_webhook(&self, license_id: &str, id: &str, now: Millis) -> StoreResult<bool>;

    /// Sets a webhook's signing secret (already sealed). A secret it had
    /// keeps signing until `previous_until` (it replaces any older previous
    /// one). False if the webhook is unknown to the license.
    async fn rotate_signing_secret(
        &self,
        license_id: &str,
        id: &str,
        sealed_secret: SealedSecret,
        previous_until: Millis,
    ) -> StoreResult<bool>;

    /// The license's webhook's signing secrets in force at `now`, sealed,
    /// current first (as a delivery of it would be signed); empty when it
    /// signs nothing or is unknown.
    async fn signing_secrets(
        &self,
        license_id: &str,
        id: &str,
        now: Millis,
    ) -> StoreResult<Vec<String>>;

    /// Every webhook's stored URL, deleted ones included, as `(id, url)`: for
    /// sealing at start-up the passwords stored before encryption existed.
    async fn all_webhook_urls(&self) -> StoreResult<Vec<(String, String)>>;
    /// Replaces a webhook's stored URL if it is still `old` (compare and
    /// set); true if replaced.
    async fn replace_webhook_url(
        &self,
        id: &str,
        old: &str,
        new: &SealedTargetUrl,
    ) -> StoreResult<bool>;
}
