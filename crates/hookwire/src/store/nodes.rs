//! Nodes sharing one database: heartbeats, and taking over the leases of a
//! node that stopped beating.
//!
//! On PostgreSQL every serving process is a *node* with a random id. Each
//! lease it takes (a claimed or handed-off delivery, a claimed alert) names
//! it, and it refreshes its heartbeat with the database's own clock. A live
//! node that finds another's heartbeat older than `dead_after` declares it
//! dead and frees its leases at once, instead of waiting for them to run
//! out. Recording an attempt and giving a lease back only take effect while
//! the lease still names this node, so a node that was declared dead cannot
//! overwrite what the node that took over does.
//!
//! A SQLite database belongs to one process (a lock file enforces it), whose
//! leases nobody else could take: it has no heartbeat, and the defaults here
//! describe that single node.

use super::StoreResult;
use async_trait::async_trait;
use std::time::Duration;

/// What one heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// This node's heartbeat was written: no other node has declared it
    /// dead. False: it was, and its leases may be another's by now; it must
    /// stop acting on them and join again as a new node.
    pub registered: bool,
    /// Nodes whose heartbeat is fresh, this one included when registered.
    pub alive: u64,
    /// Some node's heartbeat is stale and its leases not yet taken over, or
    /// a dead node's row is old enough to delete: [`Nodes::take_over`] has
    /// work.
    pub takeover_due: bool,
}

impl Beat {
    /// The one node of a database nobody shares.
    pub const ALONE: Beat = Beat {
        registered: true,
        alive: 1,
        takeover_due: false,
    };
}

/// When a node counts as dead, and when its row is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeTimes {
    /// A node whose heartbeat is older than this is dead.
    pub dead_after: Duration,
    /// The row of a node declared dead is deleted this long after.
    pub forget_after: Duration,
}

/// What a takeover did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Takeover {
    /// The labels of the nodes declared dead.
    pub nodes: Vec<String>,
    /// Their pending deliveries whose leases were freed.
    pub deliveries: u64,
    /// Their pending alerts whose leases were freed.
    pub alerts: u64,
    /// Rows of nodes declared dead longer than `forget_after` ago, deleted.
    pub forgotten: u64,
}

#[async_trait]
pub trait Nodes: Send + Sync {
    /// Whether other processes may share this database, so that this one
    /// keeps a heartbeat. False (the default) for a database one process
    /// owns.
    fn shared(&self) -> bool {
        false
    }

    /// Registers this process as a new node: a new random id, a fresh
    /// heartbeat, and `label` (host and pid) for operators and logs. Leases
    /// taken from then on name the new id. Called at start, and again after
    /// this node's heartbeat went stale (its old id's leases are then taken
    /// over like any dead node's).
    async fn join(&self, _label: &str, _times: NodeTimes) -> StoreResult<Beat> {
        Ok(Beat::ALONE)
    }

    /// Writes this node's heartbeat (the database's `now()`), unless another
    /// node has declared it dead; counts the nodes whose heartbeat is younger
    /// than `dead_after`, and says whether some node's is older, or a dead
    /// node's row is older than `forget_after`.
    async fn heartbeat(&self, _times: NodeTimes) -> StoreResult<Beat> {
        Ok(Beat::ALONE)
    }

    /// Declares dead every other node whose heartbeat is older than
    /// `dead_after` and frees their leases (pending deliveries and alerts
    /// become due for any node), in one transaction, and deletes the rows of
    /// nodes declared dead more than `forget_after` ago. Two nodes doing it
    /// at once free each lease once; a node whose heartbeat lands first is
    /// not declared dead.
    async fn take_over(&self, _times: NodeTimes) -> StoreResult<Takeover> {
        Ok(Takeover::default())
    }
}
