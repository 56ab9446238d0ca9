//! Retention on SQLite: scans on a reader connection, deletes through the
//! writer, a batch of at most `PRUNE_BATCH` rows per writer operation, so
//! ingest queues behind one short batch at most. After a large prune,
//! incremental vacuum gives free pages back a step at a time.

use super::*;
use rules::retention::{
    delivery_verdict, event_verdict, scan, RetentionPeriod, ScannedDelivery, ScannedEvent,
    FINISHED_STATES_SQL, PRUNE_BATCH,
};
use std::time::{Duration, Instant};

/// Pages one `reclaim_space` step gives back (2 MiB at 4 KiB pages).
const RECLAIM_STEP_PAGES: i64 = 512;

fn license_retention_row(r: &Row<'_>) -> rusqlite::Result<LicenseRetention> {
    Ok(LicenseRetention {
        license_id: r.get(0)?,
        retention: r
            .get::<_, Option<i64>>(1)?
            .and_then(RetentionPeriod::from_millis),
        pruned_through_id: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
    })
}

const LICENSE_RETENTION_SQL: &str = "SELECT l.license_id, r.retention_ms, r.pruned_through_id
     FROM licenses l LEFT JOIN license_retention r ON r.license_id = l.license_id";

#[async_trait]
impl Retention for SqliteStore {
    async fn license_retention(&self, license_id: &str) -> StoreResult<Option<LicenseRetention>> {
        let id = license_id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("{LICENSE_RETENTION_SQL} WHERE l.license_id = ?1"))?
                .query_row([id], license_retention_row)
                .optional()
        })
        .await
    }

    async fn set_license_retention(
        &self,
        license_id: &str,
        retention: Option<RetentionPeriod>,
    ) -> StoreResult<bool> {
        let id = license_id.to_string();
        let ms = retention.map(RetentionPeriod::as_millis);
        self.writer
            .write(move |c| {
                let known = c
                    .prepare_cached("SELECT 1 FROM licenses WHERE license_id = ?1")
                    .and_then(|mut s| s.exists([&id]))
                    .map_err(unavailable)?;
                if known {
                    c.prepare_cached(
                        "INSERT INTO license_retention (license_id, retention_ms) VALUES (?1, ?2)
                         ON CONFLICT (license_id) DO UPDATE SET retention_ms = excluded.retention_ms",
                    )
                    .and_then(|mut s| s.execute(params![id, ms]))
                    .map_err(unavailable)?;
                }
                Ok(known)
            })
            .await
    }

    async fn license_retentions(&self) -> StoreResult<Vec<LicenseRetention>> {
        self.read(|c| {
            c.prepare_cached(&format!("{LICENSE_RETENTION_SQL} ORDER BY l.license_id"))?
                .query_map([], license_retention_row)?
                .collect()
        })
        .await
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
                    "DELETE FROM visitors WHERE license_id = ?1 AND visitor_id IN (
                       SELECT visitor_id FROM visitors
                       WHERE license_id = ?1 AND last_seen_at < ?2 LIMIT ?3)",
                    scope,
                )
                .await
            }
            LicenseRows::VisitorDetails => {
                self.delete_bounded(
                    "DELETE FROM visitor_details WHERE license_id = ?1 AND (visitor_id, set_id) IN (
                       SELECT visitor_id, set_id FROM visitor_details
                       WHERE license_id = ?1 AND updated_at < ?2 LIMIT ?3)",
                    scope,
                )
                .await
            }
            LicenseRows::DeletedWebhooks => {
                self.delete_bounded(
                    "DELETE FROM webhooks WHERE id IN (
                       SELECT w.id FROM webhooks w
                       WHERE w.license_id = ?1 AND w.deleted_at IS NOT NULL AND w.deleted_at < ?2
                         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id)
                       LIMIT ?3)",
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
                   SELECT key FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)"
            }
            ExpiredRows::Alerts => {
                "DELETE FROM alerts WHERE id IN (
                   SELECT id FROM alerts WHERE state <> 'pending' AND updated_at < ?1 LIMIT ?2)"
            }
        };
        let deleted = self
            .timed_delete(move |c| {
                c.prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![cutoff, PRUNE_BATCH as i64]))
                    .map(|n| n as u64)
                    .map_err(unavailable)
            })
            .await?;
        Ok(PruneBatch::bounded(deleted.rows, PRUNE_BATCH, deleted.held))
    }

    async fn oldest_kept_delivery(&self, license_id: &str) -> StoreResult<Option<Millis>> {
        let id = license_id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT created_at FROM deliveries WHERE license_id = ?1 ORDER BY id LIMIT 1",
            )?
            .query_row([id], |r| r.get(0))
            .optional()
        })
        .await
    }

    async fn reclaim_space(&self) -> StoreResult<u64> {
        self.writer
            .write(|c| {
                let pragma = |name: &str| {
                    c.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                        .map_err(unavailable)
                };
                // 2 = incremental: databases created since retention came
                // (see `open`); older ones reuse free pages but keep them.
                if pragma("auto_vacuum")? != 2 {
                    return Ok(0);
                }
                let (free, total) = (pragma("freelist_count")?, pragma("page_count")?);
                // Space freed by the steady prune is reused by the next
                // minute's rows; only a large surplus (retention lowered, a
                // burst pruned) is worth giving back.
                if free < RECLAIM_STEP_PAGES || free * 4 < total {
                    return Ok(0);
                }
                c.execute_batch(&format!("PRAGMA incremental_vacuum({RECLAIM_STEP_PAGES})"))
                    .map_err(unavailable)?;
                Ok((free - pragma("freelist_count")?).max(0) as u64)
            })
            .await
    }

    async fn begin_prune_pass(&self) -> StoreResult<bool> {
        // One process serves a SQLite database (`void_leases`' lock).
        Ok(true)
    }

    async fn end_prune_pass(&self) {}
}

impl SqliteStore {
    /// One batch of a license's finished deliveries past the cutoff, with
    /// their attempts. Read on a reader; the writer deletes each id again
    /// only if it is still finished before the cutoff (a redelivery since
    /// keeps it).
    async fn prune_deliveries(&self, scope: PruneScope<'_>) -> StoreResult<PruneBatch> {
        let (license, after, cutoff) = (scope.license_id.to_string(), scope.after, scope.cutoff);
        let rows = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT id, state, created_at, updated_at FROM deliveries
                     WHERE license_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                )?
                .query_map(params![license, after, PRUNE_BATCH as i64], |r| {
                    Ok(ScannedDelivery {
                        id: r.get(0)?,
                        state: r.get(1)?,
                        created_at: r.get(2)?,
                        updated_at: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let found = scan(
            &rows,
            PRUNE_BATCH,
            |d| d.id,
            |d| delivery_verdict(d, cutoff),
        );
        let deleted = if found.prune.is_empty() {
            Deleted::NOTHING
        } else {
            let license = scope.license_id.to_string();
            let ids = found.prune;
            self.timed_delete(move |c| {
                delete_deliveries(c, &license, &ids, cutoff).map_err(unavailable)
            })
            .await?
        };
        Ok(PruneBatch {
            deleted: deleted.rows,
            resume_after: (!found.done).then(|| found.last_scanned.unwrap_or(after)),
            held: deleted.held,
        })
    }

    /// One batch of a license's events past the cutoff with no delivery left.
    async fn prune_events(&self, scope: PruneScope<'_>) -> StoreResult<PruneBatch> {
        let (license, after, cutoff) = (scope.license_id.to_string(), scope.after, scope.cutoff);
        let rows = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT e.seq, e.received_at,
                            EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)
                     FROM events e WHERE e.license_id = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT ?3",
                )?
                .query_map(params![license, after, PRUNE_BATCH as i64], |r| {
                    Ok(ScannedEvent {
                        seq: r.get(0)?,
                        received_at: r.get(1)?,
                        has_deliveries: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let found = scan(&rows, PRUNE_BATCH, |e| e.seq, |e| event_verdict(e, cutoff));
        let deleted = if found.prune.is_empty() {
            Deleted::NOTHING
        } else {
            let seqs = found.prune;
            self.timed_delete(move |c| {
                let mut delete = c
                    .prepare_cached(
                        "DELETE FROM events WHERE seq = ?1
                             AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1)",
                    )
                    .map_err(unavailable)?;
                let mut n = 0;
                for seq in seqs {
                    n += delete.execute([seq]).map_err(unavailable)? as u64;
                }
                Ok(n)
            })
            .await?
        };
        Ok(PruneBatch {
            deleted: deleted.rows,
            resume_after: (!found.done).then(|| found.last_scanned.unwrap_or(after)),
            held: deleted.held,
        })
    }

    /// Runs a `DELETE ... LIMIT` taking (license, cutoff, limit) in the writer.
    async fn delete_bounded(
        &self,
        sql: &'static str,
        scope: PruneScope<'_>,
    ) -> StoreResult<PruneBatch> {
        let (license, cutoff) = (scope.license_id.to_string(), scope.cutoff);
        let deleted = self
            .timed_delete(move |c| {
                c.prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![license, cutoff, PRUNE_BATCH as i64]))
                    .map(|n| n as u64)
                    .map_err(unavailable)
            })
            .await?;
        Ok(PruneBatch::bounded(deleted.rows, PRUNE_BATCH, deleted.held))
    }

    /// Runs a prune's delete in the writer, timing it there: the time it
    /// held the writer, without its wait in the writer's queue.
    async fn timed_delete<F>(&self, delete: F) -> StoreResult<Deleted>
    where
        F: FnOnce(&Connection) -> StoreResult<u64> + Send + 'static,
    {
        self.writer
            .write(move |c| {
                let began = Instant::now();
                let rows = delete(c)?;
                Ok(Deleted {
                    rows,
                    held: began.elapsed(),
                })
            })
            .await
    }
}

/// What one of the prune's deletes did in the writer.
struct Deleted {
    rows: u64,
    held: Duration,
}

impl Deleted {
    const NOTHING: Deleted = Deleted {
        rows: 0,
        held: Duration::ZERO,
    };
}

/// Deletes the deliveries `ids` that are still finished before `cutoff`,
/// their attempts, and notes the highest id pruned of the license.
fn delete_deliveries(
    c: &Connection,
    license: &str,
    ids: &[i64],
    cutoff: Millis,
) -> rusqlite::Result<u64> {
    let mut delete = c.prepare_cached(&format!(
        "DELETE FROM deliveries WHERE id = ?1 AND state IN {FINISHED_STATES_SQL} AND updated_at < ?2"
    ))?;
    let mut attempts = c.prepare_cached("DELETE FROM attempts WHERE delivery_id = ?1")?;
    let mut deleted = 0;
    let mut highest = 0;
    for &id in ids {
        if delete.execute(params![id, cutoff])? == 1 {
            attempts.execute([id])?;
            deleted += 1;
            highest = highest.max(id);
        }
    }
    if deleted > 0 {
        c.prepare_cached(
            "INSERT INTO license_retention (license_id, pruned_through_id) VALUES (?1, ?2)
             ON CONFLICT (license_id) DO UPDATE
             SET pruned_through_id = max(pruned_through_id, excluded.pruned_through_id)",
        )?
        .execute(params![license, highest])?;
    }
    Ok(deleted)
}
