//! Retention on PostgreSQL: the same scans and batches as SQLite's, each
//! batch one short transaction that deletes by primary key (finished rows
//! no ingest or attempt touches, so no row lock is fought over). One node
//! prunes at a time: a pass holds a session advisory lock on a connection
//! taken out of the pool, so a node that dies mid-pass releases it with
//! its connection.

use super::*;
use rules::retention::{
    delivery_verdict, event_verdict, scan, RetentionPeriod, ScannedDelivery, ScannedEvent,
    FINISHED_STATES_SQL, PRUNE_BATCH,
};
use std::time::Instant;
use tokio::sync::Mutex;

/// The advisory lock key of a prune pass ("hookprun").
const PRUNE_LOCK: i64 = 0x686f_6f6b_7072_756e;

/// The connection that holds the prune lock while this node prunes.
#[derive(Default)]
pub(super) struct PruneLockHolder(Mutex<Option<deadpool_postgres::ClientWrapper>>);

fn license_retention_row(r: &Row) -> LicenseRetention {
    LicenseRetention {
        license_id: r.get(0),
        retention: r
            .get::<_, Option<i64>>(1)
            .and_then(RetentionPeriod::from_millis),
        pruned_through_id: r.get::<_, Option<i64>>(2).unwrap_or(0),
    }
}

const LICENSE_RETENTION_SQL: &str = "SELECT l.license_id, r.retention_ms, r.pruned_through_id
     FROM licenses l LEFT JOIN license_retention r ON r.license_id = l.license_id";

#[async_trait]
impl Retention for PgStore {
    async fn license_retention(&self, license_id: &str) -> StoreResult<Option<LicenseRetention>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("{LICENSE_RETENTION_SQL} WHERE l.license_id = $1"),
                &[&license_id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(license_retention_row))
    }

    async fn set_license_retention(
        &self,
        license_id: &str,
        retention: Option<RetentionPeriod>,
    ) -> StoreResult<bool> {
        let ms = retention.map(RetentionPeriod::as_millis);
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO license_retention (license_id, retention_ms)
                 SELECT license_id, $2 FROM licenses WHERE license_id = $1
                 ON CONFLICT (license_id) DO UPDATE SET retention_ms = excluded.retention_ms",
                &[&license_id, &ms],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    async fn license_retentions(&self) -> StoreResult<Vec<LicenseRetention>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("{LICENSE_RETENTION_SQL} ORDER BY l.license_id"),
                &[],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(license_retention_row).collect())
    }

    async fn prune_license_batch(
        &self,
        what: LicenseRows,
        scope: PruneScope<'_>,
    ) -> StoreResult<PruneBatch> {
        match what {
            LicenseRows::Deliveries => self.prune_deliveries(scope).await,
            LicenseRows::Events => self.prune_events(scope).await,
            LicenseRows::Visitors => {
                self.delete_bounded(
                    "DELETE FROM visitors WHERE license_id = $1 AND visitor_id IN (
                       SELECT visitor_id FROM visitors
                       WHERE license_id = $1 AND last_seen_at < $2 LIMIT $3)",
                    scope,
                )
                .await
            }
            LicenseRows::VisitorDetails => {
                self.delete_bounded(
                    "DELETE FROM visitor_details WHERE license_id = $1 AND (visitor_id, set_id) IN (
                       SELECT visitor_id, set_id FROM visitor_details
                       WHERE license_id = $1 AND updated_at < $2 LIMIT $3)",
                    scope,
                )
                .await
            }
            LicenseRows::DeletedWebhooks => {
                self.delete_bounded(
                    "DELETE FROM webhooks WHERE id IN (
                       SELECT w.id FROM webhooks w
                       WHERE w.license_id = $1 AND w.deleted_at IS NOT NULL AND w.deleted_at < $2
                         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id)
                       LIMIT $3)",
                    scope,
                )
                .await
            }
        }
    }

    async fn prune_expired_batch(
        &self,
        what: ExpiredRows,
        cutoff: Millis,
    ) -> StoreResult<PruneBatch> {
        let sql = match what {
            ExpiredRows::IdempotencyKeys => {
                "DELETE FROM idempotency_keys WHERE key IN (
                   SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)"
            }
            ExpiredRows::Alerts => {
                "DELETE FROM alerts WHERE id IN (
                   SELECT id FROM alerts WHERE state <> 'pending' AND updated_at < $1 LIMIT $2)"
            }
        };
        let client = self.client().await?;
        let began = Instant::now();
        let deleted = client
            .execute(sql, &[&cutoff, &(PRUNE_BATCH as i64)])
            .await
            .map_err(db_error)?;
        Ok(PruneBatch::bounded(deleted, PRUNE_BATCH, began.elapsed()))
    }

    async fn oldest_kept_delivery(&self, license_id: &str) -> StoreResult<Option<Millis>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT created_at FROM deliveries WHERE license_id = $1 ORDER BY id LIMIT 1",
                &[&license_id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn reclaim_space(&self) -> StoreResult<u64> {
        // Autovacuum marks deleted rows' space free for the tables' next
        // rows; the tables level off without giving space back.
        Ok(0)
    }

    async fn begin_prune_pass(&self) -> StoreResult<bool> {
        let object = self.client().await?;
        let locked: bool = object
            .query_one("SELECT pg_try_advisory_lock($1)", &[&PRUNE_LOCK])
            .await
            .map_err(db_error)?
            .get(0);
        if locked {
            // Out of the pool: the lock lives as long as this connection,
            // which no other query borrows; if the pass never ends (the
            // node dies), the lock goes with the connection.
            *self.pruning.0.lock().await = Some(deadpool_postgres::Object::take(object));
        }
        Ok(locked)
    }

    async fn end_prune_pass(&self) {
        if let Some(client) = self.pruning.0.lock().await.take() {
            // Dropping the connection releases the lock too; unlocking first
            // lets another node start at once.
            let _ = client
                .execute("SELECT pg_advisory_unlock($1)", &[&PRUNE_LOCK])
                .await;
        }
    }
}

impl PgStore {
    /// One batch of a license's finished deliveries past the cutoff, with
    /// their attempts; each id is deleted only if it is still finished
    /// before the cutoff when the batch runs.
    async fn prune_deliveries(&self, scope: PruneScope<'_>) -> StoreResult<PruneBatch> {
        let mut client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, state, created_at, updated_at FROM deliveries
                 WHERE license_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&scope.license_id, &scope.after, &(PRUNE_BATCH as i64)],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| ScannedDelivery {
                id: r.get(0),
                state: r.get(1),
                created_at: r.get(2),
                updated_at: r.get(3),
            })
            .collect::<Vec<_>>();
        let found = scan(
            &rows,
            PRUNE_BATCH,
            |d| d.id,
            |d| delivery_verdict(d, scope.cutoff),
        );
        let mut deleted = 0;
        let began = Instant::now();
        if !found.prune.is_empty() {
            let tx = client.transaction().await.map_err(db_error)?;
            let gone: Vec<i64> = tx
                .query(
                    &format!(
                        "DELETE FROM deliveries WHERE id = ANY($1) AND state IN {FINISHED_STATES_SQL}
                         AND updated_at < $2 RETURNING id"
                    ),
                    &[&found.prune, &scope.cutoff],
                )
                .await
                .map_err(db_error)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if let Some(highest) = gone.iter().max() {
                tx.execute("DELETE FROM attempts WHERE delivery_id = ANY($1)", &[&gone])
                    .await
                    .map_err(db_error)?;
                tx.execute(
                    "INSERT INTO license_retention (license_id, pruned_through_id) VALUES ($1, $2)
                     ON CONFLICT (license_id) DO UPDATE SET pruned_through_id =
                       GREATEST(license_retention.pruned_through_id, excluded.pruned_through_id)",
                    &[&scope.license_id, highest],
                )
                .await
                .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
            deleted = gone.len() as u64;
        }
        Ok(PruneBatch {
            deleted,
            resume_after: (!found.done).then(|| found.last_scanned.unwrap_or(scope.after)),
            held: began.elapsed(),
        })
    }

    /// One batch of a license's events past the cutoff with no delivery left.
    async fn prune_events(&self, scope: PruneScope<'_>) -> StoreResult<PruneBatch> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT e.seq, e.received_at,
                        EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)
                 FROM events e WHERE e.license_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
                &[&scope.license_id, &scope.after, &(PRUNE_BATCH as i64)],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| ScannedEvent {
                seq: r.get(0),
                received_at: r.get(1),
                has_deliveries: r.get(2),
            })
            .collect::<Vec<_>>();
        let found = scan(
            &rows,
            PRUNE_BATCH,
            |e| e.seq,
            |e| event_verdict(e, scope.cutoff),
        );
        let began = Instant::now();
        let deleted = if found.prune.is_empty() {
            0
        } else {
            client
                .execute(
                    "DELETE FROM events e WHERE e.seq = ANY($1)
                     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)",
                    &[&found.prune],
                )
                .await
                .map_err(db_error)?
        };
        Ok(PruneBatch {
            deleted,
            resume_after: (!found.done).then(|| found.last_scanned.unwrap_or(scope.after)),
            held: began.elapsed(),
        })
    }

    /// Runs a `DELETE ... LIMIT` taking (license, cutoff, limit).
    async fn delete_bounded(&self, sql: &str, scope: PruneScope<'_>) -> StoreResult<PruneBatch> {
        let client = self.client().await?;
        let began = Instant::now();
        let deleted = client
            .execute(
                sql,
                &[&scope.license_id, &scope.cutoff, &(PRUNE_BATCH as i64)],
            )
            .await
            .map_err(db_error)?;
        Ok(PruneBatch::bounded(deleted, PRUNE_BATCH, began.elapsed()))
    }
}
