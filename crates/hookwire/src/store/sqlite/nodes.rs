//! Nodes on SQLite: one. The lock file lets one process serve a database,
//! so no other node could take its leases over and there is no heartbeat to
//! keep; leases a crash left behind are voided at the next start
//! (`SqliteStore::void_leases`). The trait's defaults describe that node.

use super::*;

impl Nodes for SqliteStore {}
