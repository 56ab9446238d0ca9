//! Claims on SQLite: due deliveries leased to this node, with everything an
//! attempt needs, in one writer operation.

use super::*;

/// The due deliveries a claim may lease, in due order. `{LEASE}` is filled
/// in twice: leases that ran out (rare: a record or a give-back that never
/// landed) first, then the unleased ones. Every give-back sets `lease_until`
/// to 0, so with the `deliveries_claimable` index on `(lease_until,
/// next_attempt_at)` of pending rows each part seeks straight to claimable
/// rows; one condition `lease_until <= now` walked every row leased to this
/// node (up to the 20,000 the dispatcher holds) before finding free ones.
/// A webhook's deliveries due at the same time come in id order (the
/// index's last key is the rowid): a re-enabled webhook's held ones, due at
/// their creation, go in the order their events came.
///
/// A keyed delivery (an ordered webhook's) goes only first in its key's
/// line: no unfinished delivery of its webhook and key has a smaller id
/// (`rules::ordering`). Parked ones are never due, so the probe runs for
/// heads of lines only, and reads one index entry: the line's first. (It
/// also asked whether another of the key was in flight, which read the
/// whole line: a claim over 1,000 chats 200 events deep cost 200 rows a
/// head. Nothing but a redelivery puts a later one in flight, and a
/// redelivery parks behind it.)
const CLAIM_SQL: &str =
    "SELECT d.id, d.webhook_id, w.url, d.data_types, d.attempts_in_round, d.event_seq,
        e.unique_id, e.license_id, e.event_type, e.chat, e.visitor, e.pre_chat_survey, e.ticket,
        w.signing_secret, w.previous_signing_secret, w.previous_secret_until, w.max_per_second,
        e.v3_payload, e.v3_extra, w.v3_secret_key, d.order_key
 FROM deliveries d
 JOIN webhooks w ON w.id = d.webhook_id
 JOIN events e ON e.seq = d.event_seq
 WHERE d.state = 'pending' AND {LEASE} AND d.next_attempt_at <= ?1
   AND w.enabled = 1 AND w.deleted_at IS NULL
   AND d.webhook_id NOT IN (SELECT value FROM json_each(?3))
   AND (d.order_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM deliveries p
        WHERE p.webhook_id = d.webhook_id AND p.order_key = d.order_key AND p.order_key IS NOT NULL
          AND p.state IN ('pending', 'held') AND p.id < d.id))
 ORDER BY d.next_attempt_at
 LIMIT ?2";

pub(super) fn claim(
    c: &Connection,
    now: Millis,
    limit: usize,
    lease_until: Millis,
    skip_json: &str,
) -> StoreResult<Vec<DeliveryJob>> {
    let mut jobs = Vec::new();
    let mut events: HashMap<i64, Arc<EventBody>> = HashMap::new();
    for lease in [
        "d.lease_until > 0 AND d.lease_until <= ?1",
        "d.lease_until = 0",
    ] {
        let left = limit - jobs.len();
        if left == 0 {
            break;
        }
        let sql = CLAIM_SQL.replace("{LEASE}", lease);
        claim_rows(
            c,
            &sql,
            now,
            left,
            lease_until,
            skip_json,
            &mut events,
            &mut jobs,
        )?;
    }
    let mut lease = c
        .prepare_cached("UPDATE deliveries SET lease_until = ?1 WHERE id = ?2")
        .map_err(unavailable)?;
    for job in &jobs {
        lease
            .execute(params![lease_until, job.delivery_id])
            .map_err(unavailable)?;
    }
    Ok(jobs)
}

#[allow(clippy::too_many_arguments)]
fn claim_rows(
    c: &Connection,
    sql: &str,
    now: Millis,
    limit: usize,
    lease_until: Millis,
    skip_json: &str,
    events: &mut HashMap<i64, Arc<EventBody>>,
    jobs: &mut Vec<DeliveryJob>,
) -> StoreResult<()> {
    let mut stmt = c.prepare_cached(sql).map_err(unavailable)?;
    let mut rows = stmt
        .query(params![now, limit as i64, skip_json])
        .map_err(unavailable)?;
    while let Some(r) = rows.next().map_err(unavailable)? {
        let seq: i64 = r.get(5).map_err(unavailable)?;
        let event = match events.get(&seq) {
            Some(e) => e.clone(),
            None => {
                let e = Arc::new(
                    event_from_columns(r, 6, 17)
                        .map_err(unavailable)?
                        .into_body()?,
                );
                events.insert(seq, e.clone());
                e
            }
        };
        jobs.push(job_from_row(r, now, lease_until, event).map_err(unavailable)?);
    }
    Ok(())
}

/// A claimed row's job, with its event (shared by the event's deliveries).
fn job_from_row(
    r: &Row<'_>,
    now: Millis,
    lease_until: Millis,
    event: Arc<EventBody>,
) -> rusqlite::Result<DeliveryJob> {
    Ok(DeliveryJob {
        delivery_id: r.get(0)?,
        webhook_id: r.get(1)?,
        url: r.get(2)?,
        data_types: DataTypes::from_bits(r.get(3)?),
        attempts_in_round: r.get(4)?,
        lease_until,
        event,
        signing_secrets: signing_secrets(r.get(13)?, r.get(14)?, r.get(15)?, now),
        max_per_second: r.get(16)?,
        v3_secret_key: r.get(19)?,
        order_key: r.get(20)?,
    })
}
