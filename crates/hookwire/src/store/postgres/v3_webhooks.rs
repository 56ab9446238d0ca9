//! v3 webhooks on PostgreSQL. A registration counts its owner's webhooks
//! under the license's row lock, so nodes registering at once keep the
//! per-action limit; a v3 ingest is one transaction of its own (v2's group
//! commit is for the hot path), deciding filters with `rules::v3`.

use super::ingest::claim_idempotency_key;
use super::ordering::{lock_and_find_unfinished_uncached, park_planned};
use super::*;
use rules::v3::V3WebhookRow;
use tokio_postgres::Transaction;

const V3_COLUMNS: &str = "id, license_id, event_type, data_types, url, enabled, disabled_reason,
     created_at, signing_secret IS NOT NULL, max_per_second, v3_version, v3_kind,
     v3_owner_client_id, v3_secret_key, v3_filters, v3_description, ordered_since IS NOT NULL,
     (SELECT COUNT(*) FROM deliveries d
      WHERE d.license_id = webhooks.license_id AND d.webhook_id = webhooks.id AND d.state = 'held'),
     COALESCE(v3_log_filtered, FALSE)";

fn v3_webhook(r: &Row) -> StoreResult<V3Webhook> {
    V3WebhookRow {
        id: r.get(0),
        license_id: r.get(1),
        event_type: r.get(2),
        data_types: r.get::<_, i16>(3).into(),
        url: r.get(4),
        enabled: r.get(5),
        disabled_reason: r.get(6),
        created_at: r.get(7),
        signed: r.get(8),
        max_per_second: r.get::<_, Option<i32>>(9).map(i64::from),
        version: r.get(10),
        kind: r.get(11),
        owner_client_id: r.get(12),
        secret_key: r.get(13),
        filters: r.get(14),
        description: r.get(15),
        ordered: r.get(16),
        held_deliveries: r.get(17),
        log_filtered: r.get(18),
    }
    .into_webhook()
}

/// Locks the license's row (the per-license decisions wait on it); false
/// for an unknown license.
async fn lock_license(tx: &Transaction<'_>, license_id: &str) -> StoreResult<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM licenses WHERE license_id = $1 FOR UPDATE",
            &[&license_id],
        )
        .await
        .map_err(db_error)?
        .is_some())
}

/// The license's organization id, made `new_id` if it had none.
async fn organization_id(
    tx: &Transaction<'_>,
    license_id: &str,
    new_id: &str,
) -> StoreResult<String> {
    tx.execute(
        "INSERT INTO license_organizations (license_id, organization_id) VALUES ($1, $2)
         ON CONFLICT (license_id) DO NOTHING",
        &[&license_id, &new_id],
    )
    .await
    .map_err(db_error)?;
    Ok(tx
        .query_one(
            "SELECT organization_id FROM license_organizations WHERE license_id = $1",
            &[&license_id],
        )
        .await
        .map_err(db_error)?
        .get(0))
}

#[async_trait]
impl V3Webhooks for PgStore {
    async fn register_v3_webhook(&self, w: NewV3Webhook) -> StoreResult<V3Registered> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if !lock_license(&tx, &w.license_id).await? {
            return Ok(V3Registered::UnknownLicense);
        }
        let count: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM webhooks
                 WHERE license_id = $1 AND v3_owner_client_id = $2 AND event_type = $3
                   AND v3_version IS NOT NULL AND deleted_at IS NULL",
                &[&w.license_id, &w.owner_client_id, &w.action.as_str()],
            )
            .await
            .map_err(db_error)?
            .get(0);
        if count as usize >= MAX_V3_WEBHOOKS_PER_ACTION {
            return Ok(V3Registered::LimitReached);
        }
        let filters =
            (!w.filters.is_empty()).then(|| serde_json::to_string(&w.filters).unwrap_or_default());
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO webhooks (id, license_id, event_type, data_types, url, token, enabled,
                         created_at, v3_version, v3_kind, v3_owner_client_id, v3_secret_key,
                         v3_filters, v3_description)
                     VALUES ($1, $2, $3, $4, $5, '', TRUE, $6, $7, $8, $9, $10, $11, $12)
                     RETURNING {V3_COLUMNS}"
                ),
                &[
                    &w.id,
                    &w.license_id,
                    &w.action.as_str(),
                    &(w.additional_data.bits() as i16),
                    &w.url.as_stored(),
                    &w.created_at,
                    &w.version.as_str(),
                    &w.kind.as_str(),
                    &w.owner_client_id,
                    &w.secret_key.as_stored(),
                    &filters,
                    &w.description,
                ],
            )
            .await
            .map_err(db_error)?;
        let webhook = v3_webhook(&row)?;
        tx.commit().await.map_err(db_error)?;
        Ok(V3Registered::Registered(Box::new(webhook)))
    }

    async fn list_v3_webhooks(
        &self,
        license_id: &str,
        owner_client_id: Option<&str>,
    ) -> StoreResult<Vec<V3Webhook>> {
        self.client()
            .await?
            .query(
                &format!(
                    "SELECT {V3_COLUMNS} FROM webhooks
                     WHERE license_id = $1 AND ($2::TEXT IS NULL OR v3_owner_client_id = $2)
                       AND v3_version IS NOT NULL AND deleted_at IS NULL
                     ORDER BY created_at, id"
                ),
                &[&license_id, &owner_client_id],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(v3_webhook)
            .collect()
    }

    async fn update_v3_webhook(
        &self,
        license_id: &str,
        id: &str,
        patch: WebhookPatch,
    ) -> StoreResult<Option<V3Webhook>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if !super::webhooks::apply_patch(&tx, license_id, id, &patch, true).await? {
            return Ok(None);
        }
        let row = tx
            .query_one(
                &format!("SELECT {V3_COLUMNS} FROM webhooks WHERE license_id = $1 AND id = $2"),
                &[&license_id, &id],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        v3_webhook(&row).map(Some)
    }

    async fn unregister_v3_webhook(
        &self,
        license_id: &str,
        owner_client_id: &str,
        id: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let n = tx
            .execute(
                "UPDATE webhooks SET deleted_at = $1
                 WHERE id = $2 AND license_id = $3 AND v3_owner_client_id = $4
                   AND v3_version IS NOT NULL AND deleted_at IS NULL",
                &[&now, &id, &license_id, &owner_client_id],
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
        }
        tx.commit().await.map_err(db_error)?;
        Ok(n > 0)
    }

    async fn set_license_webhooks_enabled(
        &self,
        license_id: &str,
        owner_client_id: &str,
        enabled: bool,
        now: Millis,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO v3_license_webhooks (license_id, owner_client_id, enabled, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (license_id, owner_client_id)
                 DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
                &[&license_id, &owner_client_id, &enabled, &now],
            )
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    async fn license_webhooks_enabled(
        &self,
        license_id: &str,
        owner_client_id: &str,
    ) -> StoreResult<bool> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT enabled FROM v3_license_webhooks WHERE license_id = $1 AND owner_client_id = $2",
                &[&license_id, &owner_client_id],
            )
            .await
            .map_err(db_error)?
            .is_some_and(|r| r.get(0)))
    }

    async fn organization_id(&self, license_id: &str, new_id: &str) -> StoreResult<Option<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let known = tx
            .query_opt(
                "SELECT 1 FROM licenses WHERE license_id = $1",
                &[&license_id],
            )
            .await
            .map_err(db_error)?
            .is_some();
        if !known {
            return Ok(None);
        }
        let id = organization_id(&tx, license_id, new_id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(id))
    }

    async fn set_organization_id(
        &self,
        license_id: &str,
        organization_id: &str,
    ) -> StoreResult<bool> {
        Ok(self
            .client()
            .await?
            .execute(
                "INSERT INTO license_organizations (license_id, organization_id)
                 SELECT license_id, $2 FROM licenses WHERE license_id = $1
                 ON CONFLICT (license_id) DO UPDATE SET organization_id = excluded.organization_id",
                &[&license_id, &organization_id],
            )
            .await
            .map_err(db_error)?
            > 0)
    }

    async fn ingest_v3(
        &self,
        events: Vec<NewV3Event>,
        handoff: Option<Handoff>,
    ) -> StoreResult<Vec<IngestOutcome>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut notify = false;
        for ev in events {
            let (outcome, unleased) =
                ingest_v3_one(&tx, ev, handoff.as_ref(), self.node.get()).await?;
            notify |= unleased;
            outcomes.push(outcome);
        }
        if notify {
            notify_due(&tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(outcomes)
    }
}

/// One v3 event inside the ingest's transaction; also says whether it left
/// a delivery unleased (another node's poller should hear of it).
async fn ingest_v3_one(
    tx: &Transaction<'_>,
    ev: NewV3Event,
    handoff: Option<&Handoff>,
    node: i64,
) -> StoreResult<(IngestOutcome, bool)> {
    if let Some((key, body_hash)) = &ev.idempotency {
        if let Some(answer) =
            claim_idempotency_key(tx, key, body_hash, &ev.unique_id, ev.received_at)
                .await
                .map_err(db_error)?
        {
            return Ok((answer, false));
        }
    }
    let known = tx
        .query_opt(
            "SELECT 1 FROM licenses WHERE license_id = $1",
            &[&ev.license_id],
        )
        .await
        .map_err(db_error)?
        .is_some();
    if !known {
        return Ok((IngestOutcome::UnknownLicense, false));
    }
    let org = organization_id(tx, &ev.license_id, &ev.new_organization_id).await?;
    let extra = rules::v3::extra(org, &ev.context);
    let seq: i64 = tx
        .query_one(
            "INSERT INTO events (unique_id, license_id, event_type, token_hash, token_expires_at,
                                 received_at, v3_payload, v3_extra)
             VALUES ($1, $2, $3, '', $4, $4, $5, $6) RETURNING seq",
            &[
                &ev.unique_id,
                &ev.license_id,
                &ev.action.as_str(),
                &ev.received_at,
                &ev.payload.get(),
                &rules::v3::extra_text(&extra),
            ],
        )
        .await
        .map_err(db_error)?
        .get(0);
    let rows = tx
        .query(
            "SELECT w.id, w.url, w.data_types, w.signing_secret, w.previous_signing_secret,
                    w.previous_secret_until, w.max_per_second, w.v3_kind, w.v3_owner_client_id,
                    w.v3_filters, w.v3_secret_key, COALESCE(s.enabled, FALSE), w.enabled,
                    w.ordered_since IS NOT NULL, COALESCE(w.v3_log_filtered, FALSE)
             FROM webhooks w
             LEFT JOIN v3_license_webhooks s
               ON s.license_id = w.license_id AND s.owner_client_id = w.v3_owner_client_id
             WHERE w.license_id = $1 AND w.event_type = $2 AND w.v3_version IS NOT NULL
               AND w.deleted_at IS NULL",
            &[&ev.license_id, &ev.action.as_str()],
        )
        .await
        .map_err(db_error)?;
    let now = ev.received_at;
    let found = rows
        .iter()
        .map(|r| Found {
            target: IngestTarget {
                webhook_id: r.get(0),
                url: r.get(1),
                data_types: DataTypes::from_bits(r.get::<_, i16>(2) as u8),
                signing_secrets: signing_secrets(r.get(3), r.get(4), r.get(5), now),
                max_per_second: r.get::<_, Option<i32>>(6).map(|n| n.max(0) as u32),
                v3_secret_key: r.get(10),
                // Off for failing: held, as a v2 webhook's are.
                held: !r.get::<_, bool>(12),
                order_key: ev.order_key.clone().filter(|_| r.get::<_, bool>(13)),
                parked: false,
            },
            kind: r.get(7),
            owner_client_id: r.get(8),
            filters: r.get(9),
            license_enabled: r.get(11),
            log_filtered: r.get(14),
        })
        .collect();
    let Admitted { targets, filtered } = admitted(found, &ev)?;
    for out in &filtered {
        tx.execute(
            "INSERT INTO deliveries (event_seq, webhook_id, license_id, data_types, state, next_attempt_at,
                                     lease_until, created_at, updated_at, filtered_by)
             VALUES ($1, $2, $3, $4, 'filtered', $5, 0, $5, $5, $6)",
            &[&seq, &out.webhook_id, &ev.license_id, &(out.data_types.bits() as i16), &now, &out.why],
        )
        .await
        .map_err(db_error)?;
    }
    let mut targets = vec![targets];
    park_planned(&mut targets, |pairs| {
        lock_and_find_unfinished_uncached(tx, pairs)
    })
    .await
    .map_err(db_error)?;
    let targets = targets.pop().unwrap_or_default();
    let mut delivery_ids = Vec::with_capacity(targets.len());
    let mut unleased = false;
    for t in &targets {
        let lease = ingest_lease(handoff, t);
        unleased |= lease == 0 && !t.held && !t.parked;
        let id: i64 = tx
            .query_one(
                "INSERT INTO deliveries (event_seq, webhook_id, license_id, data_types, state, next_attempt_at,
                                         lease_until, leased_by, created_at, updated_at, order_key)
                 VALUES ($1, $2, $3, $4, $8, $9, $6, CASE WHEN $6::bigint > 0 THEN $7::bigint END, $5, $5, $10)
                 RETURNING id",
                &[&seq, &t.webhook_id, &ev.license_id, &(t.data_types.bits() as i16), &now, &lease, &node,
                  &ingest_state(t), &ingest_due(now, t), &t.order_key],
            )
            .await
            .map_err(db_error)?
            .get(0);
        delivery_ids.push(id);
    }
    if let Some((key, _)) = &ev.idempotency {
        tx.execute(
            "UPDATE idempotency_keys SET deliveries = $2 WHERE key = $1",
            &[key, &(targets.len() as i64)],
        )
        .await
        .map_err(db_error)?;
    }
    let delivery_count = targets.len();
    let held = targets.iter().filter(|t| t.held).count();
    let event_id = ev.unique_id.clone();
    let deliveries = handoff_jobs(handoff, delivery_ids.into_iter().zip(targets), || {
        v3_event_body(ev, extra)
    });
    Ok((
        IngestOutcome::Accepted {
            event_id,
            deliveries,
            delivery_count,
            held,
        },
        unleased,
    ))
}
