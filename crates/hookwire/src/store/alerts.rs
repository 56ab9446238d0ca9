//! Operator alerts: hookwire's own events (a webhook disabled or failing,
//! deliveries failed for good, a backlog past its threshold), kept until the
//! operator's endpoint acknowledges them.
//!
//! Alerts are written only when something changes state (a webhook's health,
//! a delivery ending `failed`, the backlog crossing its threshold), never per
//! delivered attempt. They are claimed with a lease like deliveries, so when
//! several nodes share a database no alert is sent by two at once.

use super::{Millis, NextState, StoreResult};
use async_trait::async_trait;

/// What an alert tells; its `type` in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    WebhookDisabled,
    WebhookFailing,
    DeliveryFailed,
    BacklogHigh,
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [
        AlertKind::WebhookDisabled,
        AlertKind::WebhookFailing,
        AlertKind::DeliveryFailed,
        AlertKind::BacklogHigh,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::WebhookDisabled => "webhook.disabled",
            AlertKind::WebhookFailing => "webhook.failing",
            AlertKind::DeliveryFailed => "delivery.failed",
            AlertKind::BacklogHigh => "backlog.high",
        }
    }

    pub fn parse(text: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// An alert to keep and send.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// `msg_...`: the `webhook-id` header, the same on every retry so the
    /// operator's endpoint can deduplicate.
    pub id: String,
    pub kind: AlertKind,
    /// The license it concerns; `None` for the whole server (`backlog.high`).
    pub license_id: Option<String>,
    /// What it is about, for the once-per-period rules: the webhook's id for
    /// `webhook.*`, `None` otherwise.
    pub subject: Option<String>,
    /// The payload's `data`, a JSON object.
    pub data: String,
    pub created_at: Millis,
}

/// When an alert is not to be inserted after all; decided inside the
/// store's transaction, so nodes deciding at once agree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertGuard {
    /// Not if an alert of the same kind and subject was created at or after this.
    pub quiet_since: Option<Millis>,
    /// Only if the subject webhook's `failing_since` is this: its failing run
    /// was started by the attempt at that time (not by an earlier one).
    pub failing_since: Option<Millis>,
}

/// A delivery that ended `failed`, to be counted in its license's open
/// `delivery.failed` batch.
#[derive(Debug, Clone)]
pub struct FailedDelivery {
    pub license_id: String,
    pub delivery_id: i64,
    pub webhook_id: String,
    pub at: Millis,
    /// The id a new batch gets, if one has to be opened.
    pub new_alert_id: String,
    /// A license's batches are at least this far apart: a new one is due no
    /// earlier than this after the previous one was opened.
    pub spacing: Millis,
    /// The most delivery (and webhook) ids one batch lists; `count` goes on.
    pub max_ids: usize,
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Not yet acknowledged: due now or at its next retry.
    Pending,
    Delivered,
    /// Its retries ran out.
    Failed,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Delivered => "delivered",
            AlertState::Failed => "failed",
        }
    }
}

/// A claimed alert, ready to send.
#[derive(Debug, Clone)]
pub struct AlertJob {
    pub id: String,
    pub kind: AlertKind,
    pub created_at: Millis,
    /// The payload's `data`, a JSON object.
    pub data: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// An alert as the web app lists it.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub id: String,
    pub kind: AlertKind,
    pub created_at: Millis,
    pub data: String,
    pub state: AlertState,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// The alerts table: written on state changes, drained by `engine::alerts`.
#[async_trait]
pub trait Alerts: Send + Sync {
    /// Inserts `alert`, due now, unless `guard` says otherwise. True if inserted.
    async fn insert_alert(&self, alert: NewAlert, guard: AlertGuard) -> StoreResult<bool>;

    /// Counts a failed delivery in its license's open `delivery.failed`
    /// batch, opening one if none is open; a new batch is due at once, or
    /// `spacing` after the license's previous batch if that is later. A batch
    /// takes deliveries until it is claimed.
    async fn add_failed_delivery(&self, failed: FailedDelivery) -> StoreResult<()>;

    /// Leases up to `limit` due alerts (oldest due first) until `lease_until`;
    /// a claimed batch takes no more deliveries.
    async fn claim_alerts(
        &self,
        now: Millis,
        limit: usize,
        lease_until: Millis,
    ) -> StoreResult<Vec<AlertJob>>;

    /// Records an attempt at a claimed alert: delivered, retried at a time
    /// (`error` says why), or failed for good. Frees its lease. Nothing
    /// changes if the lease was taken over since (see
    /// [`Nodes`](super::Nodes)): the alert is another node's now.
    async fn record_alert_attempt(
        &self,
        id: &str,
        at: Millis,
        next: NextState,
        error: Option<String>,
    ) -> StoreResult<()>;

    /// A license's newest alerts, newest first.
    async fn recent_alerts(&self, license_id: &str, limit: usize) -> StoreResult<Vec<AlertView>>;
}
