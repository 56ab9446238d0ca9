//! Ordered delivery on PostgreSQL (`rules::ordering`): the key locks, the
//! probes and the statements that move a key's line.
//!
//! Nodes write one key's deliveries concurrently, so ingest (before it
//! gives a delivery of the key its id) and a final record of the key
//! (before it wakes the next) take the key's transaction-scoped advisory
//! lock, all of a transaction's keys in one statement, sorted. Ingests of
//! one key are so serialized: ids follow commit order, and an ingest that
//! parks a delivery behind another either commits before that one's record
//! (which then wakes it) or sees it finished (and does not park).

use super::*;
use rules::ordering::{
    sorted_lock_ids, BatchLine, LinePlace, LineQuery, AFTER_FAILED_SHOWN, PARKED,
};
use std::collections::HashSet;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

/// Takes the advisory locks in the order given (sorted by the caller), one
/// row each; held until the transaction ends.
pub(super) const LOCK_KEYS: &str =
    "SELECT pg_advisory_xact_lock(k) FROM UNNEST($1::bigint[]) WITH ORDINALITY AS u(k, n) ORDER BY n";

/// Which of the given (webhook, key) pairs have an unfinished delivery.
pub(super) const UNFINISHED_KEYS: &str = "SELECT DISTINCT d.webhook_id, d.order_key
     FROM UNNEST($1::text[], $2::text[]) AS u(w, k)
     JOIN deliveries d ON d.webhook_id = u.w AND d.order_key = u.k
     WHERE d.order_key IS NOT NULL AND d.state IN ('pending', 'held')";

/// Makes the first unfinished delivery of each (webhook, key) due at $3 if
/// it is parked; answers the ids made due.
pub(super) const WAKE_HEADS: &str = "UPDATE deliveries d SET next_attempt_at = $3
     FROM (SELECT (SELECT x.id FROM deliveries x
                   WHERE x.webhook_id = u.w AND x.order_key = u.k AND x.order_key IS NOT NULL
                     AND x.state IN ('pending', 'held')
                   ORDER BY x.id LIMIT 1) AS id
           FROM UNNEST($1::text[], $2::text[]) AS u(w, k)) h
     WHERE d.id = h.id AND d.next_attempt_at = $4
     RETURNING d.id";

/// The pairs of an ingest or a record, as the columns the statements take,
/// with their locks.
#[derive(Default)]
pub(super) struct KeyColumns {
    webhooks: Vec<String>,
    keys: Vec<String>,
}

impl KeyColumns {
    pub fn push(&mut self, webhook_id: &str, key: &str) {
        self.webhooks.push(webhook_id.to_string());
        self.keys.push(key.to_string());
    }

    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty()
    }

    pub fn lock_ids(&self) -> Vec<i64> {
        sorted_lock_ids(
            self.webhooks
                .iter()
                .map(String::as_str)
                .zip(self.keys.iter().map(String::as_str)),
        )
    }

    pub fn pairs(&self) -> [&(dyn ToSql + Sync); 2] {
        [&self.webhooks, &self.keys]
    }
}

/// Locks the pairs' keys and answers which have an unfinished delivery:
/// what ingest asks before it inserts deliveries of ordered webhooks.
pub(super) async fn lock_and_find_unfinished(
    c: &deadpool_postgres::Client,
    pairs: KeyColumns,
) -> Result<HashSet<(String, String)>, tokio_postgres::Error> {
    let locks = pairs.lock_ids();
    let (lock, find) = tokio::try_join!(
        c.prepare_cached(LOCK_KEYS),
        c.prepare_cached(UNFINISHED_KEYS)
    )?;
    let lock_params: [&(dyn ToSql + Sync); 1] = [&locks];
    let pair_params = pairs.pairs();
    // One round trip: the locks are taken before the probe runs.
    let (_, rows) = tokio::try_join!(
        biased;
        c.query(&lock, &lock_params),
        c.query(&find, &pair_params),
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Parks the targets that must wait behind an unfinished delivery of their
/// webhook and key (`rules::ordering`), in the database or earlier among
/// `planned` (events in order), after taking the keys' locks; a round trip
/// only when a target is keyed. `find` locks and probes (through a
/// statement cache where the caller has one).
pub(super) async fn park_planned<F, Fut>(
    planned: &mut [Vec<IngestTarget>],
    find: F,
) -> Result<(), tokio_postgres::Error>
where
    F: FnOnce(KeyColumns) -> Fut,
    Fut: std::future::Future<Output = Result<HashSet<(String, String)>, tokio_postgres::Error>>,
{
    let mut pairs = KeyColumns::default();
    for t in planned.iter().flatten() {
        if let Some(key) = &t.order_key {
            pairs.push(&t.webhook_id, key);
        }
    }
    if pairs.is_empty() {
        return Ok(());
    }
    let unfinished = find(pairs).await?;
    let mut line = BatchLine::default();
    for t in planned.iter_mut().flatten() {
        if let Some(key) = &t.order_key {
            let in_database = unfinished.contains(&(t.webhook_id.clone(), key.clone()));
            t.park_if(&mut line, in_database);
        }
    }
    Ok(())
}

/// [`lock_and_find_unfinished`] on any client, without a statement cache
/// (the v3 ingest's transaction).
pub(super) async fn lock_and_find_unfinished_uncached(
    c: &impl GenericClient,
    pairs: KeyColumns,
) -> Result<HashSet<(String, String)>, tokio_postgres::Error> {
    let locks = pairs.lock_ids();
    c.query(LOCK_KEYS, &[&locks]).await?;
    let rows = c.query(UNFINISHED_KEYS, &pairs.pairs()).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Wakes the head of every line of a webhook (after an operator's change
/// moved many deliveries at once); the number made due.
pub(super) async fn wake_heads_of_webhook(
    c: &impl GenericClient,
    webhook_id: &str,
    now: Millis,
) -> Result<u64, tokio_postgres::Error> {
    c.execute(
        "UPDATE deliveries SET next_attempt_at = $2
         WHERE next_attempt_at = $3 AND id IN (
             SELECT MIN(id) FROM deliveries
             WHERE webhook_id = $1 AND order_key IS NOT NULL AND state IN ('pending', 'held')
             GROUP BY order_key)",
        &[&webhook_id, &now, &PARKED],
    )
    .await
}

/// See `DeliveryQueue::wake_stranded` (and `sqlite::ordering`, which
/// this mirrors).
pub(super) async fn wake_stranded(
    c: &impl GenericClient,
    now: Millis,
) -> Result<u64, tokio_postgres::Error> {
    c.execute(
        "UPDATE deliveries SET next_attempt_at = $1
         WHERE id IN (
             SELECT d.id FROM deliveries d
             WHERE d.state = 'pending' AND d.next_attempt_at = $2 AND d.order_key IS NOT NULL
               AND NOT EXISTS (
                   SELECT 1 FROM deliveries p
                   WHERE p.webhook_id = d.webhook_id AND p.order_key = d.order_key
                     AND p.order_key IS NOT NULL AND p.state IN ('pending', 'held')
                     AND p.id <> d.id AND (p.id < d.id OR p.lease_until > $1))
             LIMIT 10000)",
        &[&now, &PARKED],
    )
    .await
}

/// The keys of a webhook's deliveries among `ids`, locked: what a
/// redelivery takes before it moves them.
pub(super) async fn lock_keys_of(
    c: &impl GenericClient,
    ids: &[i64],
) -> Result<(), tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT webhook_id, order_key FROM deliveries WHERE id = ANY($1) AND order_key IS NOT NULL",
            &[&ids],
        )
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let locks = sorted_lock_ids(rows.iter().map(|r| (r.get(0), r.get(1))));
    c.query(LOCK_KEYS, &[&locks]).await?;
    Ok(())
}

/// Parks the given redelivered deliveries that the claim rule holds back
/// (an earlier unfinished delivery of their key, or one in flight), as
/// `sqlite::ordering::park_behind` does; one in flight is left alone.
pub(super) async fn park_behind(
    c: &impl GenericClient,
    ids: &[i64],
    now: Millis,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE deliveries d SET next_attempt_at = $2
         WHERE d.id = ANY($1) AND d.order_key IS NOT NULL AND d.lease_until = 0 AND EXISTS (
             SELECT 1 FROM deliveries p
             WHERE p.webhook_id = d.webhook_id AND p.order_key = d.order_key
               AND p.order_key IS NOT NULL AND p.state IN ('pending', 'held') AND p.id <> d.id
               AND (p.id < d.id OR p.lease_until > $3))",
        &[&ids, &PARKED, &now],
    )
    .await?;
    Ok(())
}

/// Where a delivery stands in its key's line, for the log (see
/// `sqlite::ordering::line_place`, which this mirrors).
pub(super) async fn line_place(
    c: &impl GenericClient,
    d: &LineQuery<'_>,
    now: Millis,
) -> Result<Option<LinePlace>, tokio_postgres::Error> {
    let Some(key) = d.order_key else {
        return Ok(d.unkeyed_place());
    };
    let waits_for = if d.unfinished {
        c.query_opt(
            "SELECT id FROM deliveries
             WHERE webhook_id = $1 AND order_key = $2 AND order_key IS NOT NULL
               AND state IN ('pending', 'held') AND id <> $3 AND (id < $3 OR lease_until > $4)
             ORDER BY id LIMIT 1",
            &[&d.webhook_id, &key, &d.id, &now],
        )
        .await?
        .map(|r| r.get(0))
    } else {
        None
    };
    let after_failed = c
        .query(
            "SELECT id FROM deliveries
             WHERE webhook_id = $1 AND order_key = $2 AND order_key IS NOT NULL
               AND id < $3 AND state = 'failed'
             ORDER BY id DESC LIMIT $4",
            &[&d.webhook_id, &key, &d.id, &(AFTER_FAILED_SHOWN as i64)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Some(LinePlace::Keyed {
        key: key.to_string(),
        waits_for,
        after_failed,
    }))
}
