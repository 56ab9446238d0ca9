//! Online backup: a consistent copy of a live SQLite database, taken from
//! another process while `hookwire serve` keeps writing.
//!
//! `VACUUM INTO` reads the database inside one read transaction, so the copy
//! is the database as of one commit: every event answered `202` before the
//! backup began is in it. In WAL mode a reader never blocks the writer; the
//! only cost to the server is that its checkpoints cannot move past the
//! backup's snapshot until the copy is done, so the WAL grows meanwhile.
//! The copy is written beside the target, checked with `PRAGMA
//! integrity_check`, flushed to disk, and only then renamed into place.

use crate::store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant};

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The copy's size.
    pub bytes: u64,
    /// How long the copy took, the read transaction included.
    pub took: Duration,
}

/// Copies the database at `source` to `target`, which must not exist yet.
pub fn backup(source: &Path, target: &Path) -> StoreResult<BackupReport> {
    if target.exists() {
        return Err(StoreError::Conflict(format!(
            "{} exists already; a backup never overwrites a file",
            target.display()
        )));
    }
    if !source.exists() {
        return Err(StoreError::unavailable(format!(
            "{} does not exist",
            source.display()
        )));
    }
    let partial = target.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let started = Instant::now();
    // Read-write without create: a WAL database's readers need its shared
    // memory file, which a read-only connection may not be able to make.
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::unavailable(format!("opening {}: {e}", source.display())))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(StoreError::unavailable)?;
    let target_text = partial
        .to_str()
        .ok_or_else(|| StoreError::unavailable("the backup's path is not valid UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [target_text])
        .map_err(|e| StoreError::unavailable(format!("copying the database: {e}")))?;
    drop(conn);
    let took = started.elapsed();
    let result = check_and_settle(&partial, target);
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map(|bytes| BackupReport { bytes, took })
}

/// Checks the copy's integrity, flushes it, and renames it into place.
fn check_and_settle(partial: &Path, target: &Path) -> StoreResult<u64> {
    let copy = Connection::open_with_flags(partial, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::unavailable(format!("opening the copy: {e}")))?;
    let verdict: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| StoreError::unavailable(format!("checking the copy: {e}")))?;
    drop(copy);
    if verdict != "ok" {
        return Err(StoreError::corrupt("the backup copy", verdict));
    }
    let file = std::fs::File::open(partial).map_err(StoreError::unavailable)?;
    file.sync_all().map_err(StoreError::unavailable)?;
    let bytes = file.metadata().map_err(StoreError::unavailable)?.len();
    std::fs::rename(partial, target).map_err(StoreError::unavailable)?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself is durable only once its directory is flushed.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(bytes)
}
