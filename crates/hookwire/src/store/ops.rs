//! Operations: what `/metrics` and `/readyz` ask of the database as a whole.

use super::{Millis, StoreResult};
use async_trait::async_trait;

/// The whole database's backlog and webhook health, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpsStats {
    /// Deliveries pending across all licenses.
    pub pending: u64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<Millis>,
    /// Deliveries held for disabled webhooks, across all licenses.
    pub held: u64,
    /// Webhooks switched off (by their license or for failing), not deleted.
    pub disabled_webhooks: u64,
    /// The database's size on disk (SQLite: the file, its WAL and shared
    /// memory; PostgreSQL: `pg_database_size`).
    pub database_bytes: u64,
    /// When the oldest event still kept was received.
    pub oldest_kept_at: Option<Millis>,
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

/// Health and gauges of the database itself, across all licenses.
#[async_trait]
pub trait Ops: Send + Sync {
    /// The backlog and disabled webhooks of the whole database (all licenses).
    async fn ops_stats(&self) -> StoreResult<OpsStats>;
    /// How this process uses its database connections right now.
    fn pool_stats(&self) -> PoolStats;
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
}
