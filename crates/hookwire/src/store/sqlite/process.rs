//! SQLite's process-wide configuration: the one place hookwire uses
//! `unsafe` (ARCHITECTURE.md, invariants), run first in `main`.

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
#[allow(unsafe_code)]
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
