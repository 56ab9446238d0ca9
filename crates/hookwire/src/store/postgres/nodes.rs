//! Nodes on PostgreSQL: this process's node id, its heartbeat, and taking
//! over the leases of nodes whose heartbeat went stale (`schema_11.sql`).
//!
//! Every time is the database's `now()`: whether a node is dead is decided
//! on one clock, whatever the nodes' clocks say. The heartbeat has a
//! connection of its own, so a pool busy with ingest never delays it. A
//! takeover runs on the pool and passes over rows another transaction has
//! locked (a dead node's transaction the server has not yet noticed is
//! gone): those leases run out as they would have without a takeover.

use super::*;
use std::sync::atomic::{AtomicI64, Ordering};

/// The id this process's leases name; 0 until it first joins. Shared with
/// the ingest and record groups, which write and check it.
#[derive(Clone, Default)]
pub(super) struct NodeId(Arc<AtomicI64>);

impl NodeId {
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The heartbeat's connection: opened when first needed, and again after
/// it broke.
pub(super) struct HeartbeatLink {
    config: tokio_postgres::Config,
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl HeartbeatLink {
    pub fn new(config: tokio_postgres::Config) -> Self {
        HeartbeatLink {
            config,
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// Runs `sql` with `params` and answers its one row, on the heartbeat's
    /// connection; a broken connection is dropped, to be opened anew next time.
    async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Row> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, connection) = self.config.connect(NoTls).await.map_err(db_error)?;
            tokio::spawn(connection);
            *slot = Some(client);
        }
        let Some(client) = slot.as_ref() else {
            return Err(StoreError::Closed);
        };
        let row = client.query_one(sql, params).await;
        if row.is_err() && client.is_closed() {
            *slot = None;
        }
        row.map_err(db_error)
    }
}

/// A new node's id: random, never 0 (which means "not joined").
fn new_node_id() -> i64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    match i64::from_le_bytes(bytes) {
        0 => 1,
        id => id,
    }
}

/// The part of a takeover that frees the pending leases in `table` (the
/// deliveries or the alerts) of the nodes in `dead`. The range scanned is
/// the leased rows' (`lease_until > 0`, in `deliveries_claimable` for the
/// deliveries); rows another transaction has locked are passed over.
fn freeing(table: &str) -> String {
    format!(
        "{table}_freed AS (
             UPDATE {table} t SET lease_until = 0, leased_by = NULL
             FROM (SELECT id FROM {table}
                   WHERE state = 'pending' AND lease_until > 0
                     AND leased_by IN (SELECT id FROM dead)
                   FOR UPDATE SKIP LOCKED) held
             WHERE t.id = held.id
             RETURNING 1)"
    )
}

/// The counts every heartbeat and join answers, over the nodes table as it
/// was before this statement's own write: fresh other nodes ($2 seconds),
/// stale other nodes not yet taken over, and rows old enough to forget ($3).
const COUNTS: &str = "count(*) FILTER (WHERE id <> $1 AND taken_over_at IS NULL
                                          AND beat_at >= now() - make_interval(secs => $2)),
         count(*) FILTER (WHERE id <> $1 AND taken_over_at IS NULL
                                AND beat_at < now() - make_interval(secs => $2)),
         count(*) FILTER (WHERE taken_over_at < now() - make_interval(secs => $3))";

fn beat_from(row: &Row) -> Beat {
    let (registered, fresh, stale, old): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    Beat {
        registered: registered > 0,
        alive: (fresh + registered).max(0) as u64,
        takeover_due: stale > 0 || old > 0,
    }
}

#[async_trait]
impl Nodes for PgStore {
    fn shared(&self) -> bool {
        true
    }

    async fn join(&self, label: &str, times: NodeTimes) -> StoreResult<Beat> {
        let id = new_node_id();
        let row = self
            .heartbeat
            .query_one(
                &format!(
                    "WITH joined AS (
                         INSERT INTO nodes (id, label) VALUES ($1, $4)
                         ON CONFLICT (id) DO NOTHING RETURNING id)
                     SELECT (SELECT count(*) FROM joined), {COUNTS} FROM nodes"
                ),
                &[
                    &id,
                    &times.dead_after.as_secs_f64(),
                    &times.forget_after.as_secs_f64(),
                    &label,
                ],
            )
            .await?;
        let beat = beat_from(&row);
        if beat.registered {
            self.node.0.store(id, Ordering::Relaxed);
        }
        Ok(beat)
    }

    async fn heartbeat(&self, times: NodeTimes) -> StoreResult<Beat> {
        let row = self
            .heartbeat
            .query_one(
                &format!(
                    "WITH beat AS (
                         UPDATE nodes SET beat_at = now()
                         WHERE id = $1 AND taken_over_at IS NULL RETURNING id)
                     SELECT (SELECT count(*) FROM beat), {COUNTS} FROM nodes"
                ),
                &[
                    &self.node.get(),
                    &times.dead_after.as_secs_f64(),
                    &times.forget_after.as_secs_f64(),
                ],
            )
            .await?;
        Ok(beat_from(&row))
    }

    async fn take_over(&self, times: NodeTimes) -> StoreResult<Takeover> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        // A dead node's transaction the server still thinks open may hold
        // its row: wait a little, then try again at the next heartbeat.
        tx.batch_execute("SET LOCAL lock_timeout = '2s'")
            .await
            .map_err(db_error)?;
        // `dead` locks each node row it marks, so of two nodes taking over at
        // once the second finds it marked; a heartbeat that committed first
        // makes the row fresh again, and it is not marked.
        let row = tx
            .query_one(
                &format!(
                    "WITH dead AS (
                         UPDATE nodes SET taken_over_at = now()
                         WHERE id <> $1 AND taken_over_at IS NULL
                           AND beat_at < now() - make_interval(secs => $2)
                         RETURNING id, label),
                     {},
                     {},
                     forgotten AS (
                         DELETE FROM nodes WHERE taken_over_at < now() - make_interval(secs => $3)
                         RETURNING 1)
                     SELECT ARRAY(SELECT label FROM dead ORDER BY label),
                            (SELECT count(*) FROM deliveries_freed),
                            (SELECT count(*) FROM alerts_freed),
                            (SELECT count(*) FROM forgotten)",
                    freeing("deliveries"),
                    freeing("alerts")
                ),
                &[
                    &self.node.get(),
                    &times.dead_after.as_secs_f64(),
                    &times.forget_after.as_secs_f64(),
                ],
            )
            .await
            .map_err(db_error)?;
        let (deliveries, alerts, forgotten): (i64, i64, i64) = (row.get(1), row.get(2), row.get(3));
        if deliveries > 0 {
            notify_due(&tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(Takeover {
            nodes: row.get(0),
            deliveries: deliveries.max(0) as u64,
            alerts: alerts.max(0) as u64,
            forgotten: forgotten.max(0) as u64,
        })
    }
}
