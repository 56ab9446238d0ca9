//! Attempt records on PostgreSQL, committed in groups.
//!
//! Finished attempts of the whole node (see [`group`](super::group)) are
//! logged and applied to their deliveries with one statement per group, and
//! each webhook's health (`failing_since`) is updated once, with what the
//! last of its attempts in the group says. A webhook row is only written when
//! its health changes: every write would lock it until commit. An attempt
//! moves its delivery on only while the delivery's lease names this node:
//! one taken over (this node was declared dead) belongs to another node now,
//! whose own record counts. The attempt is logged either way: it was made.

use super::ingest::query_if;
use super::ordering::{KeyColumns, LOCK_KEYS, WAKE_HEADS};
use super::pipeline::PipelinedTx;
use super::*;
use rules::ordering::PARKED;
use std::collections::HashSet;
use tokio_postgres::types::ToSql;

pub(super) struct RecordWork {
    pub pool: Pool,
    /// Whose leases records may end.
    pub node: NodeId,
}

#[async_trait]
impl GroupWork for RecordWork {
    type Request = AttemptRecord;
    type Answer = ();

    fn weight(_: &AttemptRecord) -> usize {
        1
    }

    /// One round trip (see [`pipeline`](super::pipeline)): `BEGIN`, the
    /// planner settings, the statement and `COMMIT` go out together.
    async fn run(&self, records: &[AttemptRecord]) -> Result<Vec<()>, GroupFailure> {
        let tx = PipelinedTx::new(group_client(&self.pool).await?, BY_ID_PLANS);
        let c = tx.client();
        // Final records of ordered deliveries wake the next of their keys,
        // under the keys' locks (`ordering`), taken first.
        let mut finished = KeyColumns::default();
        for r in records {
            if let (Some(key), false) = (&r.order_key, matches!(r.next, NextState::RetryAt(_))) {
                finished.push(&r.webhook_id, key);
            }
        }
        let ordered = !finished.is_empty();
        let (stmt, lock, wake) = tokio::try_join!(
            c.prepare_cached(RECORD),
            c.prepare_cached(LOCK_KEYS),
            c.prepare_cached(WAKE_HEADS),
        )?;
        let locks = finished.lock_ids();
        let lock_params: [&(dyn ToSql + Sync); 1] = [&locks];
        let pairs = finished.pairs();
        let now = records.iter().map(|r| r.at).max().unwrap_or_default();
        let wake_params: [&(dyn ToSql + Sync); 4] = [pairs[0], pairs[1], &now, &PARKED];
        // A delivery twice in one statement would be updated once: split there.
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut in_chunk = HashSet::new();
        for (i, r) in records.iter().enumerate() {
            if !in_chunk.insert(r.delivery_id) {
                chunks.push(&records[start..i]);
                start = i;
                in_chunk.clear();
                in_chunk.insert(r.delivery_id);
            }
        }
        chunks.push(&records[start..]);
        let last = chunks.len() - 1;
        let node = self.node.get();
        let mut woken = Vec::new();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let columns = RecordColumns::new(chunk);
            let mut params = columns.params().to_vec();
            params.push(&node);
            let (_, _, _, rows, _) = tokio::try_join!(
                biased;
                tx.begin(),
                query_if(c, ordered && i == 0, &lock, &lock_params),
                c.execute(&stmt, &params),
                query_if(c, ordered && i == last, &wake, &wake_params),
                tx.commit_if(i == last),
            )?;
            woken = rows;
        }
        if !woken.is_empty() {
            // After the commit: every node's poller may claim them now.
            notify_due(c).await?;
        }
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

/// The statement of a chunk of records: logs the attempts, applies them to
/// their deliveries, and updates the health of webhooks whose health changed.
const RECORD: &str = "WITH input AS (
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
                 leased_by = NULL, attempts_in_round = d.attempts_in_round + 1, updated_at = i.at
             FROM input i
             WHERE d.id = i.delivery_id AND (d.state = 'pending') IS TRUE AND d.leased_by = $13";

/// A chunk of records as the columns of [`RECORD`].
struct RecordColumns<'a> {
    ids: Vec<i64>,
    at: Vec<Millis>,
    status: Vec<Option<i32>>,
    latency: Vec<i64>,
    error: Vec<Option<&'a str>>,
    excerpt: Vec<Option<&'a str>>,
    state: Vec<&'static str>,
    next: Vec<Millis>,
    h_id: Vec<&'a str>,
    h_ok: Vec<bool>,
    h_from: Vec<Millis>,
    h_restart: Vec<bool>,
}

impl<'a> RecordColumns<'a> {
    fn new(records: &'a [AttemptRecord]) -> Self {
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
        let n = records.len();
        let (mut ids, mut at, mut status, mut latency) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut error, mut excerpt, mut state, mut next) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
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
        let (h_id, h_ok, h_from, h_restart): (Vec<&'a str>, Vec<bool>, Vec<Millis>, Vec<bool>) =
            hooks
                .iter()
                .map(|(id, h)| (*id, h.delivered, h.failing_from, h.restarted))
                .collect();
        RecordColumns {
            ids,
            at,
            status,
            latency,
            error,
            excerpt,
            state,
            next,
            h_id,
            h_ok,
            h_from,
            h_restart,
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.ids,
            &self.at,
            &self.status,
            &self.latency,
            &self.error,
            &self.excerpt,
            &self.state,
            &self.next,
            &self.h_id,
            &self.h_ok,
            &self.h_from,
            &self.h_restart,
        ]
    }
}
