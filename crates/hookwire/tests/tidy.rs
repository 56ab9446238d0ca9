//! The architecture checks itself: the invariants ARCHITECTURE.md states
//! about where things may appear, checked over the source text of every
//! crate. A failure names the file and the line, and why the rule exists.
//!
//! - SQL, `rusqlite` and `tokio_postgres` appear only under `store/` (and in
//!   the test harness, `testing/`, which creates and inspects test databases).
//! - No handler writes through the store: writes go through `service`
//!   (sealing, dispatcher wake-ups) or the engine.
//! - axum appears only in `api/`, `server.rs`, the `listen` tool and the test
//!   harness (whose receivers are axum servers).
//! - Every module opens with a `//!` header saying what it is for.
//! - No file that is not a test passes 800 lines.
//! - Every crate forbids `unsafe`; `hookwire` denies it and allows the one
//!   documented block (`store::sqlite::configure_process`, run first in
//!   `main`).

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// Every `.rs` file under `dir`, sorted, as (path relative to the workspace, text).
fn rust_files(dir: &Path) -> Vec<(String, String)> {
    let root = workspace();
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                let rel = path.strip_prefix(&root).unwrap_or(&path);
                out.push((rel.to_string_lossy().replace('\\', "/"), text));
            }
        }
    }
    out.sort();
    out
}

fn crates() -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .expect("crates/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    crates.sort();
    crates
}

/// Every source file of every crate: `src/` and `tests/`.
fn all_sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for c in crates() {
        for sub in ["src", "tests", "benches"] {
            if c.join(sub).is_dir() {
                files.extend(rust_files(&c.join(sub)));
            }
        }
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    files
}

/// The lines of `text` before its `#[cfg(test)]` module, if it has one:
/// what the rules about production code look at.
fn production_part(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

fn is_test_file(path: &str) -> bool {
    path.contains("/tests/") || path.ends_with("_tests.rs") || path.ends_with("/tests.rs")
}

/// Lines of the hookwire crate's own sources (not its tests) that match
/// `needle`, outside the directories and files `allowed` names.
fn offending(needles: &[&str], allowed: &[&str]) -> Vec<String> {
    let src = workspace().join("crates/hookwire/src");
    let mut found = Vec::new();
    for (path, text) in rust_files(&src) {
        let inner = path.trim_start_matches("crates/hookwire/src/");
        if allowed.iter().any(|a| inner.starts_with(a)) {
            continue;
        }
        for (n, line) in production_part(&text).lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if let Some(needle) = needles.iter().find(|needle| line.contains(*needle)) {
                found.push(format!("{path}:{}: {needle:?} in `{}`", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_store_knows_sql() {
    let found = offending(
        &[
            "rusqlite",
            "tokio_postgres",
            "deadpool_postgres",
            "\"SELECT ",
            "\"INSERT INTO",
            "\"UPDATE ",
            "\"DELETE FROM",
            "\"CREATE TABLE",
            "\"PRAGMA",
            ".sql\")",
        ],
        &["store/", "testing/"],
    );
    assert!(
        found.is_empty(),
        "SQL outside store/ (only the store may know the database, so a second backend \
         stays a second implementation of the store's traits):\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_api_layer_knows_axum() {
    let found = offending(
        &["axum"],
        &["api/", "server.rs", "tools/listen.rs", "testing/"],
    );
    assert!(
        found.is_empty(),
        "axum outside api/, server.rs and the listen tool (the engine, the service \
         and the store take and return plain types):\n{}",
        found.join("\n")
    );
}

#[test]
fn handlers_write_through_the_service_never_the_store() {
    let writes = [
        "create_",
        "update_",
        "delete_",
        "put_",
        "redeliver",
        "rotate_",
        "replace_",
        "ingest(",
        "record_attempt",
        "release(",
        "disable_webhook",
        "set_web_session",
        "take_portal_link",
        "prune_",
    ];
    let api = workspace().join("crates/hookwire/src/api");
    let mut found = Vec::new();
    for (path, text) in rust_files(&api) {
        // A call may be split over lines: `.store()\n    .create_webhook(..)`.
        let joined: String = production_part(&text).split_whitespace().collect();
        for write in writes {
            if joined.contains(&format!(".store().{write}")) {
                found.push(format!("{path}: .store().{write}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "handlers writing through the store (call service::Service instead, which \
         seals secrets and wakes the dispatcher):\n{}",
        found.join("\n")
    );
}

#[test]
fn every_module_has_a_header() {
    let missing: Vec<String> = all_sources()
        .into_iter()
        .filter(|(_, text)| {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            !first.starts_with("//!")
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a `//!` header saying what they are for:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_file_that_is_not_a_test_passes_800_lines() {
    let long: Vec<String> = all_sources()
        .into_iter()
        .filter(|(path, _)| !is_test_file(path))
        .filter_map(|(path, text)| {
            let lines = production_part(&text).lines().count();
            (lines > 800).then(|| format!("{path}: {lines} lines"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files past 800 lines (split them by concern):\n{}",
        long.join("\n")
    );
}

#[test]
fn unsafe_code_is_forbidden_but_in_one_documented_place() {
    let root = workspace();
    for c in crates() {
        let name = c.file_name().unwrap().to_string_lossy().to_string();
        let mut roots = vec![c.join("src/lib.rs"), c.join("src/main.rs")];
        if let Ok(bins) = std::fs::read_dir(c.join("src/bin")) {
            roots.extend(bins.map(|b| b.expect("a binary").path()));
        }
        for file in roots.into_iter().filter(|p| p.exists()) {
            let text = std::fs::read_to_string(&file).expect("a crate root");
            let rel = file.strip_prefix(&root).unwrap().display().to_string();
            let want = if name == "hookwire" {
                "#![deny(unsafe_code)]"
            } else {
                "#![forbid(unsafe_code)]"
            };
            assert!(text.contains(want), "{rel} lacks {want}");
        }
    }
    // The one place: SQLite's process-wide setting, before any connection.
    let allowed = [
        "crates/hookwire/src/main.rs",
        "crates/hookwire/src/store/sqlite/process.rs",
    ];
    let mut found = Vec::new();
    for (path, text) in all_sources() {
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // Spelled in pieces, so this file does not find itself.
            let uses_unsafe = [
                concat!("unsafe", " {"),
                concat!("unsafe", " fn"),
                concat!("unsafe", " impl"),
                concat!("allow(", "unsafe_code)"),
            ]
            .iter()
            .any(|needle| code.contains(needle));
            if uses_unsafe && !allowed.contains(&path.as_str()) {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unsafe outside the one documented place (ARCHITECTURE.md, invariants):\n{}",
        found.join("\n")
    );
}
