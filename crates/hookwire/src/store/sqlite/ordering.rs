//! Ordered delivery on SQLite (`rules::ordering`): the probes and the
//! statements that move a key's line. The writer is alone, so no lock is
//! needed: every statement here runs inside a writer operation and sees
//! everything committed before it.

use super::*;
use rules::ordering::{BatchLine, LinePlace, LineQuery, AFTER_FAILED_SHOWN, PARKED};

/// Whether a webhook and key have an unfinished delivery (the partial index
/// `deliveries_line` holds only the unfinished ones).
const UNFINISHED_OF_KEY: &str = "SELECT 1 FROM deliveries
     WHERE webhook_id = ?1 AND order_key = ?2 AND order_key IS NOT NULL AND state IN ('pending', 'held')
     LIMIT 1";

/// Parks the targets of an event whose webhook and key have an unfinished
/// delivery (`rules::ordering`). The writer is alone, and an ingest's
/// earlier events are in the table already, so the probe sees them all.
pub(super) fn park_behind_unfinished(
    c: &Connection,
    targets: &mut [IngestTarget],
) -> rusqlite::Result<()> {
    let mut line = BatchLine::default();
    for t in targets.iter_mut() {
        if let Some(key) = &t.order_key {
            let unfinished = c
                .prepare_cached(UNFINISHED_OF_KEY)?
                .query_row(params![t.webhook_id, key], |_| Ok(()))
                .optional()?
                .is_some();
            t.park_if(&mut line, unfinished);
        }
    }
    Ok(())
}

/// Makes the first unfinished delivery of a webhook and key due at ?3, if
/// it is parked: what a finished delivery of the key does.
const WAKE_HEAD: &str = "UPDATE deliveries SET next_attempt_at = ?3
     WHERE id = (SELECT id FROM deliveries
                 WHERE webhook_id = ?1 AND order_key = ?2 AND order_key IS NOT NULL
                   AND state IN ('pending', 'held')
                 ORDER BY id LIMIT 1)
       AND next_attempt_at = ?4";

/// Wakes the head of `key`'s line after one of its deliveries finished;
/// true if a parked delivery became due.
pub(super) fn wake_head(
    c: &Connection,
    webhook_id: &str,
    key: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    Ok(c.prepare_cached(WAKE_HEAD)?
        .execute(params![webhook_id, key, now, PARKED])?
        > 0)
}

/// Wakes the head of every line of a webhook (after an operator's change
/// moved many deliveries at once: enabling, discarding, a replay); the
/// number made due.
pub(super) fn wake_heads_of_webhook(
    c: &Connection,
    webhook_id: &str,
    now: Millis,
) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?2
         WHERE next_attempt_at = ?3 AND id IN (
             SELECT MIN(id) FROM deliveries
             WHERE webhook_id = ?1 AND order_key IS NOT NULL AND state IN ('pending', 'held')
             GROUP BY order_key)",
    )?
    .execute(params![webhook_id, now, PARKED])
}

/// The most parked deliveries one safety-net sweep wakes.
pub(super) const STRANDED_BATCH: i64 = 10_000;

/// See [`DeliveryQueue::wake_stranded`]: parked pending deliveries (a range
/// of the due index) that nothing holds back.
pub(super) fn wake_stranded(c: &Connection, now: Millis) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?1
         WHERE id IN (
             SELECT d.id FROM deliveries d
             WHERE d.state = 'pending' AND d.next_attempt_at = ?2 AND d.order_key IS NOT NULL
               AND NOT EXISTS (
                   SELECT 1 FROM deliveries p
                   WHERE p.webhook_id = d.webhook_id AND p.order_key = d.order_key
                     AND p.order_key IS NOT NULL AND p.state IN ('pending', 'held')
                     AND p.id <> d.id AND (p.id < d.id OR p.lease_until > ?1))
             LIMIT ?3)",
    )?
    .execute(params![now, PARKED, STRANDED_BATCH])
}

/// Parks the given redelivered deliveries that the claim rule holds back
/// (an earlier unfinished delivery of their key, or one in flight): they
/// wait like any delivery made behind another, and the finish of the one
/// before them wakes them. One in flight (a redelivery leaves it alone)
/// keeps its due time: its record sets the next.
pub(super) fn park_behind(c: &Connection, ids: &[i64], now: Millis) -> rusqlite::Result<()> {
    let mut park = c.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?2
         WHERE id = ?1 AND order_key IS NOT NULL AND lease_until = 0 AND EXISTS (
             SELECT 1 FROM deliveries p
             WHERE p.webhook_id = deliveries.webhook_id AND p.order_key = deliveries.order_key
               AND p.order_key IS NOT NULL AND p.state IN ('pending', 'held')
               AND p.id <> deliveries.id AND (p.id < deliveries.id OR p.lease_until > ?3))",
    )?;
    for id in ids {
        park.execute(params![id, PARKED, now])?;
    }
    Ok(())
}

/// Where a delivery stands in its key's line, for the log: `None` for a
/// delivery of an unordered webhook (or one made before it was ordered).
pub(super) fn line_place(
    c: &Connection,
    d: &LineQuery<'_>,
    now: Millis,
) -> rusqlite::Result<Option<LinePlace>> {
    let Some(key) = d.order_key else {
        return Ok(d.unkeyed_place());
    };
    let waits_for = if d.unfinished {
        c.prepare_cached(
            "SELECT id FROM deliveries
             WHERE webhook_id = ?1 AND order_key = ?2 AND order_key IS NOT NULL
               AND state IN ('pending', 'held') AND id <> ?3 AND (id < ?3 OR lease_until > ?4)
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![d.webhook_id, key, d.id, now], |r| r.get(0))
        .optional()?
    } else {
        None
    };
    let after_failed = c
        .prepare_cached(
            "SELECT id FROM deliveries
             WHERE webhook_id = ?1 AND order_key = ?2 AND order_key IS NOT NULL
               AND id < ?3 AND state = 'failed'
             ORDER BY id DESC LIMIT ?4",
        )?
        .query_map(
            params![d.webhook_id, key, d.id, AFTER_FAILED_SHOWN as i64],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(Some(LinePlace::Keyed {
        key: key.to_string(),
        waits_for,
        after_failed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// On the writer's connection, the statement every final record of an
    /// ordered delivery runs keeps its plan through new bindings (it was
    /// prepared afresh on every use before `writer::plan_once`).
    #[test]
    fn waking_a_line_is_planned_once() {
        let c = Connection::open_in_memory().unwrap();
        super::super::writer::plan_once(&c).unwrap();
        super::super::migrate(&c).unwrap();
        c.execute(
            "INSERT INTO webhooks (id, license_id, event_type, data_types, url, token, created_at)
             VALUES ('w', 'l', 'chat_started', 1, 'https://example.com/', 't', 0)",
            [],
        )
        .unwrap();
        for seq in 0..20_i64 {
            c.execute(
                "INSERT INTO deliveries (event_seq, webhook_id, license_id, data_types, state,
                     next_attempt_at, lease_until, created_at, updated_at, order_key)
                 VALUES (?1, 'w', 'l', 1, 'pending', ?2, 0, 0, 0, ?3)",
                params![
                    seq,
                    if seq < 4 { 0 } else { PARKED },
                    format!("chat-{}", seq % 4)
                ],
            )
            .unwrap();
        }
        let webhook = "w".to_string();
        let mut woken = 0;
        for id in 1..=16_i64 {
            c.execute(
                "UPDATE deliveries SET state = 'delivered' WHERE id = ?1",
                [id],
            )
            .unwrap();
            let key = format!("chat-{}", (id - 1) % 4);
            woken += usize::from(wake_head(&c, &webhook, &key, 1_000 + id).unwrap());
        }
        assert_eq!(woken, 16, "each finish woke the next of its chat");
        let wake = c.prepare_cached(WAKE_HEAD).unwrap();
        assert_eq!(wake.get_status(StatementStatus::Run), 16);
        assert_eq!(wake.get_status(StatementStatus::RePrepare), 0);
    }
}
