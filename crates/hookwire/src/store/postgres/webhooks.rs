//! Webhooks on PostgreSQL. Enabling a webhook moves its held deliveries on
//! and wakes every node's poller: its waiting deliveries are due.

use super::ordering::wake_heads_of_webhook;
use super::*;
use crate::secret::{SealedSecret, SealedTargetUrl};
use rules::ordering::PARKED;
use rules::rows::WebhookRow;

/// A webhook's columns, and its held deliveries counted through the
/// `deliveries_held` index (schema_10.sql).
const WEBHOOK_COLUMNS: &str = "id, license_id, event_type, data_types, url, token, enabled,
     disabled_reason, created_at, signing_secret IS NOT NULL, max_per_second,
     (SELECT COUNT(*) FROM deliveries d
      WHERE d.license_id = webhooks.license_id AND d.webhook_id = webhooks.id AND d.state = 'held'),
     ordered_since IS NOT NULL";

fn webhook_from_row(row: &Row) -> StoreResult<Webhook> {
    WebhookRow {
        id: row.get(0),
        license_id: row.get(1),
        event_type: row.get(2),
        data_types: row.get::<_, i16>(3).into(),
        url: row.get(4),
        token: row.get(5),
        enabled: row.get(6),
        disabled_reason: row.get(7),
        created_at: row.get(8),
        signed: row.get(9),
        max_per_second: row.get::<_, Option<i32>>(10).map(i64::from),
        held_deliveries: row.get(11),
        ordered: row.get(12),
    }
    .into_webhook()
}

/// Moves a webhook's held deliveries on: pending again, due at their
/// creation (so claims take them oldest first; parked ones stay parked), or
/// discarded; then wakes the head of each of its keys' lines, which either
/// move may have changed (`rules::ordering`).
async fn release_held(
    tx: &deadpool_postgres::Transaction<'_>,
    license_id: &str,
    webhook_id: &str,
    held: HeldDeliveries,
    now: Millis,
) -> StoreResult<u64> {
    let moved = match held {
        HeldDeliveries::Deliver => {
            tx.execute(
                "UPDATE deliveries SET state = 'pending', lease_until = 0, updated_at = $3,
                     next_attempt_at = CASE WHEN next_attempt_at = $4 THEN $4 ELSE created_at END
                 WHERE license_id = $1 AND webhook_id = $2 AND state = 'held'",
                &[&license_id, &webhook_id, &now, &PARKED],
            )
            .await
        }
        HeldDeliveries::Discard => {
            tx.execute(
                "UPDATE deliveries SET state = 'discarded', lease_until = 0, updated_at = $3
                 WHERE license_id = $1 AND webhook_id = $2 AND state = 'held'",
                &[&license_id, &webhook_id, &now],
            )
            .await
        }
    }
    .map_err(db_error)?;
    wake_heads_of_webhook(&**tx, webhook_id, now)
        .await
        .map_err(db_error)?;
    Ok(moved)
}

/// Applies a patch to the license's webhook inside `tx` (a v3 one if `v3`):
/// each field it sets, and enabling's move of held deliveries. False if
/// there is no such webhook.
pub(super) async fn apply_patch(
    tx: &deadpool_postgres::Transaction<'_>,
    license_id: &str,
    id: &str,
    patch: &WebhookPatch,
    v3: bool,
) -> StoreResult<bool> {
    let url = patch.url.as_ref().map(|u| u.as_stored().to_string());
    let bits = patch.data_types.map(|d| d.bits() as i16);
    let limit_given = patch.max_per_second.is_some();
    let limit: Option<i32> = patch
        .max_per_second
        .flatten()
        .map(|n| n.min(i32::MAX as u32) as i32);
    // An ingest that read this webhook disabled holds its row (FOR
    // SHARE, see `ingest::HELD`) until it commits, so this update waits
    // for it, and the move below, a statement of its own, sees the
    // deliveries it made held.
    let found = tx
            .query_opt(
                "UPDATE webhooks SET
                   url = COALESCE($3, url),
                   data_types = COALESCE($4, data_types),
                   enabled = COALESCE($5, enabled),
                   disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason
                                          WHEN $5 THEN NULL ELSE 'disabled by the license' END,
                   failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
                   max_per_second = CASE WHEN $6 THEN $7 ELSE max_per_second END,
                   ordered_since = CASE WHEN $8::BOOLEAN IS NULL THEN ordered_since
                                        WHEN $8::BOOLEAN THEN COALESCE(ordered_since, $9::BIGINT) END,
                   v3_log_filtered = COALESCE($11::BOOLEAN, v3_log_filtered)
                 WHERE license_id = $1 AND id = $2 AND deleted_at IS NULL AND (v3_version IS NOT NULL) = $10
                 RETURNING id",
                &[
                    &license_id,
                    &id,
                    &url,
                    &bits,
                    &patch.enabled,
                    &limit_given,
                    &limit,
                    &patch.ordered,
                    &patch.at,
                    &v3,
                    &patch.log_filtered,
                ],
            )
            .await
            .map_err(db_error)?;
    if found.is_none() {
        return Ok(false);
    }
    if patch.enabled == Some(true) {
        release_held(tx, license_id, id, patch.held, patch.at).await?;
        notify_due(tx).await.map_err(db_error)?;
    }
    Ok(true)
}

#[async_trait]
impl Webhooks for PgStore {
    async fn create_webhook(&self, w: NewWebhook) -> StoreResult<Webhook> {
        self.client()
            .await?
            .execute(
                "INSERT INTO webhooks (id, license_id, event_type, data_types, url, token, enabled, created_at,
                                       ordered_since)
                 VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, CASE WHEN $8::BOOLEAN THEN $7::BIGINT END)",
                &[
                    &w.id,
                    &w.license_id,
                    &w.event_type.as_str(),
                    &(w.data_types.bits() as i16),
                    &w.url.as_stored(),
                    &w.token,
                    &w.created_at,
                    &w.ordered,
                ],
            )
            .await
            .map_err(db_error)?;
        Ok(Webhook {
            id: w.id,
            license_id: w.license_id,
            event_type: w.event_type,
            data_types: w.data_types,
            url: w.url.into_url(),
            token: w.token,
            enabled: true,
            disabled_reason: None,
            created_at: w.created_at,
            signed: false,
            max_per_second: None,
            ordered: w.ordered,
            held_deliveries: 0,
        })
    }

    async fn list_webhooks(&self, license_id: &str) -> StoreResult<Vec<Webhook>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE license_id = $1 AND deleted_at IS NULL AND v3_version IS NULL ORDER BY created_at, id"
                ),
                &[&license_id],
            )
            .await
            .map_err(db_error)?;
        rows.iter().map(webhook_from_row).collect()
    }

    async fn get_webhook(&self, license_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE license_id = $1 AND id = $2 AND deleted_at IS NULL AND v3_version IS NULL"
                ),
                &[&license_id, &id],
            )
            .await
            .map_err(db_error)?;
        row.as_ref().map(webhook_from_row).transpose()
    }

    async fn update_webhook(
        &self,
        license_id: &str,
        id: &str,
        patch: WebhookPatch,
    ) -> StoreResult<Option<Webhook>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if !apply_patch(&tx, license_id, id, &patch, false).await? {
            return Ok(None);
        }
        let row = tx
            .query_one(
                &format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE license_id = $1 AND id = $2"
                ),
                &[&license_id, &id],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        webhook_from_row(&row).map(Some)
    }

    async fn delete_webhook(&self, license_id: &str, id: &str, now: Millis) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let n = tx
            .execute(
                "UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND license_id = $3 AND deleted_at IS NULL AND v3_version IS NULL",
                &[&now, &id, &license_id],
            )
            .await
            .map_err(db_error)?;
        if n > 0 {
            tx.execute(
                "UPDATE deliveries SET state = 'failed', lease_until = 0, updated_at = $1
                 WHERE webhook_id = $2 AND state = 'pending'",
                &[&now, &id],
            )
            .await
            .map_err(db_error)?;
            release_held(&tx, license_id, id, HeldDeliveries::Discard, now).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(n > 0)
    }

    async fn rotate_signing_secret(
        &self,
        license_id: &str,
        id: &str,
        sealed_secret: SealedSecret,
        previous_until: Millis,
    ) -> StoreResult<bool> {
        self.client()
            .await?
            .execute(
                "UPDATE webhooks SET
                     previous_signing_secret = signing_secret,
                     previous_secret_until = CASE WHEN signing_secret IS NULL THEN NULL ELSE $1::BIGINT END,
                     signing_secret = $2
                 WHERE id = $3 AND license_id = $4 AND deleted_at IS NULL",
                &[&previous_until, &sealed_secret.as_stored(), &id, &license_id],
            )
            .await
            .map(|n| n > 0)
            .map_err(db_error)
    }

    async fn signing_secrets(
        &self,
        license_id: &str,
        id: &str,
        now: Millis,
    ) -> StoreResult<Vec<String>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT signing_secret, previous_signing_secret, previous_secret_until
                 FROM webhooks WHERE id = $1 AND license_id = $2 AND deleted_at IS NULL",
                &[&id, &license_id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.map_or_else(Vec::new, |r| {
            crate::store::queue::signing_secrets(r.get(0), r.get(1), r.get(2), now)
        }))
    }

    async fn all_webhook_urls(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = self
            .client()
            .await?
            .query("SELECT id, url FROM webhooks ORDER BY id", &[])
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn replace_webhook_url(
        &self,
        id: &str,
        old: &str,
        new: &SealedTargetUrl,
    ) -> StoreResult<bool> {
        self.client()
            .await?
            .execute(
                "UPDATE webhooks SET url = $3 WHERE id = $1 AND url = $2",
                &[&id, &old, &new.as_stored()],
            )
            .await
            .map(|n| n > 0)
            .map_err(db_error)
    }
}
