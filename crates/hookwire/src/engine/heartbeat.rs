//! This node's heartbeat on a shared database, and taking over the leases
//! of nodes whose heartbeat stopped.
//!
//! Three tasks, started by [`start`] once the node has joined:
//! - the heartbeat: every [`HEARTBEAT_INTERVAL`] one statement writes this
//!   node's heartbeat and counts the live nodes; after a fence it joins
//!   again as a new node instead;
//! - the watchdog: fences this node (see [`liveness`](super::liveness)) the
//!   moment its last accepted heartbeat is [`DEAD_AFTER`] −
//!   [`FENCE_MARGIN`] old;
//! - a takeover, when the heartbeat found a node that stopped beating:
//!   its leases are freed for every node at once.
//!
//! On a database one process owns (SQLite) none of this runs and the node
//! is [`Liveness::alone`].

use super::liveness::{Liveness, DEAD_AFTER, FENCE_MARGIN, FORGET_AFTER, HEARTBEAT_INTERVAL};
use crate::store::{NodeTimes, Store, StoreError};
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TIMES: NodeTimes = NodeTimes {
    dead_after: DEAD_AFTER,
    forget_after: FORGET_AFTER,
};

/// A heartbeat that has not answered by then is given up; the next one
/// goes out on time.
const BEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// How this node is named in the nodes table and in other nodes' logs.
fn node_label() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into());
    format!("{host} pid {}", std::process::id())
}

/// Joins the database's nodes and starts the heartbeat, until `stop`. On a
/// database nobody shares, a node alone, and nothing runs.
pub async fn start(
    store: Arc<dyn Store>,
    metrics: Metrics,
    stop: CancellationToken,
) -> Result<Liveness, StoreError> {
    if !store.shared() {
        return Ok(Liveness::alone());
    }
    let liveness = Liveness::shared();
    let label = node_label();
    let sent = Instant::now();
    let beat = store.join(&label, TIMES).await?;
    if !beat.registered {
        // A random 64-bit id already taken: the next heartbeat draws another.
        tracing::warn!("this node's id was taken; joining again");
    } else {
        liveness.joined(sent, beat.alive);
    }
    tokio::spawn(watchdog(liveness.clone(), stop.clone()));
    tokio::spawn(keep_beating(store, liveness.clone(), metrics, label, stop));
    Ok(liveness)
}

async fn keep_beating(
    store: Arc<dyn Store>,
    liveness: Liveness,
    metrics: Metrics,
    label: String,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut takeover: Option<JoinHandle<()>> = None;
    // Failures are logged when they start and when they end, not each second.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let sent = Instant::now();
        let join = liveness.must_join();
        let call = async {
            if join {
                store.join(&label, TIMES).await
            } else {
                store.heartbeat(TIMES).await
            }
        };
        let error = match tokio::time::timeout(BEAT_TIMEOUT, call).await {
            Ok(Ok(beat)) if beat.registered => {
                if join {
                    liveness.joined(sent, beat.alive);
                    tracing::warn!("this node joined again as a new node and takes work again");
                } else {
                    liveness.renew(sent, beat.alive);
                }
                if failing {
                    tracing::info!("the heartbeat is written again");
                    failing = false;
                }
                if beat.takeover_due && takeover.as_ref().is_none_or(JoinHandle::is_finished) {
                    takeover = Some(tokio::spawn(take_over(store.clone(), metrics.clone())));
                }
                continue;
            }
            Ok(Ok(_)) if join => "its new id was taken".to_string(),
            Ok(Ok(_)) => {
                if liveness.fence() {
                    tracing::warn!(
                        "another node declared this node dead and took its leases over; \
                         it abandons what it holds and joins again as a new node"
                    );
                }
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {BEAT_TIMEOUT:?}"),
        };
        if !failing {
            tracing::warn!(
                error,
                "writing this node's heartbeat failed; retrying every second"
            );
            failing = true;
        }
    }
}

/// Fences this node when its deadline passes without a renewal.
async fn watchdog(liveness: Liveness, stop: CancellationToken) {
    loop {
        match liveness.deadline() {
            Some(deadline) => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                }
                if liveness.fence_if_stale() {
                    tracing::warn!(
                        stale_for = ?(DEAD_AFTER - FENCE_MARGIN),
                        "this node's heartbeat is stale: it stops claiming and attempting, \
                         abandons attempts in flight, and joins again as a new node once the \
                         database answers (its leases are taken over meanwhile)"
                    );
                }
            }
            None => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = liveness.rejoined() => {}
                }
            }
        }
    }
}

/// Frees the leases of nodes whose heartbeat stopped.
async fn take_over(store: Arc<dyn Store>, metrics: Metrics) {
    match store.take_over(TIMES).await {
        Ok(t) => {
            if !t.nodes.is_empty() {
                tracing::warn!(
                    nodes = ?t.nodes,
                    deliveries = t.deliveries,
                    alerts = t.alerts,
                    "took over the leases of nodes whose heartbeat stopped"
                );
            }
            if t.forgotten > 0 {
                tracing::debug!(nodes = t.forgotten, "forgot nodes dead for an hour");
            }
            metrics.leases_taken_over(t.deliveries, t.alerts);
        }
        Err(e) => {
            tracing::warn!(error = %e, "taking over a dead node's leases failed; retrying at the next heartbeat")
        }
    }
}
