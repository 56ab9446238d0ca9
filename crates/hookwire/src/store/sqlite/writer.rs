//! The single SQLite writer: one thread that owns the write connection and
//! commits whatever operations are waiting as one transaction (group commit).
//!
//! SQLite allows one writer at a time, so funnelling every write through one
//! thread costs nothing in concurrency and turns N commits (N fsyncs) into
//! one. Each operation runs in its own savepoint, so one failing operation
//! does not undo its neighbours; each caller is answered only after the
//! commit that holds its work succeeded.

use crate::store::{StoreError, StoreResult};
use rusqlite::{config::DbConfig, Connection};
use tokio::sync::{mpsc, oneshot};

/// How many operations one transaction may hold; bounds commit latency.
const MAX_GROUP: usize = 512;
/// Operations waiting for the writer; callers wait when it is full.
const QUEUE: usize = 8192;

type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;
/// An operation gets the connection, or the reason no transaction could be opened.
type Op = Box<dyn for<'c> FnOnce(Result<&'c Connection, StoreError>) -> Reply + Send>;

#[derive(Clone)]
pub struct Writer {
    ops: mpsc::Sender<Op>,
}

impl Writer {
    /// Starts the writer thread on `conn`. It ends when every `Writer` is dropped.
    pub fn spawn(conn: Connection) -> StoreResult<(Writer, std::thread::JoinHandle<()>)> {
        plan_once(&conn)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .expect("spawning the SQLite writer thread");
        Ok((Writer { ops: tx }, handle))
    }

    /// Runs `f` inside the next group transaction and answers once it is committed.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let op: Op = Box::new(move |conn| {
            let result = conn.and_then(|conn| in_savepoint(conn, f));
            Box::new(move |commit: StoreResult<()>| {
                let _ = done.send(commit.and(result));
            })
        });
        self.ops.send(op).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Turns on SQLite's query planner stability guarantee for the writer's
/// connection: a statement keeps the plan it was prepared with, whatever
/// is bound to it.
///
/// Without it, a statement whose planning looked at a bound parameter (for
/// one, the planner weighs a `column = ?` it may filter on by whether the
/// value is 0 or 1) is marked to be planned again when that parameter is
/// bound anew, and rusqlite clears the bindings of a cached statement when
/// it goes back to the cache, which counts as binding anew. So such a
/// statement was prepared afresh on every use: measured at 3457bed, the
/// ordered key's `WAKE_HEAD` (`ordering.rs`) once per final record, about
/// 20 us of the writer's time per delivered event, and the claim once per
/// claim (docs/performance-log.md, 1c7c2b2). The writer's statements are
/// written for their plan without values (none compares a partially
/// indexed column with a parameter), which is the plan they are first
/// prepared with anyway. Readers keep the default: the delivery log's
/// filters (`state = ?`) may use partial indexes.
pub fn plan_once(conn: &Connection) -> StoreResult<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(StoreError::unavailable)?;
    Ok(())
}

fn run(conn: Connection, mut ops: mpsc::Receiver<Op>) {
    while let Some(first) = ops.blocking_recv() {
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let err = StoreError::unavailable(e);
            first(Err(err.clone()))(Err(err));
            continue;
        }
        let mut replies = vec![first(Ok(&conn))];
        while replies.len() < MAX_GROUP {
            match ops.try_recv() {
                Ok(op) => replies.push(op(Ok(&conn))),
                Err(_) => break,
            }
        }
        let commit = conn
            .execute_batch("COMMIT")
            .map_err(StoreError::unavailable);
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(commit.clone());
        }
    }
}

/// Runs `f` in a savepoint of its own: its failure undoes only its own work.
/// Nests (a batch inside an operation, a record inside a refused batch).
pub(super) fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    // Prepared once and cached: every operation pays for these two.
    conn.prepare_cached("SAVEPOINT op")
        .and_then(|mut s| s.execute([]))
        .map_err(unavailable)?;
    let result = f(conn);
    if result.is_ok() {
        conn.prepare_cached("RELEASE op")
            .and_then(|mut s| s.execute([]))
            .map_err(unavailable)?;
    } else {
        conn.execute_batch("ROLLBACK TO op; RELEASE op")
            .map_err(unavailable)?;
    }
    result
}

pub fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::unavailable(e)
}

/// WAL pages after which the writer checkpoints by itself, a backstop for
/// when the background checkpointer lags (SQLite's default is 1,000).
///
/// Under steady load it is also what restarts the WAL: a restart needs a
/// checkpoint that has caught up when the next transaction begins, and the
/// background one never has (the writer commits every millisecond or so).
pub const BACKSTOP_CHECKPOINT_PAGES: u32 = 10_000;
/// How often the background checkpointer runs. Often, so that when the
/// writer's backstop checkpoint comes little is left for it to copy: 50 ms
/// measured ~10 % less hookwire CPU per event than 250 ms, one per request
/// (docs/performance-log.md, 4a8db16); on an idle database a round finds nothing.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Moves committed WAL frames into the database file from a connection of
/// its own, so the writer's commits do not stall behind a checkpoint (with
/// `synchronous = full` a checkpoint copies the frames and fsyncs the
/// database: tens of milliseconds that every waiting caller would feel).
/// `PASSIVE` never blocks the writer or readers; a commit's durability is
/// the WAL fsync either way. Stops when dropped.
pub struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    pub fn spawn(path: &std::path::Path, synchronous: &str) -> StoreResult<Checkpointer> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.execute_batch(&format!(
            "PRAGMA busy_timeout = 5000; PRAGMA synchronous = {synchronous};"
        ))
        .map_err(unavailable)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    // A failure (full disk, busy) is tried again next round;
                    // the writer's backstop checkpoint still bounds the WAL.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| StoreError::unavailable(format!("spawning the checkpointer: {e}")))?;
        Ok(Checkpointer { _stop: stop })
    }
}
