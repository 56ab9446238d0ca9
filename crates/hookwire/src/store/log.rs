//! The delivery log: what happened to a license's deliveries (listed with
//! their attempts, charted, counted), redeliveries, and the events a
//! per-event token may belong to.

use super::rules::ordering::LinePlace;
use super::{EventBody, EventName, Millis, StoreResult};
use async_trait::async_trait;
use hookwire_livechat::{DataTypes, EventType};

/// Where a delivery is. `Pending` and `Held` wait (and count toward
/// `max_backlog`); `Delivered`, `Failed` and `Discarded` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// To be attempted when due (and its webhook is enabled).
    Pending,
    /// Made while its webhook was disabled: never attempted until the
    /// webhook is enabled again, which makes it pending (or discarded).
    Held,
    Delivered,
    Failed,
    /// Held, then dropped when its webhook was enabled with `discard_held`
    /// (or deleted); never attempted.
    Discarded,
    /// A v3 event its webhook's filters excluded, logged because the webhook
    /// asks (`log_filtered`); never attempted.
    Filtered,
}

impl DeliveryState {
    /// Every state, in the order the API documents them.
    pub const ALL: [DeliveryState; 6] = [
        DeliveryState::Pending,
        DeliveryState::Held,
        DeliveryState::Delivered,
        DeliveryState::Failed,
        DeliveryState::Discarded,
        DeliveryState::Filtered,
    ];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Held => "held",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Discarded => "discarded",
            DeliveryState::Filtered => "filtered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct AttemptView {
    pub at: Millis,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeliveryView {
    pub id: i64,
    pub event_id: String,
    pub webhook_id: String,
    pub event_type: EventName,
    pub state: DeliveryState,
    pub created_at: Millis,
    pub next_attempt_at: Option<Millis>,
    pub attempts: Vec<AttemptView>,
    /// Its place in its key's line, when its webhook was ordered as it was
    /// made (`rules::ordering`).
    pub line: Option<LinePlace>,
    /// For a `filtered` one: which filter excluded its event, and why.
    pub filtered_by: Option<String>,
}

pub struct DeliveryQuery<'a> {
    pub license_id: &'a str,
    pub webhook_id: Option<&'a str>,
    pub state: Option<DeliveryState>,
    /// Only deliveries of this event type.
    pub event_type: Option<EventType>,
    /// Only deliveries with a smaller id (for paging, newest first).
    pub before: Option<i64>,
    pub limit: usize,
}

/// One attempt, reduced to what the web app's charts and rates need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptSample {
    pub at: Millis,
    /// Index into the `webhook_ids` of [`AttemptSamples`].
    pub webhook: usize,
    /// The receiver acknowledged (the attempt recorded no error).
    pub ok: bool,
    pub latency_ms: i64,
}

/// Attempts of a license since some time, oldest first.
#[derive(Debug, Clone, Default)]
pub struct AttemptSamples {
    pub webhook_ids: Vec<String>,
    pub samples: Vec<AttemptSample>,
    /// More attempts matched than the limit asked for; the oldest were left out.
    pub truncated: bool,
}

/// A license's backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Deliveries still pending (due now, waiting for a retry, or in flight).
    pub pending: u64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<Millis>,
    /// Deliveries held for disabled webhooks.
    pub held: u64,
}

/// What asking for one delivery to be redelivered did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// It is pending again with a fresh retry budget (or was in flight
    /// already, and keeps its lease).
    Pending,
    /// It is held: its webhook is disabled, and only enabling the webhook
    /// (or discarding what it holds) moves it.
    Held,
    /// The license has no such delivery (or its webhook was deleted).
    Unknown,
}

/// Which deliveries a bulk replay takes: the license's (optionally one
/// webhook's) deliveries created at or after `since` that failed, or that
/// failed or were delivered (`include_delivered`). Deleted webhooks' are never
/// taken.
#[derive(Debug, Clone)]
pub struct ReplayQuery<'a> {
    pub license_id: &'a str,
    pub webhook_id: Option<&'a str>,
    pub since: Millis,
    pub include_delivered: bool,
}

/// One batch of a bulk replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayBatch {
    pub redelivered: u64,
    /// The last delivery id taken: the next batch starts after it.
    pub last_id: Option<i64>,
    /// How many more match after `last_id`.
    pub remaining: u64,
}

/// How the REST call-back finds the event a per-event token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKey {
    /// A token's first 12 hex characters: the events whose unique id starts
    /// with them (made in that millisecond); the engine keeps the one the
    /// token's MAC is for.
    EventsAt(String),
    /// A token issued before tokens named their event: its hash as stored.
    LegacyHash(String),
}

/// What a per-event token grants: its license, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The event the token was issued with.
    pub event_id: String,
    pub license_id: String,
    pub expires_at: Millis,
}

/// A license's deliveries after the fact: listed with their attempts, the
/// body one carried, samples and counts for the web app, redelivery (one,
/// a webhook's failures, a bulk replay), and the events a per-event token
/// may name.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    async fn list_deliveries(&self, query: DeliveryQuery<'_>) -> StoreResult<Vec<DeliveryView>>;
    /// The event a delivery carries and the data types it was created with:
    /// what [`render_payload`](hookwire_livechat::render_payload) needs to
    /// show the exact body sent. `None` if the license has no such delivery.
    async fn delivery_body(
        &self,
        license_id: &str,
        delivery_id: i64,
    ) -> StoreResult<Option<(EventBody, DataTypes)>>;
    /// The license's attempts made at or after `since`, oldest first; at most
    /// `limit` (the newest ones) are returned.
    async fn attempt_samples(
        &self,
        license_id: &str,
        since: Millis,
        limit: usize,
    ) -> StoreResult<AttemptSamples>;
    /// How many of the license's deliveries are pending (and the oldest
    /// one's age) and how many are held.
    async fn queue_stats(&self, license_id: &str) -> StoreResult<QueueStats>;

    /// Makes a delivery pending again with a fresh retry budget, unless it
    /// is held (see [`Redelivery`]).
    async fn redeliver(
        &self,
        license_id: &str,
        delivery_id: i64,
        now: Millis,
    ) -> StoreResult<Redelivery>;
    async fn redeliver_failed_since(
        &self,
        license_id: &str,
        webhook_id: &str,
        since: Millis,
        now: Millis,
    ) -> StoreResult<u64>;
    /// Redelivers (makes pending with a fresh retry budget) the next `limit`
    /// deliveries, in id order after `after`, that match `query`: the bulk
    /// replay of `hookwire replay`. Deliveries in flight keep their lease.
    async fn redeliver_batch(
        &self,
        query: &ReplayQuery<'_>,
        after: i64,
        limit: usize,
        now: Millis,
    ) -> StoreResult<ReplayBatch>;

    /// The events a per-event token may belong to, with their license and
    /// the tokens' expiry (see [`TokenKey`]).
    async fn token_grants(&self, key: TokenKey) -> StoreResult<Vec<TokenGrant>>;
}
