//! Ingest on PostgreSQL: events and their deliveries, committed in groups.
//!
//! Requests waiting at the same moment share one transaction (see
//! [`group`](super::group)). Inside it, runs of events without an
//! idempotency key are written with one set-based statement per table;
//! an event with a key goes alone ([`ingest_one`]), between the runs, so the
//! events of a group still take effect in the order they came. Set-based
//! statements lock rows in key order (chats, then visitors), so concurrent
//! groups wait for each other instead of deadlocking.
//!
//! A run takes two round trips (see [`pipeline`](super::pipeline)): one
//! for everything that needs no answer from the database (the webhooks,
//! the chats' tags, visitors and events, and `BEGIN` in front of the
//! group's first run), one for what needs those answers (the deliveries, the
//! tags the run changed, `COMMIT` behind the group's last run). Events of
//! an unknown license are kept out by the inserts themselves (`EXISTS` on
//! the license), so no round trip asks first; an event is accepted exactly
//! when its row came back.

mod columns;
mod held;
mod tag_rule;

use super::ordering::{lock_and_find_unfinished, park_planned};
use super::pipeline::PipelinedTx;
use super::*;
use columns::{EventColumns, VisitorColumns};
use deadpool_postgres::{Client, GenericClient};
use held::{notify_if_made_pending, HeldColumns, HELD};
use rules::idempotency::{self, StoredKey};
use tag_rule::TagRule;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

/// One caller's events, with the lease of its hand-off (see [`DeliveryQueue::ingest`]).
pub(super) struct IngestRequest {
    pub events: Vec<NewEvent>,
    pub handoff: Option<Handoff>,
}

pub(super) struct IngestWork {
    pub pool: Pool,
    /// The node handed-off deliveries are leased to.
    pub node: NodeId,
}

#[async_trait]
impl GroupWork for IngestWork {
    type Request = IngestRequest;
    type Answer = Vec<IngestOutcome>;

    fn weight(request: &IngestRequest) -> usize {
        request.events.len().max(1)
    }

    async fn run(
        &self,
        requests: &[IngestRequest],
    ) -> Result<Vec<Vec<IngestOutcome>>, GroupFailure> {
        // Every statement finds its rows by key: see `BY_ID_PLANS`
        // (a generic plan hash-joined the chats' lock with the whole table).
        let tx = PipelinedTx::new(group_client(&self.pool).await?, BY_ID_PLANS);
        let events: Vec<(&NewEvent, Option<&Handoff>)> = requests
            .iter()
            .flat_map(|r| r.events.iter().map(|e| (e, r.handoff.as_ref())))
            .collect();
        let mut outcomes = ingest_events(&tx, &events, self.node.get())
            .await?
            .into_iter();
        Ok(requests
            .iter()
            .map(|r| outcomes.by_ref().take(r.events.len()).collect())
            .collect())
    }
}

/// What a handed-over delivery carries of its event.
fn event_body(ev: &NewEvent) -> EventBody {
    EventBody {
        unique_id: ev.unique_id.clone(),
        license_id: ev.license_id.clone(),
        event_type: EventName::V2(ev.event_type),
        sections: ev.sections.clone(),
        v3: None,
    }
}

pub(super) async fn notify_due(c: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    c.batch_execute(&format!("NOTIFY {DUE_CHANNEL}")).await
}

/// Ingests `events` in order inside `tx` and commits: runs without
/// idempotency keys set based, keyed events one by one. Handed-off
/// deliveries are leased to `node`.
async fn ingest_events(
    tx: &PipelinedTx,
    events: &[(&NewEvent, Option<&Handoff>)],
    node: i64,
) -> Result<Vec<IngestOutcome>, GroupFailure> {
    let mut outcomes = Vec::with_capacity(events.len());
    let mut run_start = 0;
    for (i, (ev, handoff)) in events.iter().enumerate() {
        if ev.idempotency.is_some() {
            outcomes.extend(ingest_run(tx, &events[run_start..i], node, false).await?);
            tx.begin().await?;
            outcomes.push(ingest_one(tx.client(), ev, *handoff, node).await?);
            run_start = i + 1;
        }
    }
    outcomes.extend(ingest_run(tx, &events[run_start..], node, true).await?);
    // A group ending in a keyed event has no run to carry its `COMMIT`.
    tx.commit_if(true).await?;
    Ok(outcomes)
}

/// Where events go: every webhook of their licenses, by event type; a
/// disabled one gets its deliveries held (`held::HELD`).
const WEBHOOKS: &str =
    "SELECT license_id, event_type, id, url, data_types, signing_secret, previous_signing_secret,
            previous_secret_until, max_per_second, enabled, ordered_since IS NOT NULL
     FROM webhooks
     WHERE license_id = ANY($1::text[]) AND deleted_at IS NULL AND v3_version IS NULL";
/// The first tags seen of each chat, for the chats that are new.
const TAGS_INSERT: &str = "INSERT INTO chat_tags (license_id, chat_id, tags)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(l, c, t)
     WHERE EXISTS (SELECT 1 FROM licenses WHERE license_id = u.l)
     ON CONFLICT DO NOTHING RETURNING license_id, chat_id";
/// Every chat of the run, locked until commit (the new ones are already).
const TAGS_LOCK: &str = "SELECT c.license_id, c.chat_id, c.tags
     FROM chat_tags c JOIN UNNEST($1::text[], $2::text[]) AS u(l, ch)
          ON c.license_id = u.l AND c.chat_id = u.ch
     ORDER BY c.license_id, c.chat_id
     FOR UPDATE OF c";
const TAGS_UPDATE: &str = "UPDATE chat_tags c SET tags = u.t
     FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(l, ch, t)
     WHERE c.license_id = u.l AND c.chat_id = u.ch";
const VISITORS: &str =
    "INSERT INTO visitors (license_id, visitor_id, name, email, last_event_type, last_seen_at)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
         AS u(l, v, n, e, k, t)
     WHERE EXISTS (SELECT 1 FROM licenses WHERE license_id = u.l)
     ON CONFLICT (license_id, visitor_id) DO UPDATE SET
       name = COALESCE(excluded.name, visitors.name),
       email = COALESCE(excluded.email, visitors.email),
       last_event_type = excluded.last_event_type,
       last_seen_at = excluded.last_seen_at";
const EVENTS: &str =
    "INSERT INTO events (unique_id, license_id, event_type, chat, visitor, pre_chat_survey,
                         ticket, token_hash, token_expires_at, received_at)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                          $7::text[], $8::text[], $9::bigint[], $10::bigint[])
         AS u(i, l, k, c, v, p, t, h, x, r)
     WHERE EXISTS (SELECT 1 FROM licenses WHERE license_id = u.l)
     RETURNING unique_id, seq";
const DELIVERIES: &str =
    "INSERT INTO deliveries (event_seq, webhook_id, license_id, data_types, state,
                             next_attempt_at, lease_until, leased_by, created_at, updated_at, order_key)
     SELECT s, w, l, d, 'pending', due, lease, CASE WHEN lease > 0 THEN $7::bigint END, t, t, k
     FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::bigint[],
                 $8::text[], $9::bigint[])
          AS u(s, w, l, d, t, lease, k, due)
     RETURNING event_seq, webhook_id, id";

/// A run's statements, all prepared before any is sent (see
/// [`pipeline`](super::pipeline)); after a connection's first group they
/// come from its cache without a round trip.
struct RunStatements {
    webhooks: Statement,
    tags_insert: Statement,
    tags_lock: Statement,
    tags_update: Statement,
    visitors: Statement,
    events: Statement,
    deliveries: Statement,
    held: Statement,
}

impl RunStatements {
    async fn prepare(c: &Client) -> Result<Self, tokio_postgres::Error> {
        let (webhooks, tags_insert, tags_lock, tags_update, visitors, events, deliveries, held) = tokio::try_join!(
            c.prepare_cached(WEBHOOKS),
            c.prepare_cached(TAGS_INSERT),
            c.prepare_cached(TAGS_LOCK),
            c.prepare_cached(TAGS_UPDATE),
            c.prepare_cached(VISITORS),
            c.prepare_cached(EVENTS),
            c.prepare_cached(DELIVERIES),
            c.prepare_cached(HELD),
        )?;
        Ok(RunStatements {
            webhooks,
            tags_insert,
            tags_lock,
            tags_update,
            visitors,
            events,
            deliveries,
            held,
        })
    }
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// `stmt` when `needed`, no rows otherwise: an optional member of a batch.
pub(super) async fn query_if(
    c: &Client,
    needed: bool,
    stmt: &Statement,
    params: &Params<'_>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    if needed {
        c.query(stmt, params).await
    } else {
        Ok(Vec::new())
    }
}

/// Events without idempotency keys, a statement per table, in two round
/// trips; `commit` puts the group's `COMMIT` behind the second. Same effects
/// as [`ingest_one`] on each event in turn.
async fn ingest_run(
    tx: &PipelinedTx,
    events: &[(&NewEvent, Option<&Handoff>)],
    node: i64,
    commit: bool,
) -> Result<Vec<IngestOutcome>, GroupFailure> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let st = RunStatements::prepare(tx.client()).await?;
    let c = tx.client();
    let mut licenses: Vec<&str> = events.iter().map(|(e, _)| e.license_id.as_str()).collect();
    licenses.sort_unstable();
    licenses.dedup();
    let chats = TagRule::new(events);
    let visitors = VisitorColumns::new(events);
    let ev = EventColumns::new(events);
    let (by_license, tags_insert, tags_lock, visitor_params, event_params) = (
        [&licenses as &(dyn ToSql + Sync)],
        chats.insert_params(),
        chats.lock_params(),
        visitors.params(),
        ev.params(),
    );
    let (_, webhook_rows, inserted_tags, locked_tags, _, event_rows) = tokio::try_join!(
        biased;
        tx.begin(),
        c.query(&st.webhooks, &by_license),
        query_if(c, !chats.is_empty(), &st.tags_insert, &tags_insert),
        query_if(c, !chats.is_empty(), &st.tags_lock, &tags_lock),
        query_if(c, !visitors.is_empty(), &st.visitors, &visitor_params),
        c.query(&st.events, &event_params),
    )?;
    // Each event's seq; none for an event of an unknown license, which the
    // insert kept out.
    let seqs: HashMap<&str, i64> = event_rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let seq_of: Vec<Option<i64>> = events
        .iter()
        .map(|(e, _)| seqs.get(e.unique_id.as_str()).copied())
        .collect();
    let accepted: Vec<bool> = seq_of.iter().map(Option::is_some).collect();
    let (deliver, changed) = chats.decide(events, &accepted, &inserted_tags, &locked_tags);

    // By (license, event type), borrowing the rows' strings: no key is
    // allocated per event.
    let mut webhooks: HashMap<(&str, &str), Vec<&Row>> = HashMap::new();
    for row in &webhook_rows {
        webhooks
            .entry((row.get(0), row.get(1)))
            .or_default()
            .push(row);
    }
    let targets_of = |ev: &NewEvent| -> Vec<IngestTarget> {
        webhooks
            .get(&(ev.license_id.as_str(), ev.event_type.as_str()))
            .map(|rows| {
                rows.iter()
                    .map(|r| IngestTarget {
                        webhook_id: r.get(2),
                        held: !r.get::<_, bool>(9),
                        url: r.get(3),
                        data_types: DataTypes::from_bits(r.get::<_, i16>(4) as u8),
                        signing_secrets: signing_secrets(
                            r.get(5),
                            r.get(6),
                            r.get(7),
                            ev.received_at,
                        ),
                        max_per_second: r.get::<_, Option<i32>>(8).map(|n| n.max(0) as u32),
                        v3_secret_key: None,
                        order_key: ev.order_key.clone().filter(|_| r.get::<_, bool>(10)),
                        parked: false,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };

    // Their deliveries.
    let mut planned: Vec<Vec<IngestTarget>> = events
        .iter()
        .zip(&seq_of)
        .zip(&deliver)
        .map(|(((ev, _), seq), deliver)| match (seq, deliver) {
            (Some(_), true) => targets_of(ev),
            _ => Vec::new(),
        })
        .collect();
    park_planned(&mut planned, |pairs| lock_and_find_unfinished(c, pairs)).await?;
    let (mut d_seq, mut d_hook, mut d_lic, mut d_bits, mut d_at, mut d_lease) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut d_key, mut d_due) = (vec![], vec![]);
    let mut held = HeldColumns::default();
    let mut notify = false;
    for (((ev, handoff), seq), targets) in events.iter().zip(&seq_of).zip(&planned) {
        let Some(seq) = seq else {
            continue;
        };
        for t in targets {
            if t.held {
                held.push(*seq, ev, t);
                continue;
            }
            d_seq.push(*seq);
            d_hook.push(t.webhook_id.clone());
            d_lic.push(ev.license_id.as_str());
            d_bits.push(t.data_types.bits() as i16);
            d_at.push(ev.received_at);
            d_key.push(t.order_key.as_deref());
            d_due.push(ingest_due(ev.received_at, t));
            let lease = ingest_lease(*handoff, t);
            d_lease.push(lease);
            notify |= lease == 0 && !t.parked;
        }
    }
    let (c_lic, c_chat, c_tags): (Vec<&str>, Vec<&str>, Vec<&str>) = changed.into_iter().collect();
    let tags_update: [&(dyn ToSql + Sync); 3] = [&c_lic, &c_chat, &c_tags];
    let delivery_params: [&(dyn ToSql + Sync); 9] = [
        &d_seq, &d_hook, &d_lic, &d_bits, &d_at, &d_lease, &node, &d_key, &d_due,
    ];
    let held_params = held.params();
    let (_, delivery_rows, held_rows, _, _) = tokio::try_join!(
        biased;
        query_if(c, !c_lic.is_empty(), &st.tags_update, &tags_update),
        query_if(c, !d_seq.is_empty(), &st.deliveries, &delivery_params),
        query_if(c, !held.is_empty(), &st.held, &held_params),
        async {
            if notify {
                notify_due(c).await?;
            }
            Ok(())
        },
        tx.commit_if(commit),
    )?;
    // After the commit, if it was sent: a notification outside a
    // transaction goes at once.
    notify_if_made_pending(c, &held_rows).await?;
    let delivery_ids: HashMap<(i64, &str), i64> = delivery_rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();

    let mut outcomes = Vec::with_capacity(events.len());
    for (((ev, handoff), seq), targets) in events.iter().zip(seq_of).zip(planned) {
        let Some(seq) = seq else {
            outcomes.push(IngestOutcome::UnknownLicense);
            continue;
        };
        let delivery_count = targets.len();
        let held_count = targets.iter().filter(|t| t.held).count();
        let deliveries = match handoff {
            Some(_) if held_count < targets.len() => {
                // The group may have committed already: a delivery whose id
                // did not come back is not handed over (it is in the
                // database, and due for a poller when its lease runs out)
                // rather than failing an accepted event.
                let jobs = targets.into_iter().filter(|t| !t.held).filter_map(|t| {
                    let id = delivery_ids.get(&(seq, t.webhook_id.as_str())).copied();
                    if id.is_none() {
                        tracing::warn!(webhook = %t.webhook_id, "an inserted delivery's id did not come back; not handed over");
                    }
                    Some((id?, t))
                });
                handoff_jobs(*handoff, jobs, || event_body(ev))
            }
            _ => Vec::new(),
        };
        outcomes.push(IngestOutcome::Accepted {
            event_id: ev.unique_id.clone(),
            deliveries,
            delivery_count,
            held: held_count,
        });
    }
    Ok(outcomes)
}

/// One event, alone: the path of events with an idempotency key, whose
/// claim on the key must come before anything else the event does.
async fn ingest_one(
    tx: &Client,
    ev: &NewEvent,
    handoff: Option<&Handoff>,
    node: i64,
) -> Result<IngestOutcome, tokio_postgres::Error> {
    let known = tx
        .query_opt(
            "SELECT 1 FROM licenses WHERE license_id = $1",
            &[&ev.license_id],
        )
        .await?;
    if known.is_none() {
        return Ok(IngestOutcome::UnknownLicense);
    }
    if let Some((key, body_hash)) = &ev.idempotency {
        let client: &tokio_postgres::Client = tx;
        if let Some(answer) =
            claim_idempotency_key(client, key, body_hash, &ev.unique_id, ev.received_at).await?
        {
            return Ok(answer);
        }
    }

    // The chat_changed rule (`rules::tags`), decided under the chat's row
    // lock so that nodes reporting the same chat at once agree on what
    // changed. A chat this event inserted was never seen.
    let mut deliver = true;
    if let Some((chat_id, tags)) = &ev.chat_tags {
        let inserted = tx
            .query_opt(
                "INSERT INTO chat_tags (license_id, chat_id, tags) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING RETURNING 1",
                &[&ev.license_id, chat_id, tags],
            )
            .await?;
        if inserted.is_none() {
            let previous: String = tx
                .query_one(
                    "SELECT tags FROM chat_tags WHERE license_id = $1 AND chat_id = $2 FOR UPDATE",
                    &[&ev.license_id, chat_id],
                )
                .await?
                .get(0);
            deliver = rules::tags::delivers(ev.event_type, Some(&previous), tags);
            tx.execute(
                "UPDATE chat_tags SET tags = $3 WHERE license_id = $1 AND chat_id = $2",
                &[&ev.license_id, chat_id, tags],
            )
            .await?;
        }
    }
    if let Some(v) = &ev.visitor {
        tx.execute(
            "INSERT INTO visitors (license_id, visitor_id, name, email, last_event_type, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (license_id, visitor_id) DO UPDATE SET
               name = COALESCE(excluded.name, visitors.name),
               email = COALESCE(excluded.email, visitors.email),
               last_event_type = excluded.last_event_type,
               last_seen_at = excluded.last_seen_at",
            &[&ev.license_id, &v.id, &v.name, &v.email, &ev.event_type.as_str(), &ev.received_at],
        )
        .await?;
    }

    let section = |t: DataType| ev.sections[t.index()].as_ref().map(|r| r.get());
    let seq: i64 = tx
        .query_one(
            "INSERT INTO events (unique_id, license_id, event_type, chat, visitor, pre_chat_survey, ticket,
                                 token_hash, token_expires_at, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq",
            &[
                &ev.unique_id,
                &ev.license_id,
                &ev.event_type.as_str(),
                &section(DataType::Chat),
                &section(DataType::Visitor),
                &section(DataType::PreChatSurvey),
                &section(DataType::Ticket),
                &ev.token_hash,
                &ev.token_expires_at,
                &ev.received_at,
            ],
        )
        .await?
        .get(0);

    let targets: Vec<IngestTarget> = if deliver {
        tx.query(
            "SELECT id, url, data_types, signing_secret, previous_signing_secret, previous_secret_until,
                    max_per_second, enabled, ordered_since IS NOT NULL
             FROM webhooks
             WHERE license_id = $1 AND event_type = $2 AND deleted_at IS NULL AND v3_version IS NULL",
            &[&ev.license_id, &ev.event_type.as_str()],
        )
        .await?
        .iter()
        .map(|r| {
            let bits: i16 = r.get(2);
            IngestTarget {
                webhook_id: r.get(0),
                held: !r.get::<_, bool>(7),
                url: r.get(1),
                data_types: DataTypes::from_bits(bits as u8),
                signing_secrets: signing_secrets(r.get(3), r.get(4), r.get(5), ev.received_at),
                max_per_second: r.get::<_, Option<i32>>(6).map(|n| n.max(0) as u32),
                v3_secret_key: None,
                order_key: ev.order_key.clone().filter(|_| r.get::<_, bool>(8)),
                parked: false,
            }
        })
        .collect()
    } else {
        Vec::new()
    };
    let mut targets = vec![targets];
    park_planned(&mut targets, |pairs| lock_and_find_unfinished(tx, pairs)).await?;
    let targets = targets.pop().unwrap_or_default();
    let mut delivery_ids = Vec::with_capacity(targets.len());
    let mut notify = false;
    let mut held = HeldColumns::default();
    for t in &targets {
        if t.held {
            held.push(seq, ev, t);
            // Not handed over (see `handoff_jobs`): the id is never used.
            delivery_ids.push(0);
            continue;
        }
        let bits = t.data_types.bits() as i16;
        let lease = ingest_lease(handoff, t);
        notify |= lease == 0 && !t.parked;
        let id: i64 = tx
            .query_one(
                "INSERT INTO deliveries (event_seq, webhook_id, license_id, data_types, state, next_attempt_at,
                                         lease_until, leased_by, created_at, updated_at, order_key)
                 VALUES ($1, $2, $3, $4, 'pending', $8, $6, CASE WHEN $6::bigint > 0 THEN $7::bigint END, $5, $5, $9)
                 RETURNING id",
                &[&seq, &t.webhook_id, &ev.license_id, &bits, &ev.received_at, &lease, &node,
                  &ingest_due(ev.received_at, t), &t.order_key],
            )
            .await?
            .get(0);
        delivery_ids.push(id);
    }
    if let Some((key, _)) = &ev.idempotency {
        tx.execute(
            "UPDATE idempotency_keys SET deliveries = $2 WHERE key = $1",
            &[key, &(targets.len() as i64)],
        )
        .await?;
    }
    if !held.is_empty() {
        let rows = tx.query(HELD, &held.params()).await?;
        notify |= rows.iter().any(|r| r.get::<_, &str>(0) == "pending");
    }
    if notify {
        notify_due(tx).await?;
    }

    let delivery_count = targets.len();
    let held_count = targets.iter().filter(|t| t.held).count();
    let deliveries = handoff_jobs(handoff, delivery_ids.into_iter().zip(targets), || {
        event_body(ev)
    });
    Ok(IngestOutcome::Accepted {
        event_id: ev.unique_id.clone(),
        deliveries,
        delivery_count,
        held: held_count,
    })
}

/// Claims an idempotency key for the event `event_id` inside the ingest's
/// transaction, or answers as the key's first request did (a replay, or a
/// key reused with another body). Claiming first serializes nodes racing on
/// the key: a second insert waits for the first transaction, then finds the
/// row. An expired key is claimed anew (`idempotency::decide`). The claim
/// counts no deliveries yet: ingest sets them once it made them.
pub(super) async fn claim_idempotency_key(
    tx: &impl tokio_postgres::GenericClient,
    key: &str,
    body_hash: &str,
    event_id: &str,
    received_at: Millis,
) -> Result<Option<IngestOutcome>, tokio_postgres::Error> {
    let claimed = tx
        .query_opt(
            "INSERT INTO idempotency_keys (key, body_hash, event_id, deliveries, created_at)
             VALUES ($1, $2, $3, 0, $4)
             ON CONFLICT (key) DO UPDATE SET body_hash = excluded.body_hash,
               event_id = excluded.event_id, deliveries = 0, created_at = excluded.created_at
             WHERE idempotency_keys.created_at < $5
             RETURNING key",
            &[
                &key,
                &body_hash,
                &event_id,
                &received_at,
                &idempotency::expired_before(received_at),
            ],
        )
        .await?;
    if claimed.is_some() {
        return Ok(None);
    }
    let row = tx
        .query_one(
            "SELECT body_hash, event_id, deliveries, created_at FROM idempotency_keys WHERE key = $1",
            &[&key],
        )
        .await?;
    let stored = StoredKey {
        body_hash: row.get(0),
        event_id: row.get(1),
        deliveries: row.get(2),
        created_at: row.get(3),
    };
    // A stored key is never accepted again: this answers.
    Ok(idempotency::decide(Some(stored), body_hash, received_at).outcome())
}
