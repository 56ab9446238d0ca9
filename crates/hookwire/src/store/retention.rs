//! Retention: each license's retention, and the prune batches that remove
//! what is past it (the engine's `prune` task runs them).
//!
//! What goes and when is decided in [`rules::retention`](super::rules::retention);
//! a backend scans and deletes in batches of at most
//! [`PRUNE_BATCH`](super::rules::retention::PRUNE_BATCH) rows, each its own
//! short transaction, so ingest never waits long behind a prune.

use super::rules::retention::RetentionPeriod;
use super::{Millis, StoreResult};
use async_trait::async_trait;
use std::time::Duration;

/// What of a license's rows a prune batch takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseRows {
    /// Finished deliveries past retention, with their attempts.
    Deliveries,
    /// Events past retention with no delivery left.
    Events,
    /// Visitors not seen within retention.
    Visitors,
    /// Visitor details sets not updated within retention.
    VisitorDetails,
    /// Webhooks deleted before the cutoff, once no delivery of theirs is left.
    DeletedWebhooks,
}

/// What a prune batch takes across licenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiredRows {
    /// Idempotency keys claimed before the cutoff (their window is over).
    IdempotencyKeys,
    /// Operator alerts no longer pending, finished before the cutoff.
    Alerts,
}

impl LicenseRows {
    /// In the order a pass takes them: deliveries before the events and
    /// webhooks they keep.
    pub const ALL: [LicenseRows; 5] = [
        LicenseRows::Deliveries,
        LicenseRows::Events,
        LicenseRows::DeletedWebhooks,
        LicenseRows::Visitors,
        LicenseRows::VisitorDetails,
    ];

    /// The `what` label of `hookwire_pruned_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseRows::Deliveries => "deliveries",
            LicenseRows::Events => "events",
            LicenseRows::Visitors => "visitors",
            LicenseRows::VisitorDetails => "visitor_details",
            LicenseRows::DeletedWebhooks => "webhooks",
        }
    }
}

impl ExpiredRows {
    pub const ALL: [ExpiredRows; 2] = [ExpiredRows::IdempotencyKeys, ExpiredRows::Alerts];

    /// The `what` label of `hookwire_pruned_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiredRows::IdempotencyKeys => "idempotency_keys",
            ExpiredRows::Alerts => "alerts",
        }
    }
}

/// A license's retention as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRetention {
    pub license_id: String,
    /// Its own retention; `None`: the configured default.
    pub retention: Option<RetentionPeriod>,
    /// The highest id of its deliveries pruned so far (0: none): a delivery
    /// asked for by a smaller id that is not there was pruned.
    pub pruned_through_id: i64,
}

/// Where one prune batch of a license's rows starts and what it may take.
#[derive(Debug, Clone, Copy)]
pub struct PruneScope<'a> {
    pub license_id: &'a str,
    /// Now minus the license's retention.
    pub cutoff: Millis,
    /// Rows with ids after this one (0: from the start).
    pub after: i64,
}

/// What one prune batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneBatch {
    pub deleted: u64,
    /// Where the next batch starts; `None`: this kind is done for this pass.
    pub resume_after: Option<i64>,
    /// How long its delete held the database: on SQLite the writer thread's
    /// time on it, not its wait in the writer's queue (which grows with
    /// ingest and is no cost of the prune's); on PostgreSQL the delete's
    /// own time. The prune rests in proportion to it.
    pub held: Duration,
}

impl PruneBatch {
    /// A batch that deleted by a bounded `DELETE ... LIMIT`: more may
    /// remain only if it took as many as it could.
    pub fn bounded(deleted: u64, limit: usize, held: Duration) -> Self {
        PruneBatch {
            deleted,
            resume_after: (deleted >= limit as u64).then_some(0),
            held,
        }
    }
}

/// Retention settings and the prune's batches.
#[async_trait]
pub trait Retention: Send + Sync {
    /// A license's retention; `None` if there is no such license.
    async fn license_retention(&self, license_id: &str) -> StoreResult<Option<LicenseRetention>>;
    /// Sets a license's own retention (`None`: back to the default).
    /// False if there is no such license.
    async fn set_license_retention(
        &self,
        license_id: &str,
        retention: Option<RetentionPeriod>,
    ) -> StoreResult<bool>;
    /// Every license with its retention: what a prune pass goes through.
    async fn license_retentions(&self) -> StoreResult<Vec<LicenseRetention>>;
    /// Deletes one batch of a license's rows past `scope.cutoff`.
    async fn prune_license_batch(
        &self,
        what: LicenseRows,
        scope: PruneScope<'_>,
    ) -> StoreResult<PruneBatch>;
    /// Deletes one batch of `what` from before `cutoff`, across licenses.
    async fn prune_expired_batch(
        &self,
        what: ExpiredRows,
        cutoff: Millis,
    ) -> StoreResult<PruneBatch>;
    /// When the license's oldest kept delivery was made.
    async fn oldest_kept_delivery(&self, license_id: &str) -> StoreResult<Option<Millis>>;
    /// Gives free space back to the file system after a large prune, one
    /// bounded step per call; answers the pages given back (0: nothing to
    /// do, or the backend reuses space by itself).
    async fn reclaim_space(&self) -> StoreResult<u64>;
    /// Begins a prune pass: false if another node is pruning (PostgreSQL's
    /// advisory lock); then this node skips the pass.
    async fn begin_prune_pass(&self) -> StoreResult<bool>;
    /// Ends the pass begun by `begin_prune_pass`, letting other nodes prune.
    async fn end_prune_pass(&self);
}
