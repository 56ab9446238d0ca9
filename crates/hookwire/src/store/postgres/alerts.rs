//! Operator alerts on PostgreSQL. Nodes share the table: claims lease rows
//! with `FOR UPDATE SKIP LOCKED` to the claiming node, so no alert is sent by
//! two nodes at once, and a record counts only while the lease is still this
//! node's (a dead node's leases are taken over, see `nodes`);
//! the once-an-hour rules decide under an advisory lock per kind and
//! subject, and the unique `open_key` keeps one open batch per license.

use super::*;
use rules::alerts::{
    add_to_failed_batch, after_attempt, batch_due_at, new_failed_batch, open_key, AlertRow,
};

const ALERT_COLUMNS: &str = "id, kind, created_at, data, state, attempts, last_error";

fn alert_row(r: &Row) -> AlertRow {
    AlertRow {
        id: r.get(0),
        kind: r.get(1),
        created_at: r.get(2),
        data: r.get(3),
        state: r.get(4),
        attempts: i64::from(r.get::<_, i32>(5)),
        last_error: r.get(6),
    }
}

/// Tries to add `f` to its license's batch, opening one if none is open.
/// False if another node opened one in the meantime (try again: add to it).
async fn add_to_batch(
    client: &mut deadpool_postgres::Object,
    f: &FailedDelivery,
) -> StoreResult<bool> {
    let key = open_key(&f.license_id);
    let tx = client.transaction().await.map_err(db_error)?;
    // Locked, so a claim (which closes the batch) waits for this addition
    // or this one sees the batch closed and opens the next.
    let open = tx
        .query_opt(
            "SELECT id, data FROM alerts WHERE open_key = $1 FOR UPDATE",
            &[&key],
        )
        .await
        .map_err(db_error)?;
    if let Some(row) = open {
        let id: String = row.get(0);
        let data = add_to_failed_batch(&id, row.get(1), f)?;
        tx.execute(
            "UPDATE alerts SET data = $2, updated_at = $3 WHERE id = $1",
            &[&id, &data, &f.at],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        return Ok(true);
    }
    let kind = AlertKind::DeliveryFailed.as_str();
    let previous: Option<Millis> = tx
        .query_one(
            "SELECT MAX(created_at) FROM alerts WHERE license_id = $1 AND kind = $2",
            &[&f.license_id, &kind],
        )
        .await
        .map_err(db_error)?
        .get(0);
    let inserted = tx
        .execute(
            "INSERT INTO alerts (id, kind, license_id, data, created_at, next_attempt_at,
                                 open_key, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $5)
             ON CONFLICT (open_key) DO NOTHING",
            &[
                &f.new_alert_id,
                &kind,
                &f.license_id,
                &new_failed_batch(f),
                &f.at,
                &batch_due_at(f.at, previous, f.spacing),
                &key,
            ],
        )
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(inserted == 1)
}

#[async_trait]
impl Alerts for PgStore {
    async fn insert_alert(&self, a: NewAlert, guard: AlertGuard) -> StoreResult<bool> {
        let mut client = self.client().await?;
        if let (Some(since), Some(webhook)) = (guard.failing_since, &a.subject) {
            // Most failed attempts did not start their webhook's failing run:
            // one read settles that without a transaction and its lock.
            let current: Option<Millis> = client
                .query_opt(
                    "SELECT failing_since FROM webhooks WHERE id = $1",
                    &[webhook],
                )
                .await
                .map_err(db_error)?
                .and_then(|r| r.get(0));
            if current != Some(since) {
                return Ok(false);
            }
        }
        let tx = client.transaction().await.map_err(db_error)?;
        if guard.quiet_since.is_some() {
            // Two nodes deciding at once would each find no recent alert;
            // the lock makes them decide one after the other.
            let lock = format!(
                "hookwire alert {} {}",
                a.kind.as_str(),
                a.subject.as_deref().unwrap_or("")
            );
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&lock],
            )
            .await
            .map_err(db_error)?;
        }
        let inserted = tx
            .execute(
                "INSERT INTO alerts (id, kind, license_id, subject, data, created_at,
                                     next_attempt_at, updated_at)
                 SELECT $1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, $5::TEXT, $6::BIGINT,
                        $6::BIGINT, $6::BIGINT
                 WHERE ($7::BIGINT IS NULL OR NOT EXISTS (
                          SELECT 1 FROM alerts
                          WHERE kind = $2 AND subject IS NOT DISTINCT FROM $4
                            AND created_at >= $7))
                   AND ($8::BIGINT IS NULL OR EXISTS (
                          SELECT 1 FROM webhooks WHERE id = $4 AND failing_since = $8))",
                &[
                    &a.id,
                    &a.kind.as_str(),
                    &a.license_id,
                    &a.subject,
                    &a.data,
                    &a.created_at,
                    &guard.quiet_since,
                    &guard.failing_since,
                ],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(inserted > 0)
    }

    async fn add_failed_delivery(&self, f: FailedDelivery) -> StoreResult<()> {
        let mut client = self.client().await?;
        // A conflict means another node opened the batch between our look
        // and our insert; the next round adds to that one.
        for _ in 0..3 {
            if add_to_batch(&mut client, &f).await? {
                return Ok(());
            }
        }
        Err(StoreError::Conflict(format!(
            "the open delivery.failed batch of license {}",
            f.license_id
        )))
    }

    async fn claim_alerts(
        &self,
        now: Millis,
        limit: usize,
        lease_until: Millis,
    ) -> StoreResult<Vec<AlertJob>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "UPDATE alerts a SET lease_until = $2, open_key = NULL, leased_by = $4
                     FROM (SELECT id FROM alerts
                           WHERE state = 'pending' AND next_attempt_at <= $1
                             AND lease_until <= $1
                           ORDER BY next_attempt_at LIMIT $3
                           FOR UPDATE SKIP LOCKED) due
                     WHERE a.id = due.id
                     RETURNING {}",
                    ALERT_COLUMNS
                        .split(", ")
                        .map(|c| format!("a.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &[&now, &lease_until, &(limit as i64), &self.node.get()],
            )
            .await
            .map_err(db_error)?;
        rows.iter().map(|r| alert_row(r).into_job()).collect()
    }

    async fn record_alert_attempt(
        &self,
        id: &str,
        at: Millis,
        next: NextState,
        error: Option<String>,
    ) -> StoreResult<()> {
        let (state, next_at) = after_attempt(next, at);
        self.client()
            .await?
            .execute(
                "UPDATE alerts SET state = $2, next_attempt_at = $3, lease_until = 0,
                     leased_by = NULL, attempts = attempts + 1, last_error = $4, updated_at = $5
                 WHERE id = $1 AND leased_by = $6",
                &[&id, &state, &next_at, &error, &at, &self.node.get()],
            )
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    async fn recent_alerts(&self, license_id: &str, limit: usize) -> StoreResult<Vec<AlertView>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE license_id = $1
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                ),
                &[&license_id, &(limit as i64)],
            )
            .await
            .map_err(db_error)?;
        rows.iter().map(|r| alert_row(r).into_view()).collect()
    }
}
