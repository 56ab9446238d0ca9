//! Operations on SQLite: whole-database gauges, the connection pool, ping.

use super::*;

#[async_trait]
impl Ops for SqliteStore {
    async fn ops_stats(&self) -> StoreResult<OpsStats> {
        self.read(|c| {
            let (pending, oldest_pending_at) = c
                .prepare_cached(
                    "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE state = 'pending'",
                )?
                .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
            let held: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM deliveries WHERE state = 'held'")?
                .query_row([], |r| r.get(0))?;
            let disabled: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM webhooks WHERE enabled = 0 AND deleted_at IS NULL",
                )?
                .query_row([], |r| r.get(0))?;
            let oldest_kept_at = c
                .prepare_cached("SELECT received_at FROM events ORDER BY seq LIMIT 1")?
                .query_row([], |r| r.get(0))
                .optional()?;
            Ok(OpsStats {
                pending: pending.max(0) as u64,
                oldest_pending_at,
                held: held.max(0) as u64,
                disabled_webhooks: disabled.max(0) as u64,
                database_bytes: 0,
                oldest_kept_at,
            })
        })
        .await
        .map(|stats| OpsStats {
            database_bytes: self.database_bytes(),
            ..stats
        })
    }

    fn pool_stats(&self) -> PoolStats {
        // Readers are pooled and capped by `reader_slots`; the writer is one
        // more connection, always open.
        let in_use = (READERS - self.reader_slots.available_permits()) as u64;
        let idle = self.readers.lock().map(|v| v.len()).unwrap_or(0) as u64;
        PoolStats {
            open: idle + in_use + 1,
            in_use,
            max: READERS as u64 + 1,
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            .await
            .map(|_| ())
    }
}

impl SqliteStore {
    /// The database file with its WAL and shared-memory files, in bytes.
    fn database_bytes(&self) -> u64 {
        let size = |suffix: &str| {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        };
        size("") + size("-wal") + size("-shm")
    }
}
