//! Attempt records on PostgreSQL, committed in groups.
//!
//! Finished attempts of the whole node (see [`group`](super::group)) are
//! logged and applied to their deliveries with one statement per group, and
//! each webhook's health (`failing_since`) is updated once, with what the
//! last of its attempts in the group says. A webhook row is only written when
//! its health changes: every write would lock it until commit.

use super::*;
use std::collections::HashSet;

pub(super) struct RecordWork {
    pub pool: Pool,
}

#[async_trait]
impl GroupWork for RecordWork {
    type Request = AttemptRecord;
    type Answer = ();

    fn weight(_: &AttemptRecord) -> usize {
        1
    }

    async fn run(&self, records: &[AttemptRecord]) -> Result<Vec<()>, GroupFailure> {
        let mut client = group_client(&self.pool).await?;
        let tx = client.transaction().await?;
        tx.batch_execute(BY_ID_PLANS).await?;
        // A delivery twice in one statement would be updated once: split there.
        let mut start = 0;
        let mut in_chunk = HashSet::new();
        for (i, r) in records.iter().enumerate() {
            if !in_chunk.insert(r.delivery_id) {
                record_chunk(&tx, &records[start..i]).await?;
                start = i;
                in_chunk.clear();
                in_chunk.insert(r.delivery_id);
            }
        }
        record_chunk(&tx, &records[start..]).await?;
        tx.commit().await?;
        Ok(vec![(); records.len()])
    }
}

/// A webhook's health after a chunk of its attempts, as the same attempts
/// recorded one by one would leave it.
struct Health {
    delivered: bool,
    /// The first failure after the chunk's last success.
    failing_from: Millis,
    /// A success came before those failures: the failing run starts anew
    /// rather than continuing one the table may hold.
    restarted: bool,
}

/// Planner settings for a transaction that updates deliveries by id: only
/// nested loops over the primary key.
///
/// A prepared statement's generic plan is made once per connection and kept
/// until the table's statistics change, which on a fresh database means
/// until autovacuum first analyzes it (a minute or more). Made while the
/// table was nearly empty, the plan was a sequential scan (or a scan of a
/// whole partial index), hash-joined with the batch: cheap then, and then a
/// few milliseconds per statement and growing with the table, most of
/// PostgreSQL's CPU under load (BENCHMARKS.md). By id, through the primary
/// key, is the right plan at every size. For the same reason conditions
/// are written `(state = 'pending') IS TRUE` (the same: `state` is NOT
/// NULL): plain, it matches the predicate of the partial indexes on pending
/// rows, which hold an entry for every finished delivery until the next
/// vacuum.
pub(super) const BY_ID_PLANS: &str =
    "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

async fn record_chunk(
    tx: &deadpool_postgres::Transaction<'_>,
    records: &[AttemptRecord],
) -> Result<(), tokio_postgres::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let mut health: HashMap<&str, Health> = HashMap::new();
    for r in records {
        let delivered = r.next == NextState::Delivered;
        match health.get_mut(r.webhook_id.as_str()) {
            None => {
                health.insert(
                    &r.webhook_id,
                    Health {
                        delivered,
                        failing_from: r.at,
                        restarted: false,
                    },
                );
            }
            Some(h) if delivered => h.delivered = true,
            Some(h) if h.delivered => {
                *h = Health {
                    delivered: false,
                    failing_from: r.at,
                    restarted: true,
                }
            }
            Some(_) => {}
        }
    }
    let (mut ids, mut at, mut status, mut latency, mut error, mut excerpt, mut state, mut next) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for r in records {
        let (s, n) = match r.next {
            NextState::Delivered => ("delivered", r.at),
            NextState::RetryAt(when) => ("pending", when),
            NextState::Failed => ("failed", r.at),
        };
        ids.push(r.delivery_id);
        at.push(r.at);
        status.push(r.status.map(i32::from));
        latency.push(r.latency_ms);
        error.push(r.error.as_deref());
        excerpt.push(r.response_excerpt.as_deref());
        state.push(s);
        next.push(n);
    }
    let mut hooks: Vec<_> = health.into_iter().collect();
    hooks.sort_unstable_by_key(|(id, _)| *id);
    let (h_id, h_ok, h_from, h_restart): (Vec<&str>, Vec<bool>, Vec<Millis>, Vec<bool>) = hooks
        .iter()
        .map(|(id, h)| (*id, h.delivered, h.failing_from, h.restarted))
        .collect();
    let stmt = tx
        .prepare_cached(
            "WITH input AS (
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], $5::text[],
                                      $6::text[], $7::text[], $8::bigint[])
                     AS i(delivery_id, at, status, latency_ms, error, excerpt, state, next_at)),
             logged AS (
                 INSERT INTO attempts (delivery_id, at, status, latency_ms, error, response_excerpt)
                 SELECT delivery_id, at, status, latency_ms, error, excerpt FROM input),
             health AS (
                 UPDATE webhooks w SET failing_since = CASE
                         WHEN h.ok THEN NULL
                         WHEN h.restart THEN h.since
                         ELSE COALESCE(w.failing_since, h.since) END
                 FROM UNNEST($9::text[], $10::bool[], $11::bigint[], $12::bool[]) AS h(id, ok, since, restart)
                 WHERE w.id = h.id AND CASE
                         WHEN h.ok THEN w.failing_since IS NOT NULL
                         WHEN h.restart THEN w.failing_since IS DISTINCT FROM h.since
                         ELSE w.failing_since IS NULL END)
             UPDATE deliveries d SET state = i.state, next_attempt_at = i.next_at, lease_until = 0,
                 attempts_in_round = d.attempts_in_round + 1, updated_at = i.at
             FROM input i
             WHERE d.id = i.delivery_id AND (d.state = 'pending') IS TRUE",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &ids, &at, &status, &latency, &error, &excerpt, &state, &next, &h_id, &h_ok, &h_from,
            &h_restart,
        ],
    )
    .await?;
    Ok(())
}
