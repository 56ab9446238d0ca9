//! The store: everything hookwire keeps, behind one interface.
//!
//! Only this module knows SQL. Each backend (SQLite now; PostgreSQL fills the
//! same trait) decides atomically, inside its transactions, what must not be
//! decided in one node's memory: idempotency keys, the `chat_changed` tag
//! rule, and which node owns a delivery (leases).

pub mod postgres;
pub mod sqlite;

use crate::secret::{SealedSecret, SealedTargetUrl};
use async_trait::async_trait;
use hookwire_livechat::event::VisitorSummary;
use hookwire_livechat::{DataTypes, EventType, Sections, TargetUrl};
use std::collections::HashSet;
use std::sync::Arc;

/// Milliseconds since the Unix epoch: every time the store keeps.
pub type Millis = i64;

/// Why the store did not do what it was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A write collided with what is stored; names what (a constraint, a key).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database refused a write or could not be reached (disk full, I/O
    /// error, locked, connection lost). Nothing was committed; the same call
    /// may succeed later.
    #[error("database unavailable: {source}")]
    Unavailable {
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A stored row cannot be read as what it should be (an unknown state or
    /// event type, a section that is not JSON). Retrying will not help.
    #[error("corrupt data in the database: {0}")]
    Corrupt(String),
    #[error("store is shut down")]
    Closed,
}

impl StoreError {
    /// The database could not do it, for the reason `source` gives.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Unavailable {
            source: Arc::from(source.into()),
        }
    }

    /// A stored value that cannot be read: `what` names the row and field.
    pub fn corrupt(what: impl std::fmt::Display, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(format!("{what}: {detail}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

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
    pub created_at: Millis,
}

pub struct NewWebhook {
    pub id: String,
    pub license_id: String,
    pub event_type: EventType,
    pub data_types: DataTypes,
    pub url: SealedTargetUrl,
    pub token: String,
    pub created_at: Millis,
}

#[derive(Default)]
pub struct WebhookPatch {
    pub url: Option<SealedTargetUrl>,
    pub data_types: Option<DataTypes>,
    pub enabled: Option<bool>,
    /// `Some(None)` removes the rate limit.
    pub max_per_second: Option<Option<u32>>,
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

/// An event ready to be committed, with its deliveries decided in the same transaction.
pub struct NewEvent {
    pub unique_id: String,
    pub license_id: String,
    pub event_type: EventType,
    pub sections: Sections,
    /// The token's hash, for tokens issued before tokens named their event's
    /// time (`secret::event_token`); `None` for every event hookwire ingests now,
    /// whose tokens need nothing stored.
    pub token_hash: Option<String>,
    pub token_expires_at: Millis,
    pub chat_tags: Option<(String, String)>,
    pub visitor: Option<VisitorSummary>,
    /// The caller's idempotency key and a hash of the request it came with.
    pub idempotency: Option<(String, String)>,
    pub received_at: Millis,
}

#[derive(Debug)]
pub enum IngestOutcome {
    /// Committed. When the ingest asked for a hand-off, `deliveries` are leased
    /// to this node and should go straight to its dispatcher.
    Accepted {
        event_id: String,
        deliveries: Vec<DeliveryJob>,
        delivery_count: usize,
    },
    /// The idempotency key was seen before with the same request.
    Replayed {
        event_id: String,
        delivery_count: usize,
    },
    /// The idempotency key was seen before with a different request.
    KeyReused,
    UnknownLicense,
}

/// The immutable part of an event, shared by all its deliveries.
#[derive(Debug)]
pub struct EventBody {
    pub unique_id: String,
    pub license_id: String,
    pub event_type: EventType,
    pub sections: Sections,
}

/// One delivery, claimed by this node, with everything needed to attempt it.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub delivery_id: i64,
    pub webhook_id: String,
    pub url: String,
    pub data_types: DataTypes,
    /// Attempts made since the delivery was created or last redelivered.
    pub attempts_in_round: u32,
    /// Until when this node owns the delivery; no attempt may start that
    /// could outlive it, or another node might start one too.
    pub lease_until: Millis,
    pub event: Arc<EventBody>,
    /// The webhook's signing secrets as stored (sealed), current first, then
    /// the previous one while its rotation grace lasts. Empty: unsigned.
    pub signing_secrets: Vec<String>,
    /// The webhook's rate limit, attempts per second (None: no limit).
    pub max_per_second: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextState {
    Delivered,
    RetryAt(Millis),
    Failed,
}

/// One finished attempt, to be logged and applied to its delivery.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    /// The delivery's webhook: a success clears its `failing_since`, a
    /// failure starts it if unset (see [`Store::disable_webhook`]).
    pub webhook_id: String,
    pub at: Millis,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub next: NextState,
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
    pub event_type: EventType,
    pub state: DeliveryState,
    pub created_at: Millis,
    pub next_attempt_at: Option<Millis>,
    pub attempts: Vec<AttemptView>,
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

/// One named set of custom visitor details (LiveChat's `id`), as agents see it.
#[derive(Debug, Clone)]
pub struct DetailsSet {
    pub set_id: String,
    pub icon: Option<String>,
    /// A JSON array of `{name, value, url}`.
    pub fields_json: String,
    pub updated_at: Millis,
}

/// A visitor seen in an event, with the details receivers posted for them.
#[derive(Debug, Clone)]
pub struct VisitorView {
    pub visitor_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub last_event_type: Option<String>,
    pub last_seen_at: Option<Millis>,
    pub details: Vec<DetailsSet>,
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

/// The whole database's backlog and webhook health, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpsStats {
    /// Deliveries pending across all licenses.
    pub pending: u64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<Millis>,
    /// Webhooks switched off (by their license or for failing), not deleted.
    pub disabled_webhooks: u64,
}

/// This process's database connections, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Connections open now.
    pub open: u64,
    /// Connections handed out to a query now.
    pub in_use: u64,
    /// The most the pool opens.
    pub max: u64,
}

/// A license's backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Deliveries still pending (due now, waiting for a retry, or in flight).
    pub pending: u64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<Millis>,
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a license; `Conflict` if the id exists.
    async fn create_license(
        &self,
        license_id: &str,
        api_key_hash: &str,
        now: Millis,
    ) -> StoreResult<()>;
    async fn license_by_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<String>>;

    async fn create_webhook(&self, webhook: NewWebhook) -> StoreResult<Webhook>;
    async fn list_webhooks(&self, license_id: &str) -> StoreResult<Vec<Webhook>>;
    async fn get_webhook(&self, license_id: &str, id: &str) -> StoreResult<Option<Webhook>>;
    /// Applies a patch. Enabling clears `disabled_reason` and `failing_since`.
    async fn update_webhook(
        &self,
        license_id: &str,
        id: &str,
        patch: WebhookPatch,
    ) -> StoreResult<Option<Webhook>>;
    /// Deletes a webhook; its pending deliveries end as failed. False if unknown.
    async fn delete_webhook(&self, license_id: &str, id: &str, now: Millis) -> StoreResult<bool>;

    /// Commits events and their deliveries. With a `handoff`, the new
    /// deliveries (but those of its saturated webhooks) are leased to the
    /// caller and returned for dispatch; the rest are committed unleased.
    async fn ingest(
        &self,
        events: Vec<NewEvent>,
        handoff: Option<Handoff>,
    ) -> StoreResult<Vec<IngestOutcome>>;

    /// Leases up to `limit` due deliveries (oldest due first) until
    /// `lease_until`, passing over webhooks whose queues are full already.
    async fn claim_due(
        &self,
        now: Millis,
        limit: usize,
        lease_until: Millis,
        skip_webhooks: Vec<String>,
    ) -> StoreResult<Vec<DeliveryJob>>;
    /// Gives back leases of deliveries this node holds but will not attempt
    /// now; they become due again no earlier than `due_at`.
    async fn release(&self, delivery_ids: Vec<i64>, due_at: Millis) -> StoreResult<()>;
    /// Logs an attempt, moves its delivery on, and keeps the webhook's health:
    /// `failing_since` is cleared by a delivered attempt and set (if unset) to
    /// `record.at` by a failed one.
    async fn record_attempt(&self, record: AttemptRecord) -> StoreResult<()>;

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

    /// Disables an enabled webhook (`enabled = false`, `disabled_reason =
    /// reason`); its pending deliveries wait. With `failing_since_at_or_before`,
    /// only if its `failing_since` is set and not later than that. True if it
    /// was disabled by this call. Engine-internal: not scoped by license.
    async fn disable_webhook(
        &self,
        webhook_id: &str,
        reason: &str,
        failing_since_at_or_before: Option<Millis>,
    ) -> StoreResult<bool>;

    /// How many deliveries are pending (the backlog); called about once a second.
    async fn pending_count(&self) -> StoreResult<u64>;

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

    async fn list_deliveries(&self, query: DeliveryQuery<'_>) -> StoreResult<Vec<DeliveryView>>;
    /// Makes a delivery pending again with a fresh retry budget. False if unknown.
    async fn redeliver(&self, license_id: &str, delivery_id: i64, now: Millis)
        -> StoreResult<bool>;
    /// The events a per-event token may belong to, with their license and
    /// the tokens' expiry (see [`TokenKey`]).
    async fn token_grants(&self, key: TokenKey) -> StoreResult<Vec<TokenGrant>>;
    /// Adds or replaces (by `set_id`) one set of a visitor's custom details.
    async fn put_visitor_details(
        &self,
        license_id: &str,
        visitor_id: &str,
        set: DetailsSet,
    ) -> StoreResult<()>;
    /// A visitor with their details; `None` when neither is known.
    async fn visitor(&self, license_id: &str, visitor_id: &str)
        -> StoreResult<Option<VisitorView>>;
    /// The most recently seen visitors of a license, newest first.
    async fn recent_visitors(
        &self,
        license_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<VisitorView>>;

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

    // For the web app (issue #4).

    /// Every license id, sorted: the operator's license switcher.
    async fn list_licenses(&self) -> StoreResult<Vec<String>>;
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
    /// How many of the license's deliveries are pending, and the oldest one's age.
    async fn queue_stats(&self, license_id: &str) -> StoreResult<QueueStats>;

    /// The backlog and disabled webhooks of the whole database (all licenses).
    async fn ops_stats(&self) -> StoreResult<OpsStats>;
    /// How this process uses its database connections right now.
    fn pool_stats(&self) -> PoolStats;

    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Fires when another node made work due that nobody holds; backends
    /// with a single node have none.
    fn due_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
}

/// A webhook an event is delivered to, as ingest found it.
struct IngestTarget {
    webhook_id: String,
    url: String,
    data_types: DataTypes,
    /// Sealed; current first.
    signing_secrets: Vec<String>,
    max_per_second: Option<u32>,
}

/// How ingest hands fresh deliveries straight to this node's dispatcher.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// The lease handed deliveries start with.
    pub lease_until: Millis,
    /// Webhooks whose queues in memory are full. Their new deliveries are
    /// committed unleased instead of handed over: handing them over only for
    /// the dispatcher to give them back cost a write per delivery, and
    /// unleased they can go to whichever node has room.
    pub saturated: Arc<HashSet<String>>,
}

impl Handoff {
    /// The lease a new delivery to `webhook_id` is inserted with: 0 (due for
    /// any node's poller) when it is not handed over.
    pub fn lease_for(handoff: Option<&Handoff>, webhook_id: &str) -> Millis {
        match handoff {
            Some(h) if !h.saturated.contains(webhook_id) => h.lease_until,
            _ => 0,
        }
    }
}

/// The jobs for an event's freshly inserted deliveries, to hand straight to
/// this node's dispatcher: those not inserted with a lease stay behind.
/// `targets` pairs each delivery id with its target; `event` is only built
/// when something is handed over.
fn handoff_jobs(
    handoff: Option<&Handoff>,
    targets: impl IntoIterator<Item = (i64, IngestTarget)>,
    event: impl FnOnce() -> EventBody,
) -> Vec<DeliveryJob> {
    let handed: Vec<_> = targets
        .into_iter()
        .filter_map(|(id, t)| {
            let lease = Handoff::lease_for(handoff, &t.webhook_id);
            (lease != 0).then_some((id, t, lease))
        })
        .collect();
    if handed.is_empty() {
        return Vec::new();
    }
    let event = Arc::new(event());
    handed
        .into_iter()
        .map(|(delivery_id, t, lease_until)| DeliveryJob {
            delivery_id,
            webhook_id: t.webhook_id,
            url: t.url,
            data_types: t.data_types,
            attempts_in_round: 0,
            lease_until,
            event: event.clone(),
            signing_secrets: t.signing_secrets,
            max_per_second: t.max_per_second,
        })
        .collect()
}

/// The signing secrets in force at `now`: current first, then the previous
/// one while its grace lasts.
fn signing_secrets(
    current: Option<String>,
    previous: Option<String>,
    previous_until: Option<Millis>,
    now: Millis,
) -> Vec<String> {
    let mut secrets: Vec<String> = current.into_iter().collect();
    if let (Some(p), Some(until)) = (previous, previous_until) {
        if until > now && !secrets.is_empty() {
            secrets.push(p);
        }
    }
    secrets
}

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}
