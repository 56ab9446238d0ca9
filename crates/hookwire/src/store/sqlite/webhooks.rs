//! Webhooks on SQLite: reads on a reader connection, changes through the
//! writer.

use super::ordering::wake_heads_of_webhook;
use super::*;
use crate::secret::{SealedSecret, SealedTargetUrl};
use rules::ordering::PARKED;

/// A webhook's columns, and its held deliveries counted through the
/// `deliveries_held` index (schema_12.sql).
const WEBHOOK_COLUMNS: &str =
    "id, license_id, event_type, data_types, url, token, enabled, disabled_reason, created_at,
     signing_secret IS NOT NULL, max_per_second,
     (SELECT COUNT(*) FROM deliveries d
      WHERE d.license_id = webhooks.license_id AND d.webhook_id = webhooks.id AND d.state = 'held'),
     ordered_since IS NOT NULL";

fn webhook_from_row(row: &Row<'_>) -> rusqlite::Result<WebhookRow> {
    Ok(WebhookRow {
        id: row.get(0)?,
        license_id: row.get(1)?,
        event_type: row.get(2)?,
        data_types: row.get(3)?,
        url: row.get(4)?,
        token: row.get(5)?,
        enabled: row.get(6)?,
        disabled_reason: row.get(7)?,
        created_at: row.get(8)?,
        signed: row.get(9)?,
        max_per_second: row.get(10)?,
        held_deliveries: row.get(11)?,
        ordered: row.get(12)?,
    })
}

fn query_webhook(
    c: &Connection,
    license_id: &str,
    id: &str,
) -> rusqlite::Result<Option<WebhookRow>> {
    c.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE license_id = ?1 AND id = ?2 AND deleted_at IS NULL AND v3_version IS NULL"
    ))?
    .query_row(params![license_id, id], webhook_from_row)
    .optional()
}

/// Moves a webhook's held deliveries on: pending again, due at their
/// creation (so claims take them oldest first; parked ones stay parked), or
/// discarded; then wakes the head of each of its keys' lines, which either
/// move may have changed (`rules::ordering`).
fn release_held(
    c: &Connection,
    license_id: &str,
    webhook_id: &str,
    held: HeldDeliveries,
    now: Millis,
) -> rusqlite::Result<usize> {
    let moved = match held {
        HeldDeliveries::Deliver => c
            .prepare_cached(
                "UPDATE deliveries SET state = 'pending', lease_until = 0, updated_at = ?3,
                     next_attempt_at = CASE WHEN next_attempt_at = ?4 THEN ?4 ELSE created_at END
                 WHERE license_id = ?1 AND webhook_id = ?2 AND state = 'held'",
            )?
            .execute(params![license_id, webhook_id, now, PARKED])?,
        HeldDeliveries::Discard => c
            .prepare_cached(
                "UPDATE deliveries SET state = 'discarded', lease_until = 0, updated_at = ?3
                 WHERE license_id = ?1 AND webhook_id = ?2 AND state = 'held'",
            )?
            .execute(params![license_id, webhook_id, now])?,
    };
    wake_heads_of_webhook(c, webhook_id, now)?;
    Ok(moved)
}

/// Applies a patch's changes to a webhook known to exist (v2 or v3): each
/// field it sets, and enabling's move of held deliveries.
pub(super) fn apply_patch(
    c: &Connection,
    license: &str,
    id: &str,
    patch: &WebhookPatch,
) -> rusqlite::Result<()> {
    if let Some(url) = &patch.url {
        c.execute(
            "UPDATE webhooks SET url = ?1 WHERE id = ?2",
            params![url.as_stored(), id],
        )?;
    }
    if let Some(types) = patch.data_types {
        c.execute(
            "UPDATE webhooks SET data_types = ?1 WHERE id = ?2",
            params![types.bits(), id],
        )?;
    }
    if let Some(limit) = patch.max_per_second {
        c.execute(
            "UPDATE webhooks SET max_per_second = ?1 WHERE id = ?2",
            params![limit, id],
        )?;
    }
    if let Some(ordered) = patch.ordered {
        c.execute(
            "UPDATE webhooks SET ordered_since = CASE WHEN ?1 THEN COALESCE(ordered_since, ?3) END
             WHERE id = ?2",
            params![ordered, id, patch.at],
        )?;
    }
    if let Some(log) = patch.log_filtered {
        c.execute(
            "UPDATE webhooks SET v3_log_filtered = ?1 WHERE id = ?2",
            params![log, id],
        )?;
    }
    if let Some(enabled) = patch.enabled {
        c.execute(
            "UPDATE webhooks SET enabled = ?1,
                 disabled_reason = CASE WHEN ?1 THEN NULL ELSE 'disabled by the license' END,
                 failing_since = CASE WHEN ?1 THEN NULL ELSE failing_since END
             WHERE id = ?2",
            params![enabled, id],
        )?;
        if enabled {
            // In the writer, as every ingest is: none can have read the
            // webhook disabled and commit held after this.
            release_held(c, license, id, patch.held, patch.at)?;
        }
    }
    Ok(())
}

#[async_trait]
impl Webhooks for SqliteStore {
    async fn create_webhook(&self, w: NewWebhook) -> StoreResult<Webhook> {
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO webhooks (id, license_id, event_type, data_types, url, token, enabled, created_at,
                                           ordered_since)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, CASE WHEN ?8 THEN ?7 END)",
                    params![w.id, w.license_id, w.event_type.as_str(), w.data_types.bits(), w.url.as_stored(), w.token, w.created_at, w.ordered],
                )
                .map_err(conflict_or_unavailable)?;
                Ok(Webhook {
                    id: w.id,
                    license_id: w.license_id,
                    event_type: w.event_type,
                    data_types: w.data_types,
                    url: w.url.into_url(),
                    token: w.token,
                    enabled: true,
                    disabled_reason: None,
                    signed: false,
                    max_per_second: None,
                    ordered: w.ordered,
                    held_deliveries: 0,
                    created_at: w.created_at,
                })
            })
            .await
    }

    async fn list_webhooks(&self, license_id: &str) -> StoreResult<Vec<Webhook>> {
        let license = license_id.to_string();
        let rows: Vec<WebhookRow> = self
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE license_id = ?1 AND deleted_at IS NULL AND v3_version IS NULL ORDER BY created_at, id"
                ))?
                .query_map([license], webhook_from_row)?
                .collect()
            })
            .await?;
        rows.into_iter().map(WebhookRow::into_webhook).collect()
    }

    async fn get_webhook(&self, license_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        let (license, id) = (license_id.to_string(), id.to_string());
        self.read(move |c| query_webhook(c, &license, &id))
            .await?
            .map(WebhookRow::into_webhook)
            .transpose()
    }

    async fn update_webhook(
        &self,
        license_id: &str,
        id: &str,
        patch: WebhookPatch,
    ) -> StoreResult<Option<Webhook>> {
        let (license, id) = (license_id.to_string(), id.to_string());
        self.writer
            .write(move |c| {
                if query_webhook(c, &license, &id)
                    .map_err(unavailable)?
                    .is_none()
                {
                    return Ok(None);
                }
                apply_patch(c, &license, &id, &patch).map_err(unavailable)?;
                query_webhook(c, &license, &id).map_err(unavailable)
            })
            .await?
            .map(WebhookRow::into_webhook)
            .transpose()
    }

    async fn delete_webhook(&self, license_id: &str, id: &str, now: Millis) -> StoreResult<bool> {
        let (license, id) = (license_id.to_string(), id.to_string());
        self.writer
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE webhooks SET deleted_at = ?1 WHERE id = ?2 AND license_id = ?3 AND deleted_at IS NULL AND v3_version IS NULL",
                        params![now, id, license],
                    )
                    .map_err(unavailable)?;
                if n > 0 {
                    c.execute(
                        "UPDATE deliveries SET state = 'failed', lease_until = 0, updated_at = ?1
                         WHERE webhook_id = ?2 AND state = 'pending'",
                        params![now, id],
                    )
                    .map_err(unavailable)?;
                    release_held(c, &license, &id, HeldDeliveries::Discard, now)
                        .map_err(unavailable)?;
                }
                Ok(n > 0)
            })
            .await
    }

    async fn rotate_signing_secret(
        &self,
        license_id: &str,
        id: &str,
        sealed_secret: SealedSecret,
        previous_until: Millis,
    ) -> StoreResult<bool> {
        let (license, id) = (license_id.to_string(), id.to_string());
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE webhooks SET
                         previous_signing_secret = signing_secret,
                         previous_secret_until = CASE WHEN signing_secret IS NULL THEN NULL ELSE ?1 END,
                         signing_secret = ?2
                     WHERE id = ?3 AND license_id = ?4 AND deleted_at IS NULL",
                    params![previous_until, sealed_secret.as_stored(), id, license],
                )
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn signing_secrets(
        &self,
        license_id: &str,
        id: &str,
        now: Millis,
    ) -> StoreResult<Vec<String>> {
        let (license, id) = (license_id.to_string(), id.to_string());
        let row = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT signing_secret, previous_signing_secret, previous_secret_until
                     FROM webhooks WHERE id = ?1 AND license_id = ?2 AND deleted_at IS NULL",
                )?
                .query_row(params![id, license], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .await?;
        Ok(row.map_or_else(Vec::new, |(current, previous, until)| {
            crate::store::queue::signing_secrets(current, previous, until, now)
        }))
    }

    async fn all_webhook_urls(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(|c| {
            c.prepare_cached("SELECT id, url FROM webhooks ORDER BY id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .await
    }

    async fn replace_webhook_url(
        &self,
        id: &str,
        old: &str,
        new: &SealedTargetUrl,
    ) -> StoreResult<bool> {
        let (id, old, new) = (id.to_string(), old.to_string(), new.as_stored().to_string());
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE webhooks SET url = ?3 WHERE id = ?1 AND url = ?2",
                    params![id, old, new],
                )
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }
}
