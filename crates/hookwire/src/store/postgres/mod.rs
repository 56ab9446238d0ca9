//! The PostgreSQL store, for several nodes on one database.
//!
//! Nodes share work through the database alone: due deliveries are claimed
//! with `FOR UPDATE SKIP LOCKED` and leased, so no two nodes attempt one at
//! the same time, and a dead node's leases simply run out. Decisions that
//! must hold across nodes (idempotency keys, the `chat_changed` tag rule) are
//! made under row locks inside the ingest transaction. `NOTIFY hookwire_due`
//! wakes every node's poller when work becomes due that no node holds.

mod group;
mod ingest;
mod listen;
mod pipeline;
mod record;

use super::*;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use group::{Group, GroupFailure, GroupWork};
use hookwire_livechat::DataType;
use ingest::{notify_due, IngestRequest, IngestWork};
use record::RecordWork;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

const MIGRATIONS: &[&str] = &[
    include_str!("schema_1.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
    include_str!("schema_6.sql"),
];
/// Any fixed number: the advisory lock that serializes migrations across nodes.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7769_7265;
const DUE_CHANNEL: &str = "hookwire_due";

/// Planner settings for a transaction whose statements find their rows by
/// key (deliveries by id, chats by license and chat): only nested loops
/// over indexes.
///
/// A prepared statement's generic plan is made once per connection and kept
/// until the table's statistics change, which on a fresh database means
/// until autovacuum first analyzes it (a minute or more). Made while the
/// table was nearly empty, the plan was a sequential scan (or a scan of a
/// whole partial index), hash-joined with the batch: cheap then, and then a
/// few milliseconds per statement and growing with the table, most of
/// PostgreSQL's CPU under load (BENCHMARKS.md). By id, through the primary
/// key, is the right plan at every size. For the same reason conditions
/// are written `(state = 'pending') IS TRUE` (the same: `state` is NOT
/// NULL): plain, it matches the predicate of the partial indexes on pending
/// rows, which hold an entry for every finished delivery until the next
/// vacuum.
const BY_ID_PLANS: &str =
    "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

/// Largest group: events per ingest transaction, records per record one.
const MAX_GROUP: usize = 1_000;

pub struct PgStore {
    pool: Pool,
    ingests: Group<IngestWork>,
    records: Group<RecordWork>,
    due: Arc<Notify>,
    _listener: tokio::task::JoinHandle<()>,
}

fn db_error(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        let what = e
            .as_db_error()
            .and_then(|d| d.constraint())
            .unwrap_or("a unique key");
        return StoreError::Conflict(what.to_string());
    }
    StoreError::unavailable(e)
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::unavailable(format!("database connection: {e}"))
}

/// A connection for a group's transaction; none to be had fails the group
/// at once (retrying its requests alone would not find one either).
async fn group_client(pool: &Pool) -> Result<deadpool_postgres::Object, GroupFailure> {
    pool.get()
        .await
        .map_err(|e| GroupFailure::unreachable(pool_error(e)))
}

impl PgStore {
    /// Connects, runs the migrations (one node at a time), and starts
    /// listening for due-work notifications.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::unavailable(format!("invalid PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(StoreError::unavailable)?;
        migrate(&pool).await?;
        let due = Arc::new(Notify::new());
        let listener = tokio::spawn(listen::run(config, DUE_CHANNEL, due.clone()));
        // Few groups, so each is large: more groups at once measured slower
        // (more statements and WAL flushes for the same events). Two ingest
        // groups let one commit while the next runs its statements.
        let ingests = Group::start(IngestWork { pool: pool.clone() }, MAX_GROUP, 2);
        let records = Group::start(RecordWork { pool: pool.clone() }, MAX_GROUP, 1);
        Ok(PgStore {
            pool,
            ingests,
            records,
            due,
            _listener: listener,
        })
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }
}

async fn migrate(pool: &Pool) -> StoreResult<()> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS hookwire_schema (version INTEGER NOT NULL)")
        .await
        .map_err(db_error)?;
    let version: i32 = tx
        .query_opt("SELECT version FROM hookwire_schema", &[])
        .await
        .map_err(db_error)?
        .map(|r| r.get(0))
        .unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::unavailable(format!("migration {}: {e}", i + 1)))?;
    }
    tx.execute("DELETE FROM hookwire_schema", &[])
        .await
        .map_err(db_error)?;
    tx.execute(
        "INSERT INTO hookwire_schema (version) VALUES ($1)",
        &[&(MIGRATIONS.len() as i32)],
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

const WEBHOOK_COLUMNS: &str = "id, license_id, event_type, data_types, url, token, enabled,
     disabled_reason, created_at, signing_secret IS NOT NULL, max_per_second";

fn webhook_from_row(row: &Row) -> StoreResult<Webhook> {
    let corrupt = |e: hookwire_livechat::ValidationError| StoreError::corrupt("stored webhook", e);
    let event: String = row.get(2);
    let url: String = row.get(4);
    let bits: i16 = row.get(3);
    Ok(Webhook {
        id: row.get(0),
        license_id: row.get(1),
        event_type: event.parse().map_err(corrupt)?,
        data_types: DataTypes::from_bits(bits as u8),
        url: TargetUrl::parse_stored(&url).map_err(corrupt)?,
        token: row.get(5),
        enabled: row.get(6),
        disabled_reason: row.get(7),
        created_at: row.get(8),
        signed: row.get(9),
        max_per_second: row.get::<_, Option<i32>>(10).map(|n| n.max(0) as u32),
    })
}

fn raw_section(text: Option<String>) -> Option<Box<RawValue>> {
    text.and_then(|t| RawValue::from_string(t).ok())
}

fn event_from_row(row: &Row, first: usize) -> StoreResult<EventBody> {
    let event_type: String = row.get(first + 2);
    Ok(EventBody {
        unique_id: row.get(first),
        license_id: row.get(first + 1),
        event_type: event_type
            .parse()
            .map_err(|e: hookwire_livechat::ValidationError| {
                StoreError::corrupt("stored event", e)
            })?,
        sections: [
            raw_section(row.get(first + 3)),
            raw_section(row.get(first + 4)),
            raw_section(row.get(first + 5)),
            raw_section(row.get(first + 6)),
        ],
    })
}

fn details_from_rows(rows: &[Row]) -> Vec<DetailsSet> {
    rows.iter()
        .map(|r| DetailsSet {
            set_id: r.get(0),
            icon: r.get(1),
            fields_json: r.get(2),
            updated_at: r.get(3),
        })
        .collect()
}

const DETAILS_SQL: &str = "SELECT set_id, icon, fields, updated_at FROM visitor_details
     WHERE license_id = $1 AND visitor_id = $2 ORDER BY updated_at, set_id";

fn visitor_from_row(r: &Row) -> VisitorView {
    VisitorView {
        visitor_id: r.get(0),
        name: r.get(1),
        email: r.get(2),
        last_event_type: r.get(3),
        last_seen_at: r.get(4),
        details: Vec::new(),
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_license(
        &self,
        license_id: &str,
        api_key_hash: &str,
        now: Millis,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO licenses (license_id, api_key_hash, created_at) VALUES ($1, $2, $3)",
                &[&license_id, &api_key_hash, &now],
            )
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    async fn license_by_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<String>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT license_id FROM licenses WHERE api_key_hash = $1",
                &[&api_key_hash],
            )
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn create_webhook(&self, w: NewWebhook) -> StoreResult<Webhook> {
        self.client()
            .await?
            .execute(
                "INSERT INTO webhooks (id, license_id, event_type, data_types, url, token, enabled, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7)",
                &[
                    &w.id,
                    &w.license_id,
                    &w.event_type.as_str(),
                    &(w.data_types.bits() as i16),
                    &w.url.as_stored(),
                    &w.token,
                    &w.created_at,
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
        })
    }

    async fn list_webhooks(&self, license_id: &str) -> StoreResult<Vec<Webhook>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE license_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
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
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE license_id = $1 AND id = $2 AND deleted_at IS NULL"
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
        let url = patch.url.as_ref().map(|u| u.as_stored().to_string());
        let bits = patch.data_types.map(|d| d.bits() as i16);
        let limit_given = patch.max_per_second.is_some();
        let limit: Option<i32> = patch
            .max_per_second
            .flatten()
            .map(|n| n.min(i32::MAX as u32) as i32);
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE webhooks SET
                       url = COALESCE($3, url),
                       data_types = COALESCE($4, data_types),
                       enabled = COALESCE($5, enabled),
                       disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason
                                              WHEN $5 THEN NULL ELSE 'disabled by the license' END,
                       failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
                       max_per_second = CASE WHEN $6 THEN $7 ELSE max_per_second END
                     WHERE license_id = $1 AND id = $2 AND deleted_at IS NULL
                     RETURNING {WEBHOOK_COLUMNS}"
                ),
                &[
                    &license_id,
                    &id,
                    &url,
                    &bits,
                    &patch.enabled,
                    &limit_given,
                    &limit,
                ],
            )
            .await
            .map_err(db_error)?;
        if patch.enabled == Some(true) && row.is_some() {
            client
                .batch_execute(&format!("NOTIFY {DUE_CHANNEL}"))
                .await
                .map_err(db_error)?;
        }
        row.as_ref().map(webhook_from_row).transpose()
    }

    async fn delete_webhook(&self, license_id: &str, id: &str, now: Millis) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let n = tx
            .execute(
                "UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND license_id = $3 AND deleted_at IS NULL",
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
        }
        tx.commit().await.map_err(db_error)?;
        Ok(n > 0)
    }

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
                // once it has $2.
                "WITH expired AS (
                     SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                     WHERE d.state = 'pending' AND d.lease_until > 0 AND d.lease_until <= $1
                       AND d.next_attempt_at <= $1
                       AND w.enabled AND w.deleted_at IS NULL AND NOT (d.webhook_id = ANY($4))
                     ORDER BY d.next_attempt_at
                     LIMIT $2
                     FOR UPDATE OF d SKIP LOCKED),
                 free AS (
                     SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                     WHERE d.state = 'pending' AND d.lease_until = 0 AND d.next_attempt_at <= $1
                       AND w.enabled AND w.deleted_at IS NULL AND NOT (d.webhook_id = ANY($4))
                     ORDER BY d.next_attempt_at
                     LIMIT $2
                     FOR UPDATE OF d SKIP LOCKED),
                 due AS (SELECT id FROM expired UNION ALL SELECT id FROM free LIMIT $2),
                 leased AS (
                     UPDATE deliveries d SET lease_until = $3 FROM due WHERE d.id = due.id
                     RETURNING d.id, d.webhook_id, d.data_types, d.attempts_in_round, d.event_seq, d.next_attempt_at)
                 SELECT l.id, l.webhook_id, w.url, l.data_types, l.attempts_in_round, l.event_seq,
                        e.unique_id, e.license_id, e.event_type, e.chat, e.visitor, e.pre_chat_survey, e.ticket,
                        w.signing_secret, w.previous_signing_secret, w.previous_secret_until,
                        w.max_per_second
                 FROM leased l JOIN webhooks w ON w.id = l.webhook_id JOIN events e ON e.seq = l.event_seq
                 ORDER BY l.next_attempt_at",
                &[&now, &(limit as i64), &lease_until, &skip_webhooks],
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
                    let e = Arc::new(event_from_row(r, 6)?);
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
            });
        }
        Ok(jobs)
    }

    async fn release(&self, delivery_ids: Vec<i64>, due_at: Millis) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(BY_ID_PLANS).await.map_err(db_error)?;
        tx.execute(
            // `IS TRUE`: see `BY_ID_PLANS`.
            "UPDATE deliveries SET lease_until = 0, next_attempt_at = GREATEST(next_attempt_at, $2)
             WHERE id = ANY($1) AND (state = 'pending') IS TRUE",
            &[&delivery_ids, &due_at],
        )
        .await
        .map_err(db_error)?;
        notify_due(&tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn record_attempt(&self, r: AttemptRecord) -> StoreResult<()> {
        self.records.submit(r).await
    }

    async fn list_deliveries(&self, q: DeliveryQuery<'_>) -> StoreResult<Vec<DeliveryView>> {
        let client = self.client().await?;
        let state = q.state.map(DeliveryState::as_str);
        let event_type = q.event_type.map(EventType::as_str);
        let rows = client
            .query(
                "SELECT d.id, e.unique_id, d.webhook_id, e.event_type, d.state, d.created_at, d.next_attempt_at
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
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
        let mut views: Vec<DeliveryView> = rows
            .iter()
            .map(|r| {
                let event_type: String = r.get(3);
                let state_text: String = r.get(4);
                let state = DeliveryState::parse(&state_text).unwrap_or(DeliveryState::Pending);
                DeliveryView {
                    id: r.get(0),
                    event_id: r.get(1),
                    webhook_id: r.get(2),
                    event_type: event_type.parse().unwrap_or(EventType::ChatStarted),
                    state,
                    created_at: r.get(5),
                    next_attempt_at: (state == DeliveryState::Pending).then(|| r.get(6)),
                    attempts: Vec::new(),
                }
            })
            .collect();
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

    async fn redeliver(
        &self,
        license_id: &str,
        delivery_id: i64,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let exists = tx
            .query_opt(
                "SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                 WHERE d.id = $1 AND d.license_id = $2 AND w.deleted_at IS NULL FOR UPDATE OF d",
                &[&delivery_id, &license_id],
            )
            .await
            .map_err(db_error)?;
        if exists.is_none() {
            return Ok(false);
        }
        tx.execute(
            "UPDATE deliveries SET state = 'pending', attempts_in_round = 0, next_attempt_at = $1,
                 lease_until = 0, updated_at = $1
             WHERE id = $2 AND NOT (state = 'pending' AND lease_until > $1)",
            &[&now, &delivery_id],
        )
        .await
        .map_err(db_error)?;
        notify_due(&tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
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

    async fn put_visitor_details(
        &self,
        license_id: &str,
        visitor_id: &str,
        set: DetailsSet,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO visitor_details (license_id, visitor_id, set_id, icon, fields, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (license_id, visitor_id, set_id) DO UPDATE SET
                   icon = excluded.icon, fields = excluded.fields, updated_at = excluded.updated_at",
                &[&license_id, &visitor_id, &set.set_id, &set.icon, &set.fields_json, &set.updated_at],
            )
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    async fn visitor(
        &self,
        license_id: &str,
        visitor_id: &str,
    ) -> StoreResult<Option<VisitorView>> {
        let client = self.client().await?;
        let seen = client
            .query_opt(
                "SELECT visitor_id, name, email, last_event_type, last_seen_at FROM visitors
                 WHERE license_id = $1 AND visitor_id = $2",
                &[&license_id, &visitor_id],
            )
            .await
            .map_err(db_error)?;
        let details = details_from_rows(
            &client
                .query(DETAILS_SQL, &[&license_id, &visitor_id])
                .await
                .map_err(db_error)?,
        );
        Ok(match seen {
            Some(row) => Some(VisitorView {
                details,
                ..visitor_from_row(&row)
            }),
            None if !details.is_empty() => Some(VisitorView {
                visitor_id: visitor_id.to_string(),
                name: None,
                email: None,
                last_event_type: None,
                last_seen_at: None,
                details,
            }),
            None => None,
        })
    }

    async fn recent_visitors(
        &self,
        license_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<VisitorView>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT visitor_id, name, email, last_event_type, last_seen_at FROM visitors
                 WHERE license_id = $1 ORDER BY last_seen_at DESC LIMIT $2",
                &[&license_id, &(limit as i64)],
            )
            .await
            .map_err(db_error)?;
        let mut visitors: Vec<VisitorView> = rows.iter().map(visitor_from_row).collect();
        for v in &mut visitors {
            v.details = details_from_rows(
                &client
                    .query(DETAILS_SQL, &[&license_id, &v.visitor_id])
                    .await
                    .map_err(db_error)?,
            );
        }
        Ok(visitors)
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
        let n = tx
            .execute(
                "UPDATE deliveries SET state = 'pending', attempts_in_round = 0, next_attempt_at = $1,
                     lease_until = 0, updated_at = $1
                 WHERE license_id = $2 AND webhook_id = $3 AND state = 'failed' AND created_at >= $4
                   AND webhook_id IN (SELECT id FROM webhooks WHERE deleted_at IS NULL)",
                &[&now, &license_id, &webhook_id, &since],
            )
            .await
            .map_err(db_error)?;
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
        let rows = tx
            .query(
                &format!(
                    "UPDATE deliveries SET state = 'pending', attempts_in_round = 0,
                         next_attempt_at = $7, lease_until = 0, updated_at = $7
                     WHERE id IN (SELECT d.id FROM deliveries d WHERE {MATCHING}
                                  ORDER BY d.id LIMIT $6 FOR UPDATE SKIP LOCKED)
                     RETURNING id"
                ),
                &[&license, &webhook, &since, &after, &all, &limit, &now],
            )
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

    async fn rotate_signing_secret(
        &self,
        license_id: &str,
        id: &str,
        sealed_secret: crate::secret::SealedSecret,
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

    async fn pending_count(&self) -> StoreResult<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
                &[],
            )
            .await
            .map_err(db_error)?
            .get(0);
        Ok(n.max(0) as u64)
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
        new: &crate::secret::SealedTargetUrl,
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

    async fn list_licenses(&self) -> StoreResult<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query("SELECT license_id FROM licenses ORDER BY license_id", &[])
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
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
                        e.ticket, d.data_types
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE d.id = $1 AND d.license_id = $2",
                &[&delivery_id, &license_id],
            )
            .await
            .map_err(db_error)?;
        let Some(r) = row else { return Ok(None) };
        let bits: i16 = r.get(7);
        Ok(Some((
            event_from_row(&r, 0)?,
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
                "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE license_id = $1 AND state = 'pending'",
                &[&license_id],
            )
            .await
            .map_err(db_error)?;
        let pending: i64 = r.get(0);
        Ok(QueueStats {
            pending: pending.max(0) as u64,
            oldest_pending_at: r.get(1),
        })
    }

    async fn ops_stats(&self) -> StoreResult<OpsStats> {
        let r = self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'),
                        (SELECT MIN(created_at) FROM deliveries WHERE state = 'pending'),
                        (SELECT COUNT(*) FROM webhooks WHERE NOT enabled AND deleted_at IS NULL)",
                &[],
            )
            .await
            .map_err(db_error)?;
        let (pending, disabled): (i64, i64) = (r.get(0), r.get(2));
        Ok(OpsStats {
            pending: pending.max(0) as u64,
            oldest_pending_at: r.get(1),
            disabled_webhooks: disabled.max(0) as u64,
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

    fn due_signal(&self) -> Option<Arc<Notify>> {
        Some(self.due.clone())
    }
}
