//! The store: everything hookwire keeps, behind one interface.
//!
//! Only this module knows SQL. Each backend (`sqlite/`, `postgres/`) decides
//! atomically, inside its transactions, what must not be decided in one
//! node's memory: idempotency keys, the `chat_changed` tag rule, and which
//! node owns a delivery (leases). What those decisions are, apart from the
//! SQL that loads and keeps their state, is written once in [`rules`].
//!
//! [`Store`] is nine traits, one per concern, so a reader can hold one at a
//! time: [`Licenses`], [`Webhooks`], [`DeliveryQueue`] (the hot path),
//! [`DeliveryLog`], [`Visitors`], [`WebSessions`], [`Ops`], [`Alerts`]
//! (operator alerts), [`Retention`] (what is kept, and the prune),
//! [`Nodes`] (heartbeats and lease takeover) and [`V3Webhooks`] (LiveChat
//! v3.x registrations and ingest). Every backend implements all of them,
//! and `dyn Store` offers every method of each.

mod alerts;
mod licenses;
mod log;
mod nodes;
mod ops;
pub mod postgres;
mod queue;
mod retention;
pub mod rules;
pub mod sqlite;
mod v3_webhooks;
mod visitors;
mod web_sessions;
mod webhooks;

pub use alerts::{
    AlertGuard, AlertJob, AlertKind, AlertState, AlertView, Alerts, FailedDelivery, NewAlert,
};
pub use licenses::Licenses;
pub use log::{
    AttemptSample, AttemptSamples, AttemptView, DeliveryLog, DeliveryQuery, DeliveryState,
    DeliveryView, QueueStats, Redelivery, ReplayBatch, ReplayQuery, TokenGrant, TokenKey,
};
pub use nodes::{Beat, NodeTimes, Nodes, Takeover};
pub use ops::{Ops, OpsStats, PoolStats};
pub use queue::{
    AttemptRecord, Backlog, DeliveryJob, DeliveryQueue, EventBody, Handoff, IngestOutcome,
    NewEvent, NextState,
};
pub use retention::{
    ExpiredRows, LicenseRetention, LicenseRows, PruneBatch, PruneScope, Retention,
};
pub use v3_webhooks::{
    EventName, NewV3Event, NewV3Webhook, V3Body, V3Extra, V3Registered, V3Webhook, V3Webhooks,
    MAX_V3_WEBHOOKS_PER_ACTION,
};
pub use visitors::{DetailsSet, VisitorView, Visitors};
pub use web_sessions::{WebSession, WebSessions};
pub use webhooks::{HeldDeliveries, NewWebhook, Webhook, WebhookPatch, Webhooks};

use queue::{handoff_jobs, ingest_due, ingest_lease, ingest_state, signing_secrets, IngestTarget};
use std::sync::Arc;
use v3_webhooks::{admitted, v3_event_body, Admitted, Found};

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

/// Everything hookwire keeps: the concerns together, as the engine, the
/// API and the web app hold it (`Arc<dyn Store>`). Implemented for every
/// type that implements them all; a backend implements those, never this.
pub trait Store:
    Licenses
    + Webhooks
    + DeliveryQueue
    + DeliveryLog
    + Visitors
    + WebSessions
    + Ops
    + Alerts
    + Retention
    + Nodes
    + V3Webhooks
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: Licenses
        + Webhooks
        + DeliveryQueue
        + DeliveryLog
        + Visitors
        + WebSessions
        + Ops
        + Alerts
        + Retention
        + Nodes
        + V3Webhooks
        + Send
        + Sync
        + 'static
{
}

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}
