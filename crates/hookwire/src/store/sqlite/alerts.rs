//! Operator alerts on SQLite: every write goes through the writer's group
//! commit, so each decision (the once-an-hour rules, the open batch) sees
//! every write before it.

use super::*;
use rules::alerts::AlertRow;
use rules::alerts::{add_to_failed_batch, after_attempt, batch_due_at, new_failed_batch, open_key};

const ALERT_COLUMNS: &str = "id, kind, created_at, data, state, attempts, last_error";

fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        created_at: r.get(2)?,
        data: r.get(3)?,
        state: r.get(4)?,
        attempts: r.get(5)?,
        last_error: r.get(6)?,
    })
}

/// The license's open `delivery.failed` batch: its id and data.
fn open_batch(c: &Connection, key: &str) -> rusqlite::Result<Option<(String, String)>> {
    c.prepare_cached("SELECT id, data FROM alerts WHERE open_key = ?1")?
        .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Opens a batch holding `f`, spaced from the license's previous one.
fn open_new_batch(c: &Connection, key: &str, f: &FailedDelivery) -> rusqlite::Result<usize> {
    let kind = AlertKind::DeliveryFailed.as_str();
    let previous: Option<Millis> = c
        .prepare_cached("SELECT MAX(created_at) FROM alerts WHERE license_id = ?1 AND kind = ?2")?
        .query_row(params![f.license_id, kind], |r| r.get(0))?;
    c.prepare_cached(
        "INSERT INTO alerts (id, kind, license_id, data, created_at, next_attempt_at,
                             open_key, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5)",
    )?
    .execute(params![
        f.new_alert_id,
        kind,
        f.license_id,
        new_failed_batch(f),
        f.at,
        batch_due_at(f.at, previous, f.spacing),
        key
    ])
}

#[async_trait]
impl Alerts for SqliteStore {
    async fn insert_alert(&self, a: NewAlert, guard: AlertGuard) -> StoreResult<bool> {
        if let (Some(since), Some(webhook)) = (guard.failing_since, a.subject.clone()) {
            // Most failed attempts did not start their webhook's failing run:
            // a read on a reader connection settles that without queueing a
            // write behind the writer's group commits.
            let current = self
                .read(move |c| {
                    c.prepare_cached("SELECT failing_since FROM webhooks WHERE id = ?1")?
                        .query_row(params![webhook], |r| r.get::<_, Option<Millis>>(0))
                        .optional()
                })
                .await?
                .flatten();
            if current != Some(since) {
                return Ok(false);
            }
        }
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO alerts (id, kind, license_id, subject, data, created_at,
                                         next_attempt_at, updated_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6
                     WHERE (?7 IS NULL OR NOT EXISTS (
                              SELECT 1 FROM alerts
                              WHERE kind = ?2 AND subject IS ?4 AND created_at >= ?7))
                       AND (?8 IS NULL OR EXISTS (
                              SELECT 1 FROM webhooks WHERE id = ?4 AND failing_since = ?8))",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        a.id,
                        a.kind.as_str(),
                        a.license_id,
                        a.subject,
                        a.data,
                        a.created_at,
                        guard.quiet_since,
                        guard.failing_since
                    ])
                })
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn add_failed_delivery(&self, f: FailedDelivery) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                let key = open_key(&f.license_id);
                let open = open_batch(c, &key).map_err(unavailable)?;
                match open {
                    Some((id, data)) => {
                        let data = add_to_failed_batch(&id, &data, &f)?;
                        c.prepare_cached(
                            "UPDATE alerts SET data = ?2, updated_at = ?3 WHERE id = ?1",
                        )
                        .and_then(|mut s| s.execute(params![id, data, f.at]))
                    }
                    None => open_new_batch(c, &key, &f),
                }
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn claim_alerts(
        &self,
        now: Millis,
        limit: usize,
        lease_until: Millis,
    ) -> StoreResult<Vec<AlertJob>> {
        let rows = self
            .writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "UPDATE alerts SET lease_until = ?2, open_key = NULL
                     WHERE id IN (SELECT id FROM alerts
                                  WHERE state = 'pending' AND next_attempt_at <= ?1
                                    AND lease_until <= ?1
                                  ORDER BY next_attempt_at LIMIT ?3)
                     RETURNING {ALERT_COLUMNS}"
                ))
                .and_then(|mut s| {
                    s.query_map(params![now, lease_until, limit as i64], alert_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)
            })
            .await?;
        rows.into_iter().map(AlertRow::into_job).collect()
    }

    async fn record_alert_attempt(
        &self,
        id: &str,
        at: Millis,
        next: NextState,
        error: Option<String>,
    ) -> StoreResult<()> {
        let id = id.to_string();
        let (state, next_at) = after_attempt(next, at);
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE alerts SET state = ?2, next_attempt_at = ?3, lease_until = 0,
                         attempts = attempts + 1, last_error = ?4, updated_at = ?5
                     WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, state, next_at, error, at]))
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn recent_alerts(&self, license_id: &str, limit: usize) -> StoreResult<Vec<AlertView>> {
        let license = license_id.to_string();
        let rows = self
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE license_id = ?1
                     ORDER BY created_at DESC, rowid DESC LIMIT ?2"
                ))?
                .query_map(params![license, limit as i64], alert_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter().map(AlertRow::into_view).collect()
    }
}
