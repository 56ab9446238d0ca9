//! The delivery queue on PostgreSQL: ingests and records go through their
//! group commits (`ingest`, `record`); claims lease with `FOR UPDATE SKIP
//! LOCKED`, so nodes never claim the same delivery. Every lease names the
//! node holding it (`leased_by`): a give-back or a record takes effect only
//! while it still names this node (see `nodes`).

use super::*;
use ingest::IngestRequest;

#[async_trait]
impl DeliveryQueue for PgStore {
    async fn ingest(
        &self,
        events: Vec<NewEvent>,
        handoff: Option<Handoff>,
    ) -> StoreResult<Vec<IngestOutcome>> {
        self.ingests.submit(IngestRequest { events, handoff }).await
    }

    async fn claim_due(
        &self,
        now: Millis,
        limit: usize,
        lease_until: Millis,
        skip_webhooks: Vec<String>,
    ) -> StoreResult<Vec<DeliveryJob>> {
        let rows = self
            .client()
            .await?
            .query(
                // Leases that ran out first, then unleased deliveries (every
                // give-back sets lease_until to 0): each is one range of the
                // deliveries_claimable index, so a claim never walks the rows
                // leased to some node. `due` stops pulling (and locking) rows
                // once it has $2. Ties (deliveries made due together, such
                // as a re-enabled webhook's held ones, due at their creation)
                // go in id order, the order their events came. A keyed
                // delivery (an ordered webhook's) goes only first in its
                // key's line (`rules::ordering`); parked ones are never due.
                "WITH expired AS (
                     SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                     WHERE d.state = 'pending' AND d.lease_until > 0 AND d.lease_until <= $1
                       AND d.next_attempt_at <= $1
                       AND w.enabled AND w.deleted_at IS NULL AND NOT (d.webhook_id = ANY($4))
                       AND (d.order_key IS NULL OR NOT EXISTS (
                            SELECT 1 FROM deliveries p
                            WHERE p.webhook_id = d.webhook_id AND p.order_key = d.order_key
                              AND p.order_key IS NOT NULL AND p.state IN ('pending', 'held')
                              AND p.id < d.id))
                     ORDER BY d.next_attempt_at
                     LIMIT $2
                     FOR UPDATE OF d SKIP LOCKED),
                 free AS (
                     SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                     WHERE d.state = 'pending' AND d.lease_until = 0 AND d.next_attempt_at <= $1
                       AND w.enabled AND w.deleted_at IS NULL AND NOT (d.webhook_id = ANY($4))
                       AND (d.order_key IS NULL OR NOT EXISTS (
                            SELECT 1 FROM deliveries p
                            WHERE p.webhook_id = d.webhook_id AND p.order_key = d.order_key
                              AND p.order_key IS NOT NULL AND p.state IN ('pending', 'held')
                              AND p.id < d.id))
                     ORDER BY d.next_attempt_at
                     LIMIT $2
                     FOR UPDATE OF d SKIP LOCKED),
                 due AS (SELECT id FROM expired UNION ALL SELECT id FROM free LIMIT $2),
                 leased AS (
                     UPDATE deliveries d SET lease_until = $3, leased_by = $5 FROM due WHERE d.id = due.id
                     RETURNING d.id, d.webhook_id, d.data_types, d.attempts_in_round, d.event_seq,
                               d.next_attempt_at, d.order_key)
                 SELECT l.id, l.webhook_id, w.url, l.data_types, l.attempts_in_round, l.event_seq,
                        e.unique_id, e.license_id, e.event_type, e.chat, e.visitor, e.pre_chat_survey, e.ticket,
                        w.signing_secret, w.previous_signing_secret, w.previous_secret_until,
                        w.max_per_second, e.v3_payload, e.v3_extra, w.v3_secret_key, l.order_key
                 FROM leased l JOIN webhooks w ON w.id = l.webhook_id JOIN events e ON e.seq = l.event_seq
                 ORDER BY l.next_attempt_at, l.id",
                &[
                    &now,
                    &(limit as i64),
                    &lease_until,
                    &skip_webhooks,
                    &self.node.get(),
                ],
            )
            .await
            .map_err(db_error)?;
        let mut events: HashMap<i64, Arc<EventBody>> = HashMap::new();
        let mut jobs = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq: i64 = r.get(5);
            let event = match events.get(&seq) {
                Some(e) => e.clone(),
                None => {
                    let e = Arc::new(event_from_row(r, 6, 17)?);
                    events.insert(seq, e.clone());
                    e
                }
            };
            let bits: i16 = r.get(3);
            let attempts: i32 = r.get(4);
            jobs.push(DeliveryJob {
                delivery_id: r.get(0),
                webhook_id: r.get(1),
                url: r.get(2),
                data_types: DataTypes::from_bits(bits as u8),
                attempts_in_round: attempts.max(0) as u32,
                lease_until,
                event,
                signing_secrets: signing_secrets(r.get(13), r.get(14), r.get(15), now),
                max_per_second: r.get::<_, Option<i32>>(16).map(|n| n.max(0) as u32),
                v3_secret_key: r.get(19),
                order_key: r.get(20),
            });
        }
        Ok(jobs)
    }

    async fn release(&self, delivery_ids: Vec<i64>, due_at: Millis) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(BY_ID_PLANS).await.map_err(db_error)?;
        tx.execute(
            // `IS TRUE`: see `BY_ID_PLANS`. Only leases still this node's:
            // one taken over meanwhile is another's now.
            "UPDATE deliveries SET lease_until = 0, leased_by = NULL,
                 next_attempt_at = GREATEST(next_attempt_at, $2)
             WHERE id = ANY($1) AND (state = 'pending') IS TRUE AND leased_by = $3",
            &[&delivery_ids, &due_at, &self.node.get()],
        )
        .await
        .map_err(db_error)?;
        notify_due(&tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn record_attempt(&self, r: AttemptRecord) -> StoreResult<()> {
        self.records.submit(r).await
    }

    async fn disable_webhook(
        &self,
        webhook_id: &str,
        reason: &str,
        failing_since_at_or_before: Option<Millis>,
    ) -> StoreResult<bool> {
        self.client()
            .await?
            .execute(
                "UPDATE webhooks SET enabled = FALSE, disabled_reason = $2
                 WHERE id = $1 AND enabled AND deleted_at IS NULL
                   AND ($3::BIGINT IS NULL OR (failing_since IS NOT NULL AND failing_since <= $3))",
                &[&webhook_id, &reason, &failing_since_at_or_before],
            )
            .await
            .map(|n| n > 0)
            .map_err(db_error)
    }

    async fn backlog(&self) -> StoreResult<Backlog> {
        // Two counts, each over its own partial index.
        let r = self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'),
                        (SELECT COUNT(*) FROM deliveries WHERE state = 'held')",
                &[],
            )
            .await
            .map_err(db_error)?;
        let (pending, held): (i64, i64) = (r.get(0), r.get(1));
        Ok(Backlog {
            pending: pending.max(0) as u64,
            held: held.max(0) as u64,
        })
    }

    async fn wake_stranded(&self, now: Millis) -> StoreResult<u64> {
        let client = self.client().await?;
        let woken = ordering::wake_stranded(&**client, now)
            .await
            .map_err(db_error)?;
        if woken > 0 {
            notify_due(&client).await.map_err(db_error)?;
        }
        Ok(woken)
    }

    fn due_signal(&self) -> Option<Arc<Notify>> {
        Some(self.due.clone())
    }
}
