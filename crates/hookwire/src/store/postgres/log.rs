//! The delivery log on PostgreSQL. Redeliveries notify every node's poller.

use super::ordering::{line_place, lock_keys_of, park_behind};
use super::*;
use rules::rows::DeliveryRow;

#[async_trait]
impl DeliveryLog for PgStore {
    async fn list_deliveries(&self, q: DeliveryQuery<'_>) -> StoreResult<Vec<DeliveryView>> {
        let client = self.client().await?;
        let state = q.state.map(DeliveryState::as_str);
        let event_type = q.event_type.map(EventType::as_str);
        let rows = client
            .query(
                "SELECT d.id, e.unique_id, d.webhook_id, e.event_type, d.state, d.created_at, d.next_attempt_at,
                        d.order_key, COALESCE(w.ordered_since <= d.created_at, FALSE), d.filtered_by
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 LEFT JOIN webhooks w ON w.id = d.webhook_id
                 WHERE d.license_id = $1
                   AND ($2::TEXT IS NULL OR d.webhook_id = $2)
                   AND ($3::TEXT IS NULL OR d.state = $3)
                   AND ($4::BIGINT IS NULL OR d.id < $4)
                   AND ($6::TEXT IS NULL OR e.event_type = $6)
                 ORDER BY d.id DESC LIMIT $5",
                &[&q.license_id, &q.webhook_id, &state, &q.before, &(q.limit as i64), &event_type],
            )
            .await
            .map_err(db_error)?;
        let now = now_millis();
        let mut views: Vec<DeliveryView> = Vec::with_capacity(rows.len());
        for r in &rows {
            let row = DeliveryRow {
                id: r.get(0),
                event_id: r.get(1),
                webhook_id: r.get(2),
                event_type: r.get(3),
                state: r.get(4),
                created_at: r.get(5),
                next_attempt_at: r.get(6),
                order_key: r.get(7),
                ordered_when_made: r.get(8),
                filtered_by: r.get(9),
            };
            let line = line_place(&**client, &row.line_query(), now)
                .await
                .map_err(db_error)?;
            views.push(row.into_view(Vec::new(), line)?);
        }
        let ids: Vec<i64> = views.iter().map(|v| v.id).collect();
        let attempts = client
            .query(
                "SELECT delivery_id, at, status, latency_ms, error, response_excerpt
                 FROM attempts WHERE delivery_id = ANY($1) ORDER BY id",
                &[&ids],
            )
            .await
            .map_err(db_error)?;
        let mut by_delivery: HashMap<i64, Vec<AttemptView>> = HashMap::new();
        for a in &attempts {
            let status: Option<i32> = a.get(2);
            by_delivery.entry(a.get(0)).or_default().push(AttemptView {
                at: a.get(1),
                status: status.and_then(|s| u16::try_from(s).ok()),
                latency_ms: a.get(3),
                error: a.get(4),
                response_excerpt: a.get(5),
            });
        }
        for v in &mut views {
            v.attempts = by_delivery.remove(&v.id).unwrap_or_default();
        }
        Ok(views)
    }

    async fn delivery_body(
        &self,
        license_id: &str,
        delivery_id: i64,
    ) -> StoreResult<Option<(EventBody, DataTypes)>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT e.unique_id, e.license_id, e.event_type, e.chat, e.visitor, e.pre_chat_survey,
                        e.ticket, d.data_types, e.v3_payload, e.v3_extra
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE d.id = $1 AND d.license_id = $2",
                &[&delivery_id, &license_id],
            )
            .await
            .map_err(db_error)?;
        let Some(r) = row else { return Ok(None) };
        let bits: i16 = r.get(7);
        Ok(Some((
            event_from_row(&r, 0, 8)?,
            DataTypes::from_bits(bits as u8),
        )))
    }

    async fn attempt_samples(
        &self,
        license_id: &str,
        since: Millis,
        limit: usize,
    ) -> StoreResult<AttemptSamples> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT a.at, d.webhook_id, a.error IS NULL, a.latency_ms
                 FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE a.at >= $1 AND d.license_id = $2
                 ORDER BY a.at DESC LIMIT $3",
                &[&since, &license_id, &(limit as i64 + 1)],
            )
            .await
            .map_err(db_error)?;
        let mut out = AttemptSamples::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        for r in &rows {
            if out.samples.len() == limit {
                out.truncated = true;
                break;
            }
            let webhook_id: String = r.get(1);
            let next = index.len();
            let webhook = *index.entry(webhook_id.clone()).or_insert_with(|| {
                out.webhook_ids.push(webhook_id);
                next
            });
            out.samples.push(AttemptSample {
                at: r.get(0),
                webhook,
                ok: r.get(2),
                latency_ms: r.get(3),
            });
        }
        out.samples.reverse();
        Ok(out)
    }

    async fn queue_stats(&self, license_id: &str) -> StoreResult<QueueStats> {
        let r = self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE license_id = $1 AND state = 'pending'),
                        (SELECT MIN(created_at) FROM deliveries WHERE license_id = $1 AND state = 'pending'),
                        (SELECT COUNT(*) FROM deliveries WHERE license_id = $1 AND state = 'held')",
                &[&license_id],
            )
            .await
            .map_err(db_error)?;
        let (pending, held): (i64, i64) = (r.get(0), r.get(2));
        Ok(QueueStats {
            pending: pending.max(0) as u64,
            oldest_pending_at: r.get(1),
            held: held.max(0) as u64,
        })
    }

    async fn redeliver(
        &self,
        license_id: &str,
        delivery_id: i64,
        now: Millis,
    ) -> StoreResult<Redelivery> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        // Its key's lock first, as ingest and records take it (`ordering`).
        lock_keys_of(&*tx, &[delivery_id]).await.map_err(db_error)?;
        let found = tx
            .query_opt(
                "SELECT d.state FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                 WHERE d.id = $1 AND d.license_id = $2 AND w.deleted_at IS NULL FOR UPDATE OF d",
                &[&delivery_id, &license_id],
            )
            .await
            .map_err(db_error)?;
        match found.as_ref().map(|r| r.get::<_, &str>(0)) {
            None => return Ok(Redelivery::Unknown),
            Some("held") => return Ok(Redelivery::Held),
            Some(_) => {}
        }
        tx.execute(
            "UPDATE deliveries SET state = 'pending', attempts_in_round = 0, next_attempt_at = $1,
                 lease_until = 0, updated_at = $1
             WHERE id = $2 AND NOT (state = 'pending' AND lease_until > $1)",
            &[&now, &delivery_id],
        )
        .await
        .map_err(db_error)?;
        park_behind(&*tx, &[delivery_id], now)
            .await
            .map_err(db_error)?;
        notify_due(&tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Redelivery::Pending)
    }

    async fn redeliver_failed_since(
        &self,
        license_id: &str,
        webhook_id: &str,
        since: Millis,
        now: Millis,
    ) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let ids: Vec<i64> = tx
            .query(
                "SELECT id FROM deliveries
                 WHERE license_id = $1 AND webhook_id = $2 AND state = 'failed' AND created_at >= $3
                   AND webhook_id IN (SELECT id FROM webhooks WHERE deleted_at IS NULL)",
                &[&license_id, &webhook_id, &since],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        lock_keys_of(&*tx, &ids).await.map_err(db_error)?;
        let n = tx
            .execute(
                "UPDATE deliveries SET state = 'pending', attempts_in_round = 0, next_attempt_at = $1,
                     lease_until = 0, updated_at = $1
                 WHERE id = ANY($2) AND state = 'failed'",
                &[&now, &ids],
            )
            .await
            .map_err(db_error)?;
        park_behind(&*tx, &ids, now).await.map_err(db_error)?;
        notify_due(&tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(n)
    }

    async fn redeliver_batch(
        &self,
        query: &ReplayQuery<'_>,
        after: i64,
        limit: usize,
        now: Millis,
    ) -> StoreResult<ReplayBatch> {
        // The same filter selects the batch, updates it and counts what is
        // left. Rows in flight elsewhere are skipped by the lock, not waited for.
        const MATCHING: &str = "d.license_id = $1 AND ($2::TEXT IS NULL OR d.webhook_id = $2)
             AND d.created_at >= $3 AND d.id > $4
             AND (d.state = 'failed' OR ($5 AND d.state = 'delivered'))
             AND d.webhook_id IN (SELECT id FROM webhooks WHERE deleted_at IS NULL)";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let (license, webhook) = (query.license_id, query.webhook_id);
        let (since, all, limit) = (query.since, query.include_delivered, limit as i64);
        // The batch's keys are locked before its rows (`ordering`).
        let candidates: Vec<i64> = tx
            .query(
                &format!("SELECT d.id FROM deliveries d WHERE {MATCHING} ORDER BY d.id LIMIT $6"),
                &[&license, &webhook, &since, &after, &all, &limit],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        lock_keys_of(&*tx, &candidates).await.map_err(db_error)?;
        let rows = tx
            .query(
                &format!(
                    "UPDATE deliveries SET state = 'pending', attempts_in_round = 0,
                         next_attempt_at = $7, lease_until = 0, updated_at = $7
                     WHERE id IN (SELECT d.id FROM deliveries d WHERE {MATCHING} AND d.id = ANY($8)
                                  ORDER BY d.id LIMIT $6 FOR UPDATE SKIP LOCKED)
                     RETURNING id"
                ),
                &[
                    &license,
                    &webhook,
                    &since,
                    &after,
                    &all,
                    &limit,
                    &now,
                    &candidates,
                ],
            )
            .await
            .map_err(db_error)?;
        let redelivered: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        park_behind(&*tx, &redelivered, now)
            .await
            .map_err(db_error)?;
        let last_id = rows.iter().map(|r| r.get::<_, i64>(0)).max();
        let remaining: i64 = match last_id {
            Some(last) => tx
                .query_one(
                    &format!("SELECT COUNT(*) FROM deliveries d WHERE {MATCHING}"),
                    &[&license, &webhook, &since, &last, &all],
                )
                .await
                .map_err(db_error)?
                .get(0),
            None => 0,
        };
        if !rows.is_empty() {
            notify_due(&tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(ReplayBatch {
            redelivered: rows.len() as u64,
            last_id,
            remaining: remaining as u64,
        })
    }

    async fn token_grants(&self, key: TokenKey) -> StoreResult<Vec<TokenGrant>> {
        let client = self.client().await?;
        let (sql, value) = match key {
            // Hex digits sort before 'g' (in C and the usual collations): the range is
            // exactly the ids with this prefix, read from the id index.
            TokenKey::EventsAt(prefix) => (
                "SELECT unique_id, license_id, token_expires_at FROM events
                 WHERE unique_id >= $1 AND unique_id < $1 || 'g' LIMIT 10000",
                prefix,
            ),
            TokenKey::LegacyHash(hash) => (
                "SELECT unique_id, license_id, token_expires_at FROM events WHERE token_hash = $1",
                hash,
            ),
        };
        let rows = client.query(sql, &[&value]).await.map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| TokenGrant {
                event_id: r.get(0),
                license_id: r.get(1),
                expires_at: r.get(2),
            })
            .collect())
    }
}
