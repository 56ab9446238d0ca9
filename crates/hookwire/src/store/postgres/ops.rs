//! Operations on PostgreSQL: whole-database gauges, the pool, ping.

use super::*;

#[async_trait]
impl Ops for PgStore {
    async fn ops_stats(&self) -> StoreResult<OpsStats> {
        let r = self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'),
                        (SELECT MIN(created_at) FROM deliveries WHERE state = 'pending'),
                        (SELECT COUNT(*) FROM webhooks WHERE NOT enabled AND deleted_at IS NULL),
                        (SELECT COUNT(*) FROM deliveries WHERE state = 'held'),
                        pg_database_size(current_database()),
                        (SELECT received_at FROM events ORDER BY seq LIMIT 1)",
                &[],
            )
            .await
            .map_err(db_error)?;
        let (pending, disabled, held): (i64, i64, i64) = (r.get(0), r.get(2), r.get(3));
        Ok(OpsStats {
            pending: pending.max(0) as u64,
            oldest_pending_at: r.get(1),
            held: held.max(0) as u64,
            disabled_webhooks: disabled.max(0) as u64,
            database_bytes: r.get::<_, i64>(4).max(0) as u64,
            oldest_kept_at: r.get(5),
        })
    }

    fn pool_stats(&self) -> PoolStats {
        let status = self.pool.status();
        PoolStats {
            open: status.size as u64,
            in_use: status.size.saturating_sub(status.available) as u64,
            max: status.max_size as u64,
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client()
            .await?
            .execute("SELECT 1", &[])
            .await
            .map(|_| ())
            .map_err(db_error)
    }
}
