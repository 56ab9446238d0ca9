//! Attempt records on SQLite, written in batches.
//!
//! Every finished attempt is logged and applied to its delivery. One writer
//! operation per record cost a savepoint (whose sub-journal copies every page
//! the record touches), a webhook-health statement and a reply of its own, and
//! records were most of the writer's operations. Now the records that arrive
//! while the previous batch is being written wait together and go in as one
//! operation: one savepoint, one statement per record when it is its
//! delivery's first attempt (kept in the delivery's row, schema_8.sql), a
//! row in `attempts` and an update otherwise, and one health statement per
//! webhook with what its last attempts say. Records are not on anyone's
//! critical path (the delivery stays leased until its record lands), so
//! waiting one group commit costs nothing a caller feels.

use super::ordering::wake_head;
use super::writer::{in_savepoint, unavailable, Writer};
use crate::store::{AttemptRecord, Millis, NextState, StoreError, StoreResult};
use rusqlite::{params, Connection};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{oneshot, Notify};

/// The most records one operation writes; bounds a group's duration.
const MAX_BATCH: usize = 1024;

type Answer = oneshot::Sender<StoreResult<()>>;

#[derive(Default)]
struct Queue {
    waiting: Vec<(AttemptRecord, Answer)>,
    /// A flush task is running; it takes whatever waits when it is ready.
    flushing: bool,
}

pub(super) struct Recorder {
    writer: Writer,
    queue: Arc<Mutex<Queue>>,
    /// Notified when a batch woke the next delivery of an ordered key.
    due: Arc<Notify>,
}

impl Recorder {
    pub fn new(writer: Writer, due: Arc<Notify>) -> Recorder {
        Recorder {
            writer,
            queue: Arc::default(),
            due,
        }
    }

    /// Logs the attempt and moves its delivery on; answers once committed.
    pub async fn record(&self, record: AttemptRecord) -> StoreResult<()> {
        let (answer, answered) = oneshot::channel();
        let start_flush = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push((record, answer));
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start_flush {
            // A task of its own, not the caller's future: a caller that goes
            // away must not strand the records that joined its batch.
            tokio::spawn(flush(
                self.writer.clone(),
                self.queue.clone(),
                self.due.clone(),
            ));
        }
        answered.await.map_err(|_| StoreError::Closed)?
    }
}

/// Writes batches until nothing waits; one batch is in the writer at a time.
async fn flush(writer: Writer, queue: Arc<Mutex<Queue>>, due: Arc<Notify>) {
    loop {
        let batch: Vec<(AttemptRecord, Answer)> = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.waiting.is_empty() {
                queue.flushing = false;
                return;
            }
            let n = queue.waiting.len().min(MAX_BATCH);
            queue.waiting.drain(..n).collect()
        };
        let (records, answers): (Vec<AttemptRecord>, Vec<Answer>) = batch.into_iter().unzip();
        match writer.write(move |c| Ok(write_batch(c, &records))).await {
            Ok((results, woken)) => {
                if woken > 0 {
                    due.notify_one();
                }
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Err(e) => {
                for answer in answers {
                    let _ = answer.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Writes the batch in a savepoint; if the database refuses it, each record
/// is tried alone so that one bad record fails only itself. Also answers
/// how many parked deliveries the records made due.
fn write_batch(c: &Connection, records: &[AttemptRecord]) -> (Vec<StoreResult<()>>, usize) {
    let write = |records: &[AttemptRecord]| {
        in_savepoint(c, |c| write_records(c, records).map_err(unavailable))
    };
    if let Ok(woken) = write(records) {
        return (vec![Ok(()); records.len()], woken);
    }
    let mut woken = 0;
    let results = records
        .iter()
        .map(|r| write(std::slice::from_ref(r)).map(|n| woken += n))
        .collect();
    (results, woken)
}

/// A webhook's `failing_since` after some of its attempts, as recording them
/// one by one would leave it: a success clears it, a failure starts it if unset.
enum Health {
    /// No success among them: the first failure starts the run if none is on.
    StillFailing { first_failure: Millis },
    /// A success among them: the value no longer depends on the table's.
    Set(Option<Millis>),
}

/// Answers how many parked deliveries were made due: a final record of an
/// ordered delivery wakes the next of its key (`rules::ordering`).
fn write_records(c: &Connection, records: &[AttemptRecord]) -> rusqlite::Result<usize> {
    let mut woken = 0;
    // A delivery's first attempt goes into its row (schema_8.sql), in the
    // same statement that moves the delivery on: one row written per record
    // in the common case. The rest fall back to the separate steps.
    let mut first_and_apply = c.prepare_cached(
        "UPDATE deliveries SET state = ?1, next_attempt_at = ?2, lease_until = 0,
             attempts_in_round = attempts_in_round + 1, updated_at = ?3,
             first_at = ?3, first_status = ?5, first_latency_ms = ?6, first_error = ?7,
             first_excerpt = ?8
         WHERE id = ?4 AND state = 'pending' AND first_at IS NULL",
    )?;
    let mut first = c.prepare_cached(
        "UPDATE deliveries SET first_at = ?2, first_status = ?3, first_latency_ms = ?4,
             first_error = ?5, first_excerpt = ?6
         WHERE id = ?1 AND first_at IS NULL",
    )?;
    let mut log = c.prepare_cached(
        "INSERT INTO attempts (delivery_id, at, status, latency_ms, error, response_excerpt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut apply = c.prepare_cached(
        "UPDATE deliveries SET state = ?1, next_attempt_at = ?2, lease_until = 0,
             attempts_in_round = attempts_in_round + 1, updated_at = ?3
         WHERE id = ?4 AND state = 'pending'",
    )?;
    let mut health: HashMap<&str, Health> = HashMap::new();
    for r in records {
        let (state, next) = match r.next {
            NextState::Delivered => ("delivered", r.at),
            NextState::RetryAt(at) => ("pending", at),
            NextState::Failed => ("failed", r.at),
        };
        let done = first_and_apply.execute(params![
            state,
            next,
            r.at,
            r.delivery_id,
            r.status,
            r.latency_ms,
            r.error,
            r.response_excerpt
        ])? == 1;
        if !done {
            // A retry (the row holds an attempt already), a delivery no
            // longer pending, or one that is gone: logged all the same.
            let attempt = params![
                r.delivery_id,
                r.at,
                r.status,
                r.latency_ms,
                r.error,
                r.response_excerpt
            ];
            if first.execute(attempt)? == 0 {
                log.execute(attempt)?;
            }
            apply.execute(params![state, next, r.at, r.delivery_id])?;
        }
        if let (Some(key), false) = (&r.order_key, matches!(r.next, NextState::RetryAt(_))) {
            woken += usize::from(wake_head(c, &r.webhook_id, key, r.at)?);
        }
        let delivered = r.next == NextState::Delivered;
        let h = health
            .entry(r.webhook_id.as_str())
            .or_insert(Health::StillFailing {
                first_failure: r.at,
            });
        match h {
            _ if delivered => *h = Health::Set(None),
            Health::Set(None) => *h = Health::Set(Some(r.at)),
            Health::Set(Some(_)) | Health::StillFailing { .. } => {}
        }
    }
    for (webhook_id, h) in health {
        match h {
            Health::StillFailing { first_failure } => c
                .prepare_cached(
                    "UPDATE webhooks SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL",
                )?
                .execute(params![webhook_id, first_failure])?,
            // Only written when it changes: a write is a page in the WAL.
            Health::Set(value) => c
                .prepare_cached(
                    "UPDATE webhooks SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NOT ?2",
                )?
                .execute(params![webhook_id, value])?,
        };
    }
    Ok(woken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(webhook: &str, at: Millis, delivered: bool) -> AttemptRecord {
        AttemptRecord {
            delivery_id: at,
            webhook_id: webhook.into(),
            at,
            status: Some(if delivered { 200 } else { 500 }),
            latency_ms: 1,
            error: None,
            response_excerpt: None,
            next: if delivered {
                NextState::Delivered
            } else {
                NextState::RetryAt(at + 1000)
            },
            order_key: None,
        }
    }

    fn failing_since(c: &Connection, webhook: &str) -> Option<Millis> {
        c.query_row(
            "SELECT failing_since FROM webhooks WHERE id = ?1",
            [webhook],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Two databases with the same webhook: one records the attempts as one
    /// batch, the other one at a time; their health must agree.
    #[test]
    fn a_batch_leaves_health_as_one_by_one_would() {
        let outcomes: &[&[bool]] = &[
            &[false],
            &[true],
            &[false, false],
            &[false, true],
            &[true, false],
            &[true, false, false],
            &[false, true, false, true],
            &[false, true, false, false],
        ];
        for start in [None, Some(5)] {
            for attempts in outcomes {
                let [batched, single] = [(), ()].map(|_| {
                    let c = Connection::open_in_memory().unwrap();
                    super::super::migrate(&c).unwrap();
                    c.execute(
                        "INSERT INTO webhooks (id, license_id, event_type, data_types, url, token,
                                               created_at, failing_since)
                         VALUES ('w', 'l', 'chat_started', 1, 'https://example.com/', 't', 0, ?1)",
                        [start],
                    )
                    .unwrap();
                    c
                });
                let records: Vec<_> = attempts
                    .iter()
                    .enumerate()
                    .map(|(i, ok)| record("w", 10 + i as Millis, *ok))
                    .collect();
                assert!(write_batch(&batched, &records).0.iter().all(Result::is_ok));
                for r in &records {
                    write_records(&single, std::slice::from_ref(r)).unwrap();
                }
                assert_eq!(
                    failing_since(&batched, "w"),
                    failing_since(&single, "w"),
                    "starting from {start:?}, attempts {attempts:?}"
                );
            }
        }
    }
}
