//! Deliveries held for disabled webhooks, inserted apart from the others:
//! the statement runs only when an event matches a disabled webhook, so
//! ingest for enabled webhooks sends exactly what it did before.

use super::super::*;
use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;

/// Deliveries to webhooks that `WEBHOOKS` read disabled, sent only when
/// there are some. Each webhook's row is read again, locked `FOR SHARE`
/// until commit: enabling a webhook (its row updated, then its held
/// deliveries moved, in one transaction) waits for this transaction, so
/// whatever it holds is moved too; one enabled (or deleted) meanwhile is
/// read as it is now, and its delivery made pending (or discarded) here.
/// Answers each row's state; pending ones are due for a poller.
pub(super) const HELD: &str = "WITH hooks AS (
         SELECT id, enabled, deleted_at IS NOT NULL AS deleted FROM webhooks
         WHERE id = ANY($2::text[]) ORDER BY id FOR SHARE)
     INSERT INTO deliveries (event_seq, webhook_id, license_id, data_types, state,
                             next_attempt_at, lease_until, created_at, updated_at, order_key)
     SELECT u.s, u.w, u.l, u.d,
            CASE WHEN h.deleted THEN 'discarded' WHEN h.enabled THEN 'pending' ELSE 'held' END,
            u.due, 0, u.t, u.t, u.k
     FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::text[],
                 $7::bigint[])
          AS u(s, w, l, d, t, k, due)
          JOIN hooks h ON h.id = u.w
     RETURNING state";

/// The deliveries [`HELD`] is to insert, column by column.
#[derive(Default)]
pub(super) struct HeldColumns<'a> {
    seqs: Vec<i64>,
    webhooks: Vec<String>,
    licenses: Vec<&'a str>,
    data_types: Vec<i16>,
    times: Vec<Millis>,
    keys: Vec<Option<String>>,
    due: Vec<Millis>,
}

impl<'a> HeldColumns<'a> {
    pub(super) fn push(&mut self, seq: i64, ev: &'a NewEvent, target: &IngestTarget) {
        self.seqs.push(seq);
        self.webhooks.push(target.webhook_id.clone());
        self.licenses.push(&ev.license_id);
        self.data_types.push(target.data_types.bits() as i16);
        self.times.push(ev.received_at);
        self.keys.push(target.order_key.clone());
        self.due.push(ingest_due(ev.received_at, target));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.seqs,
            &self.webhooks,
            &self.licenses,
            &self.data_types,
            &self.times,
            &self.keys,
            &self.due,
        ]
    }
}

/// Wakes every node's poller if [`HELD`] made any delivery pending (its
/// webhook was enabled meanwhile): rare, so it costs a statement only then.
pub(super) async fn notify_if_made_pending(
    c: &Client,
    held_rows: &[Row],
) -> Result<(), tokio_postgres::Error> {
    if held_rows.iter().any(|r| r.get::<_, &str>(0) == "pending") {
        notify_due(c).await?;
    }
    Ok(())
}
