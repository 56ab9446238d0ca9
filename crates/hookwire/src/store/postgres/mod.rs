//! The PostgreSQL store, for several nodes on one database.
//!
//! Nodes share work through the database alone: due deliveries are claimed
//! with `FOR UPDATE SKIP LOCKED` and leased to the claiming node, so no two
//! nodes attempt one at the same time, and a dead node's leases are taken
//! over as soon as its heartbeat goes stale (`nodes`). Decisions that
//! must hold across nodes (idempotency keys, the `chat_changed` tag rule) are
//! made under row locks inside the ingest transaction. `NOTIFY hookwire_due`
//! wakes every node's poller when work becomes due that no node holds.
//!
//! This file connects, migrates and holds what the concerns share (error
//! mapping, planner settings, the event columns); each trait of [`Store`]
//! has its file: `licenses`, `webhooks`, `queue` (with `ingest`, `record`,
//! `group` and `pipeline` for the hot path), `log`, `visitors`, `ops`,
//! `alerts`, `nodes`, `v3_webhooks`.

mod alerts;
mod group;
mod ingest;
mod licenses;
mod listen;
mod log;
mod nodes;
mod ops;
mod ordering;
mod pipeline;
mod queue;
mod record;
mod retention;
mod v3_webhooks;
mod visitors;
mod web_sessions;
mod webhooks;

use super::*;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use group::{Group, GroupFailure, GroupWork};
use hookwire_livechat::{DataType, DataTypes, EventType};
use ingest::{notify_due, IngestWork};
use nodes::{HeartbeatLink, NodeId};
use record::RecordWork;
use rules::rows::EventRow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

const MIGRATIONS: &[&str] = &[
    include_str!("schema_1.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
    include_str!("schema_6.sql"),
    include_str!("schema_7.sql"),
    include_str!("schema_8.sql"),
    include_str!("schema_9.sql"),
    include_str!("schema_10.sql"),
    include_str!("schema_11.sql"),
    include_str!("schema_12.sql"),
    include_str!("schema_13.sql"),
];
/// Any fixed number: the advisory lock that serializes migrations across nodes.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7769_7265;
const DUE_CHANNEL: &str = "hookwire_due";

/// Planner settings for a transaction whose statements find their rows by
/// key (deliveries by id, chats by license and chat): only nested loops
/// over indexes.
///
/// A prepared statement's generic plan is made once per connection and kept
/// until the table's statistics change, which on a fresh database means
/// until autovacuum first analyzes it (a minute or more). Made while the
/// table was nearly empty, the plan was a sequential scan (or a scan of a
/// whole partial index), hash-joined with the batch: cheap then, and then a
/// few milliseconds per statement and growing with the table, most of
/// PostgreSQL's CPU under load (BENCHMARKS.md). By id, through the primary
/// key, is the right plan at every size. For the same reason conditions
/// are written `(state = 'pending') IS TRUE` (the same: `state` is NOT
/// NULL): plain, it matches the predicate of the partial indexes on pending
/// rows, which hold an entry for every finished delivery until the next
/// vacuum.
const BY_ID_PLANS: &str =
    "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

/// Largest group: events per ingest transaction, records per record one.
const MAX_GROUP: usize = 1_000;

pub struct PgStore {
    pool: Pool,
    ingests: Group<IngestWork>,
    records: Group<RecordWork>,
    due: Arc<Notify>,
    _listener: tokio::task::JoinHandle<()>,
    /// The connection holding the prune lock during a prune pass.
    pruning: retention::PruneLockHolder,
    /// The node this process is now: the id its leases name.
    node: NodeId,
    /// The heartbeat's own connection, apart from the pool.
    heartbeat: HeartbeatLink,
}

fn db_error(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        let what = e
            .as_db_error()
            .and_then(|d| d.constraint())
            .unwrap_or("a unique key");
        return StoreError::Conflict(what.to_string());
    }
    StoreError::unavailable(e)
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::unavailable(format!("database connection: {e}"))
}

/// A connection for a group's transaction; none to be had fails the group
/// at once (retrying its requests alone would not find one either).
async fn group_client(pool: &Pool) -> Result<deadpool_postgres::Object, GroupFailure> {
    pool.get()
        .await
        .map_err(|e| GroupFailure::unreachable(pool_error(e)))
}

impl PgStore {
    /// Connects, runs the migrations (one node at a time), and starts
    /// listening for due-work notifications.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::unavailable(format!("invalid PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(StoreError::unavailable)?;
        migrate(&pool).await?;
        let due = Arc::new(Notify::new());
        let listener = tokio::spawn(listen::run(config.clone(), DUE_CHANNEL, due.clone()));
        let node = NodeId::default();
        // Few groups, so each is large: more groups at once measured slower
        // (more statements and WAL flushes for the same events). Two ingest
        // groups let one commit while the next runs its statements.
        let ingests = Group::start(
            IngestWork {
                pool: pool.clone(),
                node: node.clone(),
            },
            MAX_GROUP,
            2,
        );
        let records = Group::start(
            RecordWork {
                pool: pool.clone(),
                node: node.clone(),
            },
            MAX_GROUP,
            1,
        );
        Ok(PgStore {
            pool,
            ingests,
            records,
            due,
            _listener: listener,
            pruning: Default::default(),
            node,
            heartbeat: HeartbeatLink::new(config),
        })
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }
}

async fn migrate(pool: &Pool) -> StoreResult<()> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS hookwire_schema (version INTEGER NOT NULL)")
        .await
        .map_err(db_error)?;
    let version: i32 = tx
        .query_opt("SELECT version FROM hookwire_schema", &[])
        .await
        .map_err(db_error)?
        .map(|r| r.get(0))
        .unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::unavailable(format!("migration {}: {e}", i + 1)))?;
    }
    tx.execute("DELETE FROM hookwire_schema", &[])
        .await
        .map_err(db_error)?;
    tx.execute(
        "INSERT INTO hookwire_schema (version) VALUES ($1)",
        &[&(MIGRATIONS.len() as i32)],
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

/// An event's body from column `first` on: unique id, license, type, then
/// the four sections (read by `rules::rows`); a v3 event's payload and
/// extra at `v3_first` and the one after.
fn event_from_row(row: &Row, first: usize, v3_first: usize) -> StoreResult<EventBody> {
    EventRow {
        unique_id: row.get(first),
        license_id: row.get(first + 1),
        event_type: row.get(first + 2),
        sections: [
            row.get(first + 3),
            row.get(first + 4),
            row.get(first + 5),
            row.get(first + 6),
        ],
        v3_payload: row.get(v3_first),
        v3_extra: row.get(v3_first + 1),
    }
    .into_body()
}
