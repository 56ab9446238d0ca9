//! The delivery queue, the hot path: events committed with their
//! deliveries, due deliveries leased to a node, attempts recorded.

use super::rules::ordering::{BatchLine, PARKED};
use super::{EventName, Millis, StoreResult, V3Body};
use async_trait::async_trait;
use hookwire_livechat::event::VisitorSummary;
use hookwire_livechat::{DataTypes, EventType, Sections};
use std::collections::HashSet;
use std::sync::Arc;

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
    /// Its ordering key (`hookwire_livechat::event::ordering_key`), kept on
    /// the deliveries to ordered webhooks.
    pub order_key: Option<String>,
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
        /// Every delivery made, held ones included.
        delivery_count: usize,
        /// Of those, the ones held for disabled webhooks: never handed over,
        /// and nothing for a poller to claim.
        held: usize,
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
    pub event_type: EventName,
    /// A v2 event's data; all `None` for a v3 event.
    pub sections: Sections,
    /// A v3 event's payload and what its deliveries add; `None` for v2.
    pub v3: Option<V3Body>,
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
    /// A v3 webhook's `secret_key`, sealed; `None` for a v2 webhook.
    pub v3_secret_key: Option<String>,
    /// Its ordering key, when its webhook is ordered (see
    /// [`rules::ordering`](super::rules::ordering)); its record wakes the
    /// next delivery of the key.
    pub order_key: Option<String>,
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
    /// failure starts it if unset (see [`DeliveryQueue::disable_webhook`]).
    pub webhook_id: String,
    pub at: Millis,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub next: NextState,
    /// The delivery's ordering key (ordered webhooks only): a final record
    /// makes the next delivery of the key due.
    pub order_key: Option<String>,
}

/// The work of delivering: ingest commits events with their deliveries,
/// claims lease due ones to this node, records move them on, and the
/// dispatcher switches off webhooks that keep failing.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
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
    /// now; they become due again no earlier than `due_at`. A lease taken
    /// over since (see [`Nodes`](super::Nodes)) is another node's and is
    /// left alone.
    async fn release(&self, delivery_ids: Vec<i64>, due_at: Millis) -> StoreResult<()>;
    /// Logs an attempt, moves its delivery on if this node still holds its
    /// lease (claimed or handed off, and not taken over since: then the
    /// delivery is another node's, whose own record counts), and keeps the
    /// webhook's health: `failing_since` is cleared by a delivered attempt
    /// and set (if unset) to `record.at` by a failed one.
    async fn record_attempt(&self, record: AttemptRecord) -> StoreResult<()>;

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

    /// How many deliveries are pending and held (the backlog); called about
    /// once a second.
    async fn backlog(&self) -> StoreResult<Backlog>;

    /// Makes due (at `now`) every parked delivery that the claim rule would
    /// let go now, up to a bound; answers how many. A parked delivery is
    /// woken by the finish of the one before it (`rules::ordering`): this
    /// is the safety net under that, run with each prune pass, and finds
    /// none unless a wake was missed.
    async fn wake_stranded(&self, now: Millis) -> StoreResult<u64>;

    /// Fires when work was made due that nobody holds: by another node
    /// (PostgreSQL), or by a record that woke the next delivery of an
    /// ordered key (both backends).
    fn due_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
}

/// The whole database's deliveries waiting: what `max_backlog` and
/// `backlog.high` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub pending: u64,
    /// Held for disabled webhooks.
    pub held: u64,
}

impl Backlog {
    /// Pending and held together.
    pub fn total(self) -> u64 {
        self.pending.saturating_add(self.held)
    }
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

/// A webhook an event is delivered to, as ingest found it.
pub(super) struct IngestTarget {
    pub webhook_id: String,
    /// Disabled: its delivery is inserted held, unleased, and not handed over.
    pub held: bool,
    pub url: String,
    pub data_types: DataTypes,
    /// Sealed; current first.
    pub signing_secrets: Vec<String>,
    pub max_per_second: Option<u32>,
    /// Sealed; a v3 webhook's only.
    pub v3_secret_key: Option<String>,
    /// The event's ordering key, when this webhook is ordered and the event
    /// has one.
    pub order_key: Option<String>,
    /// Waits behind an unfinished delivery of its key: inserted parked,
    /// unleased, and not handed over (`rules::ordering`).
    pub parked: bool,
}

impl IngestTarget {
    /// Decides `parked` with `line` (this ingest's keys so far), given
    /// whether the database holds an unfinished delivery of the webhook and
    /// key; unkeyed targets are never parked.
    pub fn park_if(&mut self, line: &mut BatchLine, unfinished_in_database: bool) {
        if let Some(key) = &self.order_key {
            self.parked = line.parks(&self.webhook_id, key, unfinished_in_database);
        }
    }
}

/// The lease a new delivery to `target` is inserted with: none when it is
/// held or parked, else as [`Handoff::lease_for`] says.
pub(super) fn ingest_lease(handoff: Option<&Handoff>, target: &IngestTarget) -> Millis {
    if target.held || target.parked {
        0
    } else {
        Handoff::lease_for(handoff, &target.webhook_id)
    }
}

/// When a new delivery to `target` is due: at once, unless it is parked.
pub(super) fn ingest_due(received_at: Millis, target: &IngestTarget) -> Millis {
    if target.parked {
        PARKED
    } else {
        received_at
    }
}

/// The stored state of a new delivery to `target`.
pub(super) fn ingest_state(target: &IngestTarget) -> &'static str {
    if target.held {
        "held"
    } else {
        "pending"
    }
}

/// The jobs for an event's freshly inserted deliveries, to hand straight to
/// this node's dispatcher: those not inserted with a lease (held ones
/// included) stay behind.
/// `targets` pairs each delivery id with its target; `event` is only built
/// when something is handed over.
pub(super) fn handoff_jobs(
    handoff: Option<&Handoff>,
    targets: impl IntoIterator<Item = (i64, IngestTarget)>,
    event: impl FnOnce() -> EventBody,
) -> Vec<DeliveryJob> {
    let handed: Vec<_> = targets
        .into_iter()
        .filter_map(|(id, t)| {
            let lease = ingest_lease(handoff, &t);
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
            v3_secret_key: t.v3_secret_key,
            order_key: t.order_key,
        })
        .collect()
}

/// The signing secrets in force at `now`: current first, then the previous
/// one while its grace lasts.
pub(super) fn signing_secrets(
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
