//! The delivery log on SQLite: listings, bodies and samples on reader
//! connections, redeliveries through the writer.

use super::ordering::{line_place, park_behind};
use super::*;
use rules::ordering::LinePlace;
use rusqlite::params_from_iter;

/// The deliveries `q` asks for, each with its attempts, as stored (read
/// into views by `rules::rows`).
fn list_deliveries(c: &Connection, q: OwnedQuery) -> rusqlite::Result<Vec<Listed>> {
    let mut sql = String::from(
        "SELECT d.id, e.unique_id, d.webhook_id, e.event_type, d.state, d.created_at, d.next_attempt_at,
                d.order_key, COALESCE(w.ordered_since <= d.created_at, 0), d.filtered_by
         FROM deliveries d JOIN events e ON e.seq = d.event_seq
         LEFT JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.license_id = ?",
    );
    let mut args: Vec<rusqlite::types::Value> = vec![q.license_id.into()];
    if let Some(w) = q.webhook_id {
        sql.push_str(" AND d.webhook_id = ?");
        args.push(w.into());
    }
    if let Some(s) = q.state {
        sql.push_str(" AND d.state = ?");
        args.push(s.as_str().to_string().into());
    }
    if let Some(t) = q.event_type {
        sql.push_str(" AND e.event_type = ?");
        args.push(t.as_str().to_string().into());
    }
    if let Some(before) = q.before {
        sql.push_str(" AND d.id < ?");
        args.push(before.into());
    }
    sql.push_str(" ORDER BY d.id DESC LIMIT ?");
    args.push((q.limit as i64).into());
    let mut stmt = c.prepare(&sql)?;
    let rows: Vec<DeliveryRow> = stmt
        .query_map(params_from_iter(args), |r| {
            Ok(DeliveryRow {
                id: r.get(0)?,
                event_id: r.get(1)?,
                webhook_id: r.get(2)?,
                event_type: r.get(3)?,
                state: r.get(4)?,
                created_at: r.get(5)?,
                next_attempt_at: r.get(6)?,
                order_key: r.get(7)?,
                ordered_when_made: r.get(8)?,
                filtered_by: r.get(9)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // The attempt kept in the delivery's row and those with rows of their
    // own (schema_8.sql), in the order they were made.
    let mut attempts = c.prepare_cached(
        "SELECT at, status, latency_ms, error, response_excerpt FROM (
             SELECT first_at AS at, first_status AS status, first_latency_ms AS latency_ms,
                    first_error AS error, first_excerpt AS response_excerpt, 0 AS seq
             FROM deliveries WHERE id = ?1 AND first_at IS NOT NULL
             UNION ALL
             SELECT at, status, latency_ms, error, response_excerpt, id
             FROM attempts WHERE delivery_id = ?1)
         ORDER BY at, seq",
    )?;
    let now = now_millis();
    rows.into_iter()
        .map(|row| {
            let line = line_place(c, &row.line_query(), now)?;
            let log = attempts
                .query_map([row.id], |r| {
                    Ok(AttemptView {
                        at: r.get(0)?,
                        status: r.get(1)?,
                        latency_ms: r.get(2)?,
                        error: r.get(3)?,
                        response_excerpt: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Listed {
                row,
                attempts: log,
                line,
            })
        })
        .collect()
}

/// A delivery as stored, with what the log shows beside it.
struct Listed {
    row: DeliveryRow,
    attempts: Vec<AttemptView>,
    line: Option<LinePlace>,
}

struct OwnedQuery {
    license_id: String,
    webhook_id: Option<String>,
    state: Option<DeliveryState>,
    event_type: Option<EventType>,
    before: Option<i64>,
    limit: usize,
}

#[async_trait]
impl DeliveryLog for SqliteStore {
    async fn list_deliveries(&self, q: DeliveryQuery<'_>) -> StoreResult<Vec<DeliveryView>> {
        let q = OwnedQuery {
            license_id: q.license_id.to_string(),
            webhook_id: q.webhook_id.map(str::to_string),
            state: q.state,
            event_type: q.event_type,
            before: q.before,
            limit: q.limit,
        };
        self.read(move |c| list_deliveries(c, q))
            .await?
            .into_iter()
            .map(|l| l.row.into_view(l.attempts, l.line))
            .collect()
    }

    async fn delivery_body(
        &self,
        license_id: &str,
        delivery_id: i64,
    ) -> StoreResult<Option<(EventBody, DataTypes)>> {
        let license = license_id.to_string();
        let found = self.read(move |c| {
            c.prepare_cached(
                "SELECT e.unique_id, e.license_id, e.event_type, e.chat, e.visitor, e.pre_chat_survey,
                        e.ticket, d.data_types, e.v3_payload, e.v3_extra
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE d.id = ?1 AND d.license_id = ?2",
            )?
            .query_row(params![delivery_id, license], |r| {
                Ok((event_from_columns(r, 0, 8)?, DataTypes::from_bits(r.get(7)?)))
            })
            .optional()
        })
        .await?;
        found
            .map(|(event, types)| Ok((event.into_body()?, types)))
            .transpose()
    }

    async fn attempt_samples(
        &self,
        license_id: &str,
        since: Millis,
        limit: usize,
    ) -> StoreResult<AttemptSamples> {
        let license = license_id.to_string();
        self.read(move |c| {
            // Attempts live in two places (schema_8.sql): each is read newest
            // first through its own index, and the two runs are merged.
            let newest = |sql: &str| -> rusqlite::Result<Vec<(Millis, String, bool, i64)>> {
                c.prepare_cached(sql)?
                    .query_map(params![since, license, limit as i64 + 1], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect()
            };
            let mut found = newest(
                "SELECT a.at, d.webhook_id, a.error IS NULL, a.latency_ms
                 FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE a.at >= ?1 AND d.license_id = ?2
                 ORDER BY a.at DESC LIMIT ?3",
            )?;
            found.extend(newest(
                "SELECT first_at, webhook_id, first_error IS NULL, first_latency_ms
                 FROM deliveries WHERE license_id = ?2 AND first_at >= ?1
                 ORDER BY first_at DESC LIMIT ?3",
            )?);
            found.sort_by_key(|(at, ..)| std::cmp::Reverse(*at));
            let mut out = AttemptSamples {
                truncated: found.len() > limit,
                ..AttemptSamples::default()
            };
            let mut index: HashMap<String, usize> = HashMap::new();
            for (at, webhook_id, ok, latency_ms) in found.into_iter().take(limit) {
                let next = index.len();
                let webhook = *index.entry(webhook_id.clone()).or_insert_with(|| {
                    out.webhook_ids.push(webhook_id);
                    next
                });
                out.samples.push(AttemptSample {
                    at,
                    webhook,
                    ok,
                    latency_ms,
                });
            }
            out.samples.reverse();
            Ok(out)
        })
        .await
    }

    async fn queue_stats(&self, license_id: &str) -> StoreResult<QueueStats> {
        let license = license_id.to_string();
        self.read(move |c| {
            let held: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM deliveries WHERE license_id = ?1 AND state = 'held'",
                )?
                .query_row([&license], |r| r.get(0))?;
            c.prepare_cached(
                "SELECT COUNT(*), MIN(created_at) FROM deliveries
                 WHERE license_id = ?1 AND state = 'pending'",
            )?
            .query_row([&license], |r| {
                Ok(QueueStats {
                    pending: r.get::<_, i64>(0)?.max(0) as u64,
                    oldest_pending_at: r.get(1)?,
                    held: held.max(0) as u64,
                })
            })
        })
        .await
    }

    async fn redeliver(
        &self,
        license_id: &str,
        delivery_id: i64,
        now: Millis,
    ) -> StoreResult<Redelivery> {
        let license = license_id.to_string();
        self.writer
            .write(move |c| {
                let state: Option<String> = c
                    .query_row(
                        "SELECT d.state FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                         WHERE d.id = ?1 AND d.license_id = ?2 AND w.deleted_at IS NULL",
                        params![delivery_id, license],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                match state.as_deref() {
                    None => return Ok(Redelivery::Unknown),
                    Some("held") => return Ok(Redelivery::Held),
                    Some(_) => {}
                }
                // A delivery being attempted right now keeps its lease; it is
                // already on its way.
                c.execute(
                    "UPDATE deliveries SET state = 'pending', attempts_in_round = 0, next_attempt_at = ?1,
                         lease_until = 0, updated_at = ?1
                     WHERE id = ?2 AND NOT (state = 'pending' AND lease_until > ?1)",
                    params![now, delivery_id],
                )
                .map_err(unavailable)?;
                park_behind(c, &[delivery_id], now).map_err(unavailable)?;
                Ok(Redelivery::Pending)
            })
            .await
    }

    async fn redeliver_failed_since(
        &self,
        license_id: &str,
        webhook_id: &str,
        since: Millis,
        now: Millis,
    ) -> StoreResult<u64> {
        let (license, webhook) = (license_id.to_string(), webhook_id.to_string());
        self.writer
            .write(move |c| {
                let ids = c
                    .prepare(
                        "UPDATE deliveries SET state = 'pending', attempts_in_round = 0, next_attempt_at = ?1,
                             lease_until = 0, updated_at = ?1
                         WHERE license_id = ?2 AND webhook_id = ?3 AND state = 'failed' AND created_at >= ?4
                           AND webhook_id IN (SELECT id FROM webhooks WHERE deleted_at IS NULL)
                         RETURNING id",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_map(params![now, license, webhook, since], |r| r.get(0))?
                            .collect::<rusqlite::Result<Vec<i64>>>()
                    })
                    .map_err(unavailable)?;
                park_behind(c, &ids, now).map_err(unavailable)?;
                Ok(ids.len() as u64)
            })
            .await
    }

    async fn redeliver_batch(
        &self,
        query: &ReplayQuery<'_>,
        after: i64,
        limit: usize,
        now: Millis,
    ) -> StoreResult<ReplayBatch> {
        let license = query.license_id.to_string();
        let webhook = query.webhook_id.map(str::to_string);
        let (since, all) = (query.since, query.include_delivered);
        let limit = limit as i64;
        self.writer
            .write(move |c| {
                // The same filter selects the batch, updates it and counts
                // what is left; ?6 bounds it from above.
                const MATCHING: &str = "d.license_id = ?1 AND (?2 IS NULL OR d.webhook_id = ?2)
                     AND d.created_at >= ?3 AND d.id > ?4
                     AND (d.state = 'failed' OR (?5 AND d.state = 'delivered'))
                     AND d.webhook_id IN (SELECT id FROM webhooks WHERE deleted_at IS NULL)";
                let last_id: Option<i64> = c
                    .query_row(
                        &format!(
                            "SELECT MAX(id) FROM (SELECT d.id FROM deliveries d WHERE {MATCHING}
                             ORDER BY d.id LIMIT ?6)"
                        ),
                        params![license, webhook, since, after, all, limit],
                        |r| r.get(0),
                    )
                    .map_err(unavailable)?;
                let Some(last) = last_id else {
                    return Ok(ReplayBatch {
                        redelivered: 0,
                        last_id: None,
                        remaining: 0,
                    });
                };
                let ids = c
                    .prepare(&format!(
                        "UPDATE deliveries SET state = 'pending', attempts_in_round = 0,
                             next_attempt_at = ?7, lease_until = 0, updated_at = ?7
                         WHERE id IN (SELECT d.id FROM deliveries d WHERE {MATCHING} AND d.id <= ?6)
                         RETURNING id"
                    ))
                    .and_then(|mut stmt| {
                        stmt.query_map(
                            params![license, webhook, since, after, all, last, now],
                            |r| r.get(0),
                        )?
                        .collect::<rusqlite::Result<Vec<i64>>>()
                    })
                    .map_err(unavailable)?;
                // Each waits behind its key's unfinished ones, as a new one would.
                park_behind(c, &ids, now).map_err(unavailable)?;
                let redelivered = ids.len() as u64;
                let remaining: i64 = c
                    .query_row(
                        &format!("SELECT COUNT(*) FROM deliveries d WHERE {MATCHING}"),
                        params![license, webhook, since, last, all],
                        |r| r.get(0),
                    )
                    .map_err(unavailable)?;
                Ok(ReplayBatch {
                    redelivered,
                    last_id: Some(last),
                    remaining: remaining as u64,
                })
            })
            .await
    }

    async fn token_grants(&self, key: TokenKey) -> StoreResult<Vec<TokenGrant>> {
        self.read(move |c| {
            let (sql, value) = match key {
                // Hex digits sort before 'g': the range is exactly the ids
                // with this prefix, read from the id index.
                TokenKey::EventsAt(prefix) => (
                    "SELECT unique_id, license_id, token_expires_at FROM events
                     WHERE unique_id >= ?1 AND unique_id < ?1 || 'g' LIMIT 10000",
                    prefix,
                ),
                // `<> ''` lets SQLite use the partial index of old tokens.
                TokenKey::LegacyHash(hash) => (
                    "SELECT unique_id, license_id, token_expires_at FROM events
                     WHERE token_hash = ?1 AND token_hash <> ''",
                    hash,
                ),
            };
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map([value], |r| {
                Ok(TokenGrant {
                    event_id: r.get(0)?,
                    license_id: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}
