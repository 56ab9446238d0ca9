//! The delivery queue on SQLite: every write goes through the writer's group
//! commit; ingest, claims and records have files of their own.

use super::*;
use claim::claim;
use ingest::ingest_one;

#[async_trait]
impl DeliveryQueue for SqliteStore {
    async fn ingest(
        &self,
        events: Vec<NewEvent>,
        handoff: Option<Handoff>,
    ) -> StoreResult<Vec<IngestOutcome>> {
        self.writer
            .write(move |c| {
                events
                    .into_iter()
                    .map(|ev| ingest_one(c, ev, handoff.as_ref()))
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(unavailable)
            })
            .await
    }

    async fn claim_due(
        &self,
        now: Millis,
        limit: usize,
        lease_until: Millis,
        skip_webhooks: Vec<String>,
    ) -> StoreResult<Vec<DeliveryJob>> {
        let skip = serde_json::to_string(&skip_webhooks).unwrap_or_else(|_| "[]".into());
        self.writer
            .write(move |c| claim(c, now, limit, lease_until, &skip))
            .await
    }

    async fn release(&self, delivery_ids: Vec<i64>, due_at: Millis) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "UPDATE deliveries SET lease_until = 0, next_attempt_at = MAX(next_attempt_at, ?2)
                         WHERE id = ?1 AND state = 'pending'",
                    )
                    .map_err(unavailable)?;
                for id in delivery_ids {
                    stmt.execute(params![id, due_at]).map_err(unavailable)?;
                }
                Ok(())
            })
            .await
    }

    async fn record_attempt(&self, r: AttemptRecord) -> StoreResult<()> {
        self.recorder.record(r).await
    }

    async fn disable_webhook(
        &self,
        webhook_id: &str,
        reason: &str,
        failing_since_at_or_before: Option<Millis>,
    ) -> StoreResult<bool> {
        let (id, reason) = (webhook_id.to_string(), reason.to_string());
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE webhooks SET enabled = 0, disabled_reason = ?2
                     WHERE id = ?1 AND enabled = 1 AND deleted_at IS NULL
                       AND (?3 IS NULL OR (failing_since IS NOT NULL AND failing_since <= ?3))",
                    params![id, reason, failing_since_at_or_before],
                )
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn backlog(&self) -> StoreResult<Backlog> {
        self.read(|c| {
            // Two counts, each over its own partial index.
            c.prepare_cached(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'),
                        (SELECT COUNT(*) FROM deliveries WHERE state = 'held')",
            )?
            .query_row([], |r| {
                Ok(Backlog {
                    pending: r.get::<_, i64>(0)?.max(0) as u64,
                    held: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })
        })
        .await
    }

    async fn wake_stranded(&self, now: Millis) -> StoreResult<u64> {
        let woken = self
            .writer
            .write(move |c| ordering::wake_stranded(c, now).map_err(unavailable))
            .await?;
        if woken > 0 {
            self.due.notify_one();
        }
        Ok(woken as u64)
    }

    fn due_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.due.clone())
    }
}
