//! The embedded SQLite store: WAL mode, one group-committing writer thread,
//! a few reader connections for queries.
//!
//! This file opens and migrates the database and holds what the concerns
//! share (reading on a pooled connection, the event columns); each trait of
//! [`Store`] has its file: `licenses`, `webhooks`, `queue` (with `ingest`,
//! `claim` and `record` for the hot path's writer operations), `log`,
//! `visitors`, `ops`, `alerts`, `retention`, `nodes`, `v3_webhooks`.

mod alerts;
pub mod backup;
mod claim;
mod ingest;
mod licenses;
mod log;
mod nodes;
mod ops;
mod ordering;
mod process;
mod queue;
mod record;
mod retention;
mod v3_webhooks;
mod visitors;
mod web_sessions;
mod webhooks;
mod writer;

use super::*;
use async_trait::async_trait;
use hookwire_livechat::{DataType, DataTypes, EventType};
use record::Recorder;
use rules::rows::{DeliveryRow, EventRow, WebhookRow};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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
    include_str!("schema_9.sql"),
    include_str!("schema_10.sql"),
    include_str!("schema_11.sql"),
    include_str!("schema_12.sql"),
    include_str!("schema_13.sql"),
    include_str!("schema_14.sql"),
];
const READERS: usize = 4;

pub use process::configure_process;

pub struct SqliteStore {
    writer: Writer,
    recorder: Recorder,
    /// Held while this process serves the database (see `void_leases`).
    serving_lock: Mutex<Option<std::fs::File>>,
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    reader_slots: tokio::sync::Semaphore,
    _checkpointer: Checkpointer,
    /// Notified when the store itself made deliveries due that nobody holds
    /// (the next of an ordered key after a record): the poller claims them.
    due: Arc<tokio::sync::Notify>,
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
        // Incremental vacuum lets a large prune give space back
        // (`reclaim_space`). It can only be chosen before the first table
        // exists: on an older database this does nothing, and its free
        // pages are reused but not given back.
        conn.execute_batch(&format!(
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 5000;"
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
        let (writer, _thread) = Writer::spawn(conn)?;
        let due = Arc::new(tokio::sync::Notify::new());
        Ok(SqliteStore {
            recorder: Recorder::new(writer.clone(), due.clone()),
            due,
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

/// An event's body columns, from column `first` on: unique id, license,
/// type, then the four sections (`rules::rows` reads them); a v3 event's
/// payload and extra at `v3_first` and the one after.
fn event_from_columns(row: &Row<'_>, first: usize, v3_first: usize) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        unique_id: row.get(first)?,
        license_id: row.get(first + 1)?,
        event_type: row.get(first + 2)?,
        sections: [
            row.get(first + 3)?,
            row.get(first + 4)?,
            row.get(first + 5)?,
            row.get(first + 6)?,
        ],
        v3_payload: row.get(v3_first)?,
        v3_extra: row.get(v3_first + 1)?,
    })
}

fn conflict_or_unavailable(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
        _ => unavailable(e),
    }
}
