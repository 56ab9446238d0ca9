//! The embedded SQLite store: WAL mode, one group-committing writer thread,
//! a few reader connections for queries.

pub mod backup;
mod claim;
mod ingest;
mod record;
#[cfg(test)]
mod web_app_tests;
mod writer;

use super::*;
use claim::claim;
use hookwire_livechat::DataType;
use ingest::ingest_one;
use record::Recorder;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use writer::{unavailable, Checkpointer, Writer, BACKSTOP_CHECKPOINT_PAGES};

const SCHEMA: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
    include_str!("schema_6.sql"),
    include_str!("schema_7.sql"),
    include_str!("schema_8.sql"),
];
const READERS: usize = 4;

/// How large a savepoint's sub-journal may grow in memory before SQLite
/// moves it to a temporary file (SQLite's own default is 64 KiB).
///
/// Every writer operation runs in a savepoint, and SQLite copies each page an
/// operation is the first to change into that savepoint's sub-journal (for
/// its rollback; nothing in it is needed once the group commits). One
/// event's operation touches 16 pages or so, just past 64 KiB: the spills to
/// a temporary file were 16 % of hookwire's CPU under load (BENCHMARKS.md).
/// 120 KiB keeps those in memory, and a bulk operation (redelivering a
/// million deliveries) still spills, so memory stays bounded: keeping every
/// sub-journal in memory (`temp_store = MEMORY`) raised the peak RSS of a
/// 1,000,000 backlog from 69 to 142 MB. Not more than 128 KiB: SQLite writes
/// the in-memory part to the file in one call, and its Unix layer writes at
/// most 128 KiB per call (a larger threshold fails the spill as a full disk).
const SUB_JOURNAL_IN_MEMORY: i32 = 120 * 1024;

/// Configures SQLite for the whole process: see [`SUB_JOURNAL_IN_MEMORY`].
/// Only a speed-up; without it every store works the same.
///
/// # Safety
///
/// SQLite's process-wide configuration may only change before SQLite is
/// first used: call this before any connection is opened, while no other
/// thread can be opening one (the first thing `main` does).
pub unsafe fn configure_process() {
    // SAFETY: per this function's contract, SQLite is not initialized yet and
    // nothing else calls into it concurrently; the option takes one int.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_config(
            rusqlite::ffi::SQLITE_CONFIG_STMTJRNL_SPILL,
            SUB_JOURNAL_IN_MEMORY,
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        tracing::warn!(code = rc, "SQLite refused the sub-journal setting");
    }
}

pub struct SqliteStore {
    writer: Writer,
    recorder: Recorder,
    /// Held while this process serves the database (see `void_leases`).
    serving_lock: Mutex<Option<std::fs::File>>,
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    reader_slots: tokio::sync::Semaphore,
    _checkpointer: Checkpointer,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    /// `max_size` (bytes, 0 = none) caps the file: past it writes fail as
    /// on a full disk (`Unavailable`), and work again once there is room.
    pub fn open(path: &Path, synchronous: &str, max_size: u64) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::unavailable(format!("creating {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 5000;"
        ))
        .map_err(unavailable)?;
        migrate(&conn)?;
        if max_size > 0 {
            let page_size: u64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
                .map_err(unavailable)?
                .max(512) as u64;
            let pages = (max_size / page_size).max(1);
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                .map_err(unavailable)?;
        }
        // Checkpoints run in the background (see `Checkpointer`); the
        // writer checkpoints itself only if the WAL grows far past usual.
        conn.query_row(
            &format!("PRAGMA wal_autocheckpoint = {BACKSTOP_CHECKPOINT_PAGES}"),
            [],
            |_| Ok(()),
        )
        .map_err(unavailable)?;
        let checkpointer = Checkpointer::spawn(path, synchronous)?;
        let (writer, _thread) = Writer::spawn(conn);
        Ok(SqliteStore {
            recorder: Recorder::new(writer.clone()),
            writer,
            _checkpointer: checkpointer,
            serving_lock: Mutex::new(None),
            path: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            reader_slots: tokio::sync::Semaphore::new(READERS),
        })
    }

    /// SQLite serves one node, so at start no other node can hold a lease:
    /// every lease left by a crash is void and its delivery due again. An
    /// exclusive lock on `<db>.lock` makes sure no second `serve` process
    /// shares the file (the OS drops it when the process dies, even by `kill -9`).
    pub async fn void_leases(&self) -> StoreResult<usize> {
        let lock_path = self.path.with_extension("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                StoreError::unavailable(format!("opening {}: {e}", lock_path.display()))
            })?;
        file.try_lock().map_err(|_| {
            StoreError::unavailable(format!(
                "another hookwire is serving {}; SQLite serves one node (use PostgreSQL for several)",
                self.path.display()
            ))
        })?;
        if let Ok(mut held) = self.serving_lock.lock() {
            *held = Some(file);
        }
        self.writer
            .write(|c| {
                c.execute(
                    "UPDATE deliveries SET lease_until = 0 WHERE state = 'pending' AND lease_until > 0",
                    [],
                )
                .map_err(unavailable)
            })
            .await
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let _slot = self
            .reader_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pooled = self.readers.lock().map(|mut v| v.pop()).unwrap_or(None);
        let path = self.path.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open(&path)?;
                    c.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = 1;")?;
                    c
                }
            };
            let result = f(&conn);
            Ok::<_, rusqlite::Error>((conn, result))
        })
        .await
        .map_err(StoreError::unavailable)?
        .map_err(unavailable)?;
        if let Ok(mut pool) = self.readers.lock() {
            pool.push(conn);
        }
        result.map_err(unavailable)
    }
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    for (i, sql) in SCHEMA.iter().enumerate().skip(version.max(0) as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))
        .map_err(|e| StoreError::unavailable(format!("migration {}: {e}", i + 1)))?;
    }
    Ok(())
}

const WEBHOOK_COLUMNS: &str =
    "id, license_id, event_type, data_types, url, token, enabled, disabled_reason, created_at,
     signing_secret IS NOT NULL, max_per_second";

fn webhook_from_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let event: String = row.get(2)?;
    let url: String = row.get(4)?;
    let corrupt = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, what.into())
    };
    Ok(Webhook {
        id: row.get(0)?,
        license_id: row.get(1)?,
        event_type: event
            .parse()
            .map_err(|e: hookwire_livechat::ValidationError| corrupt(e.to_string()))?,
        data_types: DataTypes::from_bits(row.get(3)?),
        url: TargetUrl::parse_stored(&url).map_err(|e| corrupt(e.to_string()))?,
        token: row.get(5)?,
        enabled: row.get(6)?,
        disabled_reason: row.get(7)?,
        created_at: row.get(8)?,
        signed: row.get(9)?,
        max_per_second: row.get(10)?,
    })
}

fn query_webhook(c: &Connection, license_id: &str, id: &str) -> rusqlite::Result<Option<Webhook>> {
    c.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE license_id = ?1 AND id = ?2 AND deleted_at IS NULL"
    ))?
    .query_row(params![license_id, id], webhook_from_row)
    .optional()
}

fn raw_section(text: Option<String>) -> Option<Box<RawValue>> {
    text.and_then(|t| RawValue::from_string(t).ok())
}

fn event_from_columns(row: &Row<'_>, first: usize) -> rusqlite::Result<EventBody> {
    let event_type: String = row.get(first + 2)?;
    Ok(EventBody {
        unique_id: row.get(first)?,
        license_id: row.get(first + 1)?,
        event_type: event_type
            .parse()
            .map_err(|e: hookwire_livechat::ValidationError| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    e.to_string().into(),
                )
            })?,
        sections: [
            raw_section(row.get(first + 3)?),
            raw_section(row.get(first + 4)?),
            raw_section(row.get(first + 5)?),
            raw_section(row.get(first + 6)?),
        ],
    })
}

fn list_deliveries(c: &Connection, q: OwnedQuery) -> rusqlite::Result<Vec<DeliveryView>> {
    let mut sql = String::from(
        "SELECT d.id, e.unique_id, d.webhook_id, e.event_type, d.state, d.created_at, d.next_attempt_at
         FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.license_id = ?",
    );
    let mut args: Vec<rusqlite::types::Value> = vec![q.license_id.into()];
    if let Some(w) = q.webhook_id {
        sql.push_str(" AND d.webhook_id = ?");
        args.push(w.into());
    }
    if let Some(s) = q.state {
        sql.push_str(" AND d.state = ?");
        args.push(s.as_str().to_string().into());
    }
    if let Some(t) = q.event_type {
        sql.push_str(" AND e.event_type = ?");
        args.push(t.as_str().to_string().into());
    }
    if let Some(before) = q.before {
        sql.push_str(" AND d.id < ?");
        args.push(before.into());
    }
    sql.push_str(" ORDER BY d.id DESC LIMIT ?");
    args.push((q.limit as i64).into());
    let mut stmt = c.prepare(&sql)?;
    let mut views: Vec<DeliveryView> = stmt
        .query_map(params_from_iter(args), |r| {
            let event_type: String = r.get(3)?;
            let state: String = r.get(4)?;
            let state = DeliveryState::parse(&state).unwrap_or(DeliveryState::Pending);
            Ok(DeliveryView {
                id: r.get(0)?,
                event_id: r.get(1)?,
                webhook_id: r.get(2)?,
                event_type: event_type.parse().unwrap_or(EventType::ChatStarted),
                state,
                created_at: r.get(5)?,
                next_attempt_at: (state == DeliveryState::Pending)
                    .then(|| r.get(6))
                    .transpose()?,
                attempts: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // The attempt kept in the delivery's row and those with rows of their
    // own (schema_8.sql), in the order they were made.
    let mut attempts = c.prepare_cached(
        "SELECT at, status, latency_ms, error, response_excerpt FROM (
             SELECT first_at AS at, first_status AS status, first_latency_ms AS latency_ms,
                    first_error AS error, first_excerpt AS response_excerpt, 0 AS seq
             FROM deliveries WHERE id = ?1 AND first_at IS NOT NULL
             UNION ALL
             SELECT at, status, latency_ms, error, response_excerpt, id
             FROM attempts WHERE delivery_id = ?1)
         ORDER BY at, seq",
    )?;
    for view in &mut views {
        view.attempts = attempts
            .query_map([view.id], |r| {
                Ok(AttemptView {
                    at: r.get(0)?,
                    status: r.get(1)?,
                    latency_ms: r.get(2)?,
                    error: r.get(3)?,
                    response_excerpt: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(views)
}

fn details_of(
    c: &Connection,
    license_id: &str,
    visitor_id: &str,
) -> rusqlite::Result<Vec<DetailsSet>> {
    c.prepare_cached(
        "SELECT set_id, icon, fields, updated_at FROM visitor_details
         WHERE license_id = ?1 AND visitor_id = ?2 ORDER BY updated_at, set_id",
    )?
    .query_map(params![license_id, visitor_id], |r| {
        Ok(DetailsSet {
            set_id: r.get(0)?,
            icon: r.get(1)?,
            fields_json: r.get(2)?,
            updated_at: r.get(3)?,
        })
    })?
    .collect()
}

fn visitor_from_row(r: &Row<'_>) -> rusqlite::Result<VisitorView> {
    Ok(VisitorView {
        visitor_id: r.get(0)?,
        name: r.get(1)?,
        email: r.get(2)?,
        last_event_type: r.get(3)?,
        last_seen_at: r.get(4)?,
        details: Vec::new(),
    })
}

struct OwnedQuery {
    license_id: String,
    webhook_id: Option<String>,
    state: Option<DeliveryState>,
    event_type: Option<EventType>,
    before: Option<i64>,
    limit: usize,
}

fn conflict_or_unavailable(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
        _ => unavailable(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_license(
        &self,
        license_id: &str,
        api_key_hash: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let (id, hash) = (license_id.to_string(), api_key_hash.to_string());
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO licenses (license_id, api_key_hash, created_at) VALUES (?1, ?2, ?3)",
                    params![id, hash, now],
                )
                .map(|_| ())
                .map_err(conflict_or_unavailable)
            })
            .await
    }

    async fn license_by_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<String>> {
        let hash = api_key_hash.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT license_id FROM licenses WHERE api_key_hash = ?1")?
                .query_row([hash], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn create_webhook(&self, w: NewWebhook) -> StoreResult<Webhook> {
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO webhooks (id, license_id, event_type, data_types, url, token, enabled, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
                    params![w.id, w.license_id, w.event_type.as_str(), w.data_types.bits(), w.url.as_stored(), w.token, w.created_at],
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
                    created_at: w.created_at,
                })
            })
            .await
    }

    async fn list_webhooks(&self, license_id: &str) -> StoreResult<Vec<Webhook>> {
        let license = license_id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE license_id = ?1 AND deleted_at IS NULL ORDER BY created_at, id"
            ))?
            .query_map([license], webhook_from_row)?
            .collect()
        })
        .await
    }

    async fn get_webhook(&self, license_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        let (license, id) = (license_id.to_string(), id.to_string());
        self.read(move |c| query_webhook(c, &license, &id)).await
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
                if query_webhook(c, &license, &id).map_err(unavailable)?.is_none() {
                    return Ok(None);
                }
                if let Some(url) = &patch.url {
                    c.execute("UPDATE webhooks SET url = ?1 WHERE id = ?2", params![url.as_stored(), id])
                        .map_err(unavailable)?;
                }
                if let Some(types) = patch.data_types {
                    c.execute("UPDATE webhooks SET data_types = ?1 WHERE id = ?2", params![types.bits(), id])
                        .map_err(unavailable)?;
                }
                if let Some(limit) = patch.max_per_second {
                    c.execute("UPDATE webhooks SET max_per_second = ?1 WHERE id = ?2", params![limit, id])
                        .map_err(unavailable)?;
                }
                if let Some(enabled) = patch.enabled {
                    c.execute(
                        "UPDATE webhooks SET enabled = ?1,
                             disabled_reason = CASE WHEN ?1 THEN NULL ELSE 'disabled by the license' END,
                             failing_since = CASE WHEN ?1 THEN NULL ELSE failing_since END
                         WHERE id = ?2",
                        params![enabled, id],
                    )
                    .map_err(unavailable)?;
                }
                query_webhook(c, &license, &id).map_err(unavailable)
            })
            .await
    }

    async fn delete_webhook(&self, license_id: &str, id: &str, now: Millis) -> StoreResult<bool> {
        let (license, id) = (license_id.to_string(), id.to_string());
        self.writer
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE webhooks SET deleted_at = ?1 WHERE id = ?2 AND license_id = ?3 AND deleted_at IS NULL",
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
                }
                Ok(n > 0)
            })
            .await
    }

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
            .write(move |c| claim(c, now, limit, lease_until, &skip).map_err(unavailable))
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

    async fn rotate_signing_secret(
        &self,
        license_id: &str,
        id: &str,
        sealed_secret: crate::secret::SealedSecret,
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

    async fn pending_count(&self) -> StoreResult<u64> {
        self.read(|c| {
            c.prepare_cached("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")?
                .query_row([], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
        })
        .await
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
        new: &crate::secret::SealedTargetUrl,
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

    async fn list_deliveries(&self, q: DeliveryQuery<'_>) -> StoreResult<Vec<DeliveryView>> {
        let q = OwnedQuery {
            license_id: q.license_id.to_string(),
            webhook_id: q.webhook_id.map(str::to_string),
            state: q.state,
            event_type: q.event_type,
            before: q.before,
            limit: q.limit,
        };
        self.read(move |c| list_deliveries(c, q)).await
    }

    async fn redeliver(
        &self,
        license_id: &str,
        delivery_id: i64,
        now: Millis,
    ) -> StoreResult<bool> {
        let license = license_id.to_string();
        self.writer
            .write(move |c| {
                let exists: Option<i64> = c
                    .query_row(
                        "SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                         WHERE d.id = ?1 AND d.license_id = ?2 AND w.deleted_at IS NULL",
                        params![delivery_id, license],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                if exists.is_none() {
                    return Ok(false);
                }
                // A delivery being attempted right now keeps its lease; it is
                // already on its way.
                c.execute(
                    "UPDATE deliveries SET state = 'pending', attempts_in_round = 0, next_attempt_at = ?1,
                         lease_until = 0, updated_at = ?1
                     WHERE id = ?2 AND NOT (state = 'pending' AND lease_until > ?1)",
                    params![now, delivery_id],
                )
                .map_err(unavailable)?;
                Ok(true)
            })
            .await
    }

    async fn token_grants(&self, key: TokenKey) -> StoreResult<Vec<TokenGrant>> {
        self.read(move |c| {
            let (sql, value) = match key {
                // Hex digits sort before 'g': the range is exactly the ids
                // with this prefix, read from the id index.
                TokenKey::EventsAt(prefix) => (
                    "SELECT unique_id, license_id, token_expires_at FROM events
                     WHERE unique_id >= ?1 AND unique_id < ?1 || 'g' LIMIT 10000",
                    prefix,
                ),
                // `<> ''` lets SQLite use the partial index of old tokens.
                TokenKey::LegacyHash(hash) => (
                    "SELECT unique_id, license_id, token_expires_at FROM events
                     WHERE token_hash = ?1 AND token_hash <> ''",
                    hash,
                ),
            };
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map([value], |r| {
                Ok(TokenGrant {
                    event_id: r.get(0)?,
                    license_id: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn put_visitor_details(
        &self,
        license_id: &str,
        visitor_id: &str,
        set: DetailsSet,
    ) -> StoreResult<()> {
        let (license, visitor) = (license_id.to_string(), visitor_id.to_string());
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO visitor_details (license_id, visitor_id, set_id, icon, fields, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (license_id, visitor_id, set_id) DO UPDATE SET
                       icon = excluded.icon, fields = excluded.fields, updated_at = excluded.updated_at",
                    params![license, visitor, set.set_id, set.icon, set.fields_json, set.updated_at],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn visitor(
        &self,
        license_id: &str,
        visitor_id: &str,
    ) -> StoreResult<Option<VisitorView>> {
        let (license, visitor) = (license_id.to_string(), visitor_id.to_string());
        self.read(move |c| {
            let seen = c
                .prepare_cached(
                    "SELECT visitor_id, name, email, last_event_type, last_seen_at FROM visitors
                     WHERE license_id = ?1 AND visitor_id = ?2",
                )?
                .query_row(params![license, visitor], visitor_from_row)
                .optional()?;
            let details = details_of(c, &license, &visitor)?;
            Ok(match seen {
                Some(v) => Some(VisitorView { details, ..v }),
                None if !details.is_empty() => Some(VisitorView {
                    visitor_id: visitor,
                    name: None,
                    email: None,
                    last_event_type: None,
                    last_seen_at: None,
                    details,
                }),
                None => None,
            })
        })
        .await
    }

    async fn recent_visitors(
        &self,
        license_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<VisitorView>> {
        let license = license_id.to_string();
        self.read(move |c| {
            let mut visitors: Vec<VisitorView> = c
                .prepare_cached(
                    "SELECT visitor_id, name, email, last_event_type, last_seen_at FROM visitors
                     WHERE license_id = ?1 ORDER BY last_seen_at DESC LIMIT ?2",
                )?
                .query_map(params![license, limit as i64], visitor_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            for v in &mut visitors {
                v.details = details_of(c, &license, &v.visitor_id)?;
            }
            Ok(visitors)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            .await
            .map(|_| ())
    }

    async fn redeliver_failed_since(
        &self,
        license_id: &str,
        webhook_id: &str,
        since: Millis,
        now: Millis,
    ) -> StoreResult<u64> {
        let (license, webhook) = (license_id.to_string(), webhook_id.to_string());
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE deliveries SET state = 'pending', attempts_in_round = 0, next_attempt_at = ?1,
                         lease_until = 0, updated_at = ?1
                     WHERE license_id = ?2 AND webhook_id = ?3 AND state = 'failed' AND created_at >= ?4
                       AND webhook_id IN (SELECT id FROM webhooks WHERE deleted_at IS NULL)",
                    params![now, license, webhook, since],
                )
                .map(|n| n as u64)
                .map_err(unavailable)
            })
            .await
    }

    async fn redeliver_batch(
        &self,
        query: &ReplayQuery<'_>,
        after: i64,
        limit: usize,
        now: Millis,
    ) -> StoreResult<ReplayBatch> {
        let license = query.license_id.to_string();
        let webhook = query.webhook_id.map(str::to_string);
        let (since, all) = (query.since, query.include_delivered);
        let limit = limit as i64;
        self.writer
            .write(move |c| {
                // The same filter selects the batch, updates it and counts
                // what is left; ?6 bounds it from above.
                const MATCHING: &str = "d.license_id = ?1 AND (?2 IS NULL OR d.webhook_id = ?2)
                     AND d.created_at >= ?3 AND d.id > ?4
                     AND (d.state = 'failed' OR (?5 AND d.state = 'delivered'))
                     AND d.webhook_id IN (SELECT id FROM webhooks WHERE deleted_at IS NULL)";
                let last_id: Option<i64> = c
                    .query_row(
                        &format!(
                            "SELECT MAX(id) FROM (SELECT d.id FROM deliveries d WHERE {MATCHING}
                             ORDER BY d.id LIMIT ?6)"
                        ),
                        params![license, webhook, since, after, all, limit],
                        |r| r.get(0),
                    )
                    .map_err(unavailable)?;
                let Some(last) = last_id else {
                    return Ok(ReplayBatch { redelivered: 0, last_id: None, remaining: 0 });
                };
                let redelivered = c
                    .execute(
                        &format!(
                            "UPDATE deliveries SET state = 'pending', attempts_in_round = 0,
                                 next_attempt_at = ?7, lease_until = 0, updated_at = ?7
                             WHERE id IN (SELECT d.id FROM deliveries d WHERE {MATCHING} AND d.id <= ?6)"
                        ),
                        params![license, webhook, since, after, all, last, now],
                    )
                    .map_err(unavailable)? as u64;
                let remaining: i64 = c
                    .query_row(
                        &format!("SELECT COUNT(*) FROM deliveries d WHERE {MATCHING}"),
                        params![license, webhook, since, last, all],
                        |r| r.get(0),
                    )
                    .map_err(unavailable)?;
                Ok(ReplayBatch {
                    redelivered,
                    last_id: Some(last),
                    remaining: remaining as u64,
                })
            })
            .await
    }

    async fn list_licenses(&self) -> StoreResult<Vec<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT license_id FROM licenses ORDER BY license_id")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .await
    }

    async fn delivery_body(
        &self,
        license_id: &str,
        delivery_id: i64,
    ) -> StoreResult<Option<(EventBody, DataTypes)>> {
        let license = license_id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT e.unique_id, e.license_id, e.event_type, e.chat, e.visitor, e.pre_chat_survey,
                        e.ticket, d.data_types
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE d.id = ?1 AND d.license_id = ?2",
            )?
            .query_row(params![delivery_id, license], |r| {
                Ok((event_from_columns(r, 0)?, DataTypes::from_bits(r.get(7)?)))
            })
            .optional()
        })
        .await
    }

    async fn attempt_samples(
        &self,
        license_id: &str,
        since: Millis,
        limit: usize,
    ) -> StoreResult<AttemptSamples> {
        let license = license_id.to_string();
        self.read(move |c| {
            // Attempts live in two places (schema_8.sql): each is read newest
            // first through its own index, and the two runs are merged.
            let newest = |sql: &str| -> rusqlite::Result<Vec<(Millis, String, bool, i64)>> {
                c.prepare_cached(sql)?
                    .query_map(params![since, license, limit as i64 + 1], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect()
            };
            let mut found = newest(
                "SELECT a.at, d.webhook_id, a.error IS NULL, a.latency_ms
                 FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE a.at >= ?1 AND d.license_id = ?2
                 ORDER BY a.at DESC LIMIT ?3",
            )?;
            found.extend(newest(
                "SELECT first_at, webhook_id, first_error IS NULL, first_latency_ms
                 FROM deliveries WHERE license_id = ?2 AND first_at >= ?1
                 ORDER BY first_at DESC LIMIT ?3",
            )?);
            found.sort_by_key(|(at, ..)| std::cmp::Reverse(*at));
            let mut out = AttemptSamples {
                truncated: found.len() > limit,
                ..AttemptSamples::default()
            };
            let mut index: HashMap<String, usize> = HashMap::new();
            for (at, webhook_id, ok, latency_ms) in found.into_iter().take(limit) {
                let next = index.len();
                let webhook = *index.entry(webhook_id.clone()).or_insert_with(|| {
                    out.webhook_ids.push(webhook_id);
                    next
                });
                out.samples.push(AttemptSample {
                    at,
                    webhook,
                    ok,
                    latency_ms,
                });
            }
            out.samples.reverse();
            Ok(out)
        })
        .await
    }

    async fn ops_stats(&self) -> StoreResult<OpsStats> {
        self.read(|c| {
            let (pending, oldest_pending_at) = c
                .prepare_cached(
                    "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE state = 'pending'",
                )?
                .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
            let disabled: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM webhooks WHERE enabled = 0 AND deleted_at IS NULL",
                )?
                .query_row([], |r| r.get(0))?;
            Ok(OpsStats {
                pending: pending.max(0) as u64,
                oldest_pending_at,
                disabled_webhooks: disabled.max(0) as u64,
            })
        })
        .await
    }

    fn pool_stats(&self) -> PoolStats {
        // Readers are pooled and capped by `reader_slots`; the writer is one
        // more connection, always open.
        let in_use = (READERS - self.reader_slots.available_permits()) as u64;
        let idle = self.readers.lock().map(|v| v.len()).unwrap_or(0) as u64;
        PoolStats {
            open: idle + in_use + 1,
            in_use,
            max: READERS as u64 + 1,
        }
    }

    async fn queue_stats(&self, license_id: &str) -> StoreResult<QueueStats> {
        let license = license_id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT COUNT(*), MIN(created_at) FROM deliveries
                 WHERE license_id = ?1 AND state = 'pending'",
            )?
            .query_row([license], |r| {
                Ok(QueueStats {
                    pending: r.get::<_, i64>(0)?.max(0) as u64,
                    oldest_pending_at: r.get(1)?,
                })
            })
        })
        .await
    }
}
