//! Prometheus metrics for operators (`GET /metrics`).
//!
//! Each running server owns its own recorder instead of the process-wide one
//! the `metrics` macros default to: tests run many servers in one process,
//! and each must count only its own work. Counters and the latency histogram
//! are recorded as work happens; the backlog gauges are read from the
//! database at scrape time, so every node of a cluster reports the same queue.
//! The node gauges come from this node's last heartbeat.

use crate::store::{now_millis, OpsStats, PoolStats};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const EVENTS_INGESTED: &str = "hookwire_events_ingested_total";
pub const ATTEMPTS: &str = "hookwire_attempts_total";
pub const DELIVERIES: &str = "hookwire_deliveries_total";
pub const ATTEMPT_SECONDS: &str = "hookwire_attempt_duration_seconds";
pub const QUEUE_DEPTH: &str = "hookwire_queue_depth";
pub const OLDEST_PENDING: &str = "hookwire_oldest_pending_age_seconds";
pub const HELD: &str = "hookwire_deliveries_held";
pub const DISABLED_WEBHOOKS: &str = "hookwire_webhooks_disabled";
pub const DB_CONNECTIONS: &str = "hookwire_db_connections";
pub const DATABASE_UP: &str = "hookwire_database_up";
pub const PRUNED: &str = "hookwire_pruned_total";
pub const DATABASE_BYTES: &str = "hookwire_database_bytes";
pub const OLDEST_KEPT: &str = "hookwire_oldest_kept_age_seconds";
pub const PRUNE_BATCH_SECONDS: &str = "hookwire_prune_batch_seconds";
pub const NODES_ALIVE: &str = "hookwire_nodes_alive";
pub const HEARTBEAT_AGE: &str = "hookwire_heartbeat_age_seconds";
pub const NODE_FRESH: &str = "hookwire_node_fresh";
pub const LEASES_TAKEN_OVER: &str = "hookwire_leases_taken_over_total";

/// Latency buckets (seconds) up to the default 10 s attempt timeout.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets (seconds) for how long a prune batch held the database: a few
/// milliseconds is the design, so the resolution is below and around it.
const PRUNE_BATCH_BUCKETS: [f64; 8] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1];

/// How an attempt ended, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptLabel {
    /// Acknowledged: the delivery is done.
    Delivered = 0,
    /// Failed; the delivery is retried later.
    Retry,
    /// Failed with no retries left (or not retryable): the delivery failed.
    Failed,
}

impl AttemptLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptLabel::Delivered => "delivered",
            AttemptLabel::Retry => "retry",
            AttemptLabel::Failed => "failed",
        }
    }
}

/// This node among the nodes sharing its database, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeGauges {
    /// Nodes whose heartbeat was fresh at this node's last one, itself
    /// included (1 alone on SQLite).
    pub alive: u64,
    /// Since this node's last heartbeat the database accepted was sent
    /// (zero alone on SQLite).
    pub heartbeat_age: std::time::Duration,
    /// Whether this node may claim and attempt now.
    pub fresh: bool,
}

/// One server's metrics: cheap to clone, shared by the engine, the
/// dispatcher and the HTTP API.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    /// Attempts since the last summary line, by [`AttemptLabel`] (delivered,
    /// retry, failed): what the periodic log summary reports.
    tally: Arc<[AtomicU64; 3]>,
}

/// Attempts counted since the previous summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptTally {
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(ATTEMPT_SECONDS.into()), &LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .set_buckets_for_metric(
                Matcher::Full(PRUNE_BATCH_SECONDS.into()),
                &PRUNE_BATCH_BUCKETS,
            )
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics {
            recorder: Arc::new(recorder),
            handle,
            tally: Arc::default(),
        };
        metrics.with(|| {
            use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
            describe_counter!(
                EVENTS_INGESTED,
                "Events committed, by event type (idempotent replays not counted)."
            );
            describe_counter!(
                ATTEMPTS,
                "Delivery attempts, by outcome: delivered, retry, failed."
            );
            describe_counter!(
                DELIVERIES,
                "Deliveries that reached a final state, by outcome: delivered, failed."
            );
            describe_histogram!(
                ATTEMPT_SECONDS,
                Unit::Seconds,
                "Delivery attempt latency, request sent to answer read."
            );
            describe_gauge!(
                QUEUE_DEPTH,
                "Deliveries pending in the database (due, waiting for a retry, or in flight)."
            );
            describe_gauge!(
                OLDEST_PENDING,
                "Age of the oldest pending delivery (0 when none)."
            );
            describe_gauge!(
                HELD,
                "Deliveries held for disabled webhooks, waiting for them to be enabled (they count toward max_backlog with the pending ones)."
            );
            describe_gauge!(
                DISABLED_WEBHOOKS,
                "Webhooks disabled (by their license or for failing), not deleted."
            );
            describe_gauge!(
                DB_CONNECTIONS,
                "This node's database connections: open, in_use, max."
            );
            describe_gauge!(
                DATABASE_UP,
                "1 when the database answered this scrape's queries, else 0."
            );
            describe_counter!(
                PRUNED,
                "Rows removed by retention, by what: deliveries, events, visitors, \
                 visitor_details, webhooks, idempotency_keys, alerts."
            );
            describe_gauge!(
                DATABASE_BYTES,
                Unit::Bytes,
                "The database's size on disk (SQLite: file, WAL and shm)."
            );
            describe_histogram!(
                PRUNE_BATCH_SECONDS,
                Unit::Seconds,
                "How long each prune batch that deleted rows held the database (SQLite: the writer thread)."
            );
            describe_gauge!(
                OLDEST_KEPT,
                "Age of the oldest event kept (0 when none): at most about the retention."
            );
            describe_gauge!(
                NODES_ALIVE,
                "Nodes sharing the database whose heartbeat is fresh, as of this node's last heartbeat (1 on SQLite)."
            );
            describe_gauge!(
                HEARTBEAT_AGE,
                Unit::Seconds,
                "Since this node last wrote its heartbeat (0 on SQLite); past 4 s it stops claiming and attempting."
            );
            describe_gauge!(
                NODE_FRESH,
                "1 while this node's heartbeat is fresh and it claims and attempts, else 0."
            );
            describe_counter!(
                LEASES_TAKEN_OVER,
                "Leases this node took over from nodes whose heartbeat stopped, by what: deliveries, alerts."
            );
        });
        metrics
    }

    /// Runs `f` with this server's recorder as the `metrics` macros' target.
    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self.recorder.as_ref(), f)
    }

    /// Counts an ingested event by its name (a v2 event type or a v3 action).
    pub fn event_ingested(&self, event_type: &'static str) {
        self.with(|| metrics::counter!(EVENTS_INGESTED, "event_type" => event_type).increment(1));
    }

    pub fn attempt(&self, outcome: AttemptLabel, latency: std::time::Duration) {
        self.tally[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.with(|| {
            let label = outcome.as_str();
            metrics::counter!(ATTEMPTS, "outcome" => label).increment(1);
            if outcome != AttemptLabel::Retry {
                metrics::counter!(DELIVERIES, "outcome" => label).increment(1);
            }
            metrics::histogram!(ATTEMPT_SECONDS).record(latency.as_secs_f64());
        });
    }

    /// Rows of `what` removed by a prune batch that held the database for `held`.
    pub fn pruned(&self, what: &'static str, rows: u64, held: std::time::Duration) {
        if rows > 0 {
            self.with(|| {
                metrics::counter!(PRUNED, "what" => what).increment(rows);
                metrics::histogram!(PRUNE_BATCH_SECONDS).record(held.as_secs_f64());
            });
        }
    }

    /// Leases this node freed from dead nodes.
    pub fn leases_taken_over(&self, deliveries: u64, alerts: u64) {
        self.with(|| {
            metrics::counter!(LEASES_TAKEN_OVER, "what" => "deliveries").increment(deliveries);
            metrics::counter!(LEASES_TAKEN_OVER, "what" => "alerts").increment(alerts);
        });
    }

    /// The attempts counted since the last call, which starts a new count.
    pub fn take_tally(&self) -> AttemptTally {
        let take = |label: AttemptLabel| self.tally[label as usize].swap(0, Ordering::Relaxed);
        AttemptTally {
            delivered: take(AttemptLabel::Delivered),
            retried: take(AttemptLabel::Retry),
            failed: take(AttemptLabel::Failed),
        }
    }

    /// The Prometheus text exposition, with the gauges set from `ops`
    /// (None: the database did not answer), `pool` and `node`.
    pub fn render(&self, ops: Option<OpsStats>, pool: PoolStats, node: NodeGauges) -> String {
        self.with(|| {
            use metrics::gauge;
            gauge!(DATABASE_UP).set(if ops.is_some() { 1.0 } else { 0.0 });
            if let Some(ops) = ops {
                gauge!(QUEUE_DEPTH).set(ops.pending as f64);
                let age_ms = ops
                    .oldest_pending_at
                    .map(|at| (now_millis() - at).max(0))
                    .unwrap_or(0);
                gauge!(OLDEST_PENDING).set(age_ms as f64 / 1000.0);
                gauge!(HELD).set(ops.held as f64);
                gauge!(DISABLED_WEBHOOKS).set(ops.disabled_webhooks as f64);
                gauge!(DATABASE_BYTES).set(ops.database_bytes as f64);
                let kept_ms = ops
                    .oldest_kept_at
                    .map(|at| (now_millis() - at).max(0))
                    .unwrap_or(0);
                gauge!(OLDEST_KEPT).set(kept_ms as f64 / 1000.0);
            }
            gauge!(DB_CONNECTIONS, "state" => "open").set(pool.open as f64);
            gauge!(DB_CONNECTIONS, "state" => "in_use").set(pool.in_use as f64);
            gauge!(DB_CONNECTIONS, "state" => "max").set(pool.max as f64);
            gauge!(NODES_ALIVE).set(node.alive as f64);
            gauge!(HEARTBEAT_AGE).set(node.heartbeat_age.as_secs_f64());
            gauge!(NODE_FRESH).set(if node.fresh { 1.0 } else { 0.0 });
        });
        self.handle.render()
    }
}
