//! Ingest on PostgreSQL: events and their deliveries, committed in groups.
//!
//! Requests waiting at the same moment share one transaction (see
//! [`group`](super::group)). Inside it, runs of events without an
//! idempotency key are written with one set-based statement per table;
//! an event with a key goes alone ([`ingest_one`]), between the runs, so the
//! events of a group still take effect in the order they came. Set-based
//! statements lock rows in key order (chats, then visitors), so concurrent
//! groups wait for each other instead of deadlocking.

use super::*;
use deadpool_postgres::Transaction;
use std::collections::hash_map::Entry;

/// One caller's events, with the lease of its hand-off (see [`Store::ingest`]).
pub(super) struct IngestRequest {
    pub events: Vec<NewEvent>,
    pub handoff: Option<Handoff>,
}

pub(super) struct IngestWork {
    pub pool: Pool,
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
        let mut client = group_client(&self.pool).await?;
        let tx = client.transaction().await?;
        let events: Vec<(&NewEvent, Option<&Handoff>)> = requests
            .iter()
            .flat_map(|r| r.events.iter().map(|e| (e, r.handoff.as_ref())))
            .collect();
        let mut outcomes = ingest_events(&tx, &events).await?.into_iter();
        tx.commit().await?;
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
        event_type: ev.event_type,
        sections: ev.sections.clone(),
    }
}

pub(super) async fn notify_due(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!("NOTIFY {DUE_CHANNEL}")).await
}

/// Ingests `events` in order inside `tx`: runs without idempotency keys set
/// based, keyed events one by one.
async fn ingest_events(
    tx: &Transaction<'_>,
    events: &[(&NewEvent, Option<&Handoff>)],
) -> Result<Vec<IngestOutcome>, GroupFailure> {
    let mut outcomes = Vec::with_capacity(events.len());
    let mut run_start = 0;
    for (i, (ev, handoff)) in events.iter().enumerate() {
        if ev.idempotency.is_some() {
            outcomes.extend(ingest_run(tx, &events[run_start..i]).await?);
            outcomes.push(ingest_one(tx, ev, *handoff).await?);
            run_start = i + 1;
        }
    }
    outcomes.extend(ingest_run(tx, &events[run_start..]).await?);
    Ok(outcomes)
}

type ChatKey<'a> = (&'a str, &'a str);

/// The database answered an insert without a row it must have returned:
/// the group is refused (and its requests retried alone), never a panic.
fn unanswered(what: &str) -> GroupFailure {
    GroupFailure {
        error: StoreError::Unavailable(format!("the database did not return {what}")),
        retry_alone: true,
    }
}

fn seq_of(seqs: &HashMap<String, i64>, ev: &NewEvent) -> Result<i64, GroupFailure> {
    seqs.get(ev.unique_id.as_str())
        .copied()
        .ok_or_else(|| unanswered("an inserted event's seq"))
}

/// Events without idempotency keys, a statement per table. Same effects as
/// [`ingest_one`] on each event in turn.
async fn ingest_run(
    tx: &Transaction<'_>,
    events: &[(&NewEvent, Option<&Handoff>)],
) -> Result<Vec<IngestOutcome>, GroupFailure> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut licenses: Vec<&str> = events.iter().map(|(e, _)| e.license_id.as_str()).collect();
    licenses.sort_unstable();
    licenses.dedup();
    // Round trips, not rows, are what a small group costs: statements that
    // do not need each other's answers go out together (tokio-postgres
    // pipelines concurrent queries on one connection).
    let by_license: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&licenses];
    let (known_rows, webhook_rows) = tokio::try_join!(
        query(
            tx,
            "SELECT license_id FROM licenses WHERE license_id = ANY($1::text[])",
            &by_license,
        ),
        // Where events go: every enabled webhook of their licenses, by event type.
        query(
            tx,
            "SELECT license_id, event_type, id, url, data_types, signing_secret, previous_signing_secret,
                    previous_secret_until, max_per_second
             FROM webhooks
             WHERE license_id = ANY($1::text[]) AND deleted_at IS NULL AND enabled",
            &by_license,
        ),
    )?;
    let known: std::collections::HashSet<&str> = known_rows.iter().map(|r| r.get(0)).collect();
    let accepted: Vec<bool> = events
        .iter()
        .map(|(e, _)| known.contains(e.license_id.as_str()))
        .collect();
    let live = || {
        events
            .iter()
            .zip(&accepted)
            .filter(|(_, ok)| **ok)
            .map(|((e, h), _)| (*e, *h))
    };
    let (deliver, (), seqs) = tokio::try_join!(
        chat_tag_rule(tx, events, &accepted),
        upsert_visitors(tx, live()),
        insert_events(tx, live()),
    )?;
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
                        url: r.get(3),
                        data_types: DataTypes::from_bits(r.get::<_, i16>(4) as u8),
                        signing_secrets: signing_secrets(
                            r.get(5),
                            r.get(6),
                            r.get(7),
                            ev.received_at,
                        ),
                        max_per_second: r.get::<_, Option<i32>>(8).map(|n| n.max(0) as u32),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };

    // Their deliveries.
    let mut planned: Vec<Vec<IngestTarget>> = Vec::with_capacity(events.len());
    let (mut d_seq, mut d_hook, mut d_lic, mut d_bits, mut d_at, mut d_lease) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut notify = false;
    for (((ev, handoff), ok), deliver) in events.iter().zip(&accepted).zip(&deliver) {
        let targets = if *ok && *deliver {
            targets_of(ev)
        } else {
            Vec::new()
        };
        for t in &targets {
            d_seq.push(seq_of(&seqs, ev)?);
            d_hook.push(t.webhook_id.clone());
            d_lic.push(ev.license_id.as_str());
            d_bits.push(t.data_types.bits() as i16);
            d_at.push(ev.received_at);
            let lease = Handoff::lease_for(*handoff, &t.webhook_id);
            d_lease.push(lease);
            notify |= lease == 0;
        }
        planned.push(targets);
    }
    let mut delivery_ids: HashMap<(i64, String), i64> = HashMap::new();
    if !d_seq.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO deliveries (event_seq, webhook_id, license_id, data_types, state, next_attempt_at,
                                         lease_until, created_at, updated_at)
                 SELECT s, w, l, d, 'pending', t, lease, t, t
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::bigint[])
                      AS u(s, w, l, d, t, lease)
                 RETURNING event_seq, webhook_id, id",
            )
            .await?;
        let rows = tx
            .query(&stmt, &[&d_seq, &d_hook, &d_lic, &d_bits, &d_at, &d_lease])
            .await?;
        delivery_ids = rows
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect();
    }
    if notify {
        notify_due(tx).await?;
    }

    let mut outcomes = Vec::with_capacity(events.len());
    for (((ev, handoff), ok), targets) in events.iter().zip(&accepted).zip(planned) {
        if !ok {
            outcomes.push(IngestOutcome::UnknownLicense);
            continue;
        }
        let delivery_count = targets.len();
        let deliveries = match handoff {
            Some(_) if !targets.is_empty() => {
                let seq = seq_of(&seqs, ev)?;
                let mut jobs = Vec::with_capacity(targets.len());
                for t in targets {
                    let id = delivery_ids
                        .get(&(seq, t.webhook_id.clone()))
                        .copied()
                        .ok_or_else(|| unanswered("the id of an inserted delivery"))?;
                    jobs.push((id, t));
                }
                handoff_jobs(*handoff, jobs, || event_body(ev))
            }
            _ => Vec::new(),
        };
        outcomes.push(IngestOutcome::Accepted {
            event_id: ev.unique_id.clone(),
            deliveries,
            delivery_count,
        });
    }
    Ok(outcomes)
}

async fn query(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.query(&stmt, params).await
}

/// Inserts the events; answers each one's `seq` by its unique id.
async fn insert_events<'a>(
    tx: &Transaction<'_>,
    events: impl Iterator<Item = (&'a NewEvent, Option<&'a Handoff>)>,
) -> Result<HashMap<String, i64>, tokio_postgres::Error> {
    let mut cols: [Vec<Option<&str>>; 4] = Default::default();
    let (mut ids, mut lics, mut types, mut tokens, mut expiries, mut received) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (ev, _) in events {
        ids.push(ev.unique_id.as_str());
        lics.push(ev.license_id.as_str());
        types.push(ev.event_type.as_str());
        for (col, section) in cols.iter_mut().zip(&ev.sections) {
            col.push(section.as_ref().map(|r| r.get()));
        }
        tokens.push(ev.token_hash.as_deref());
        expiries.push(ev.token_expires_at);
        received.push(ev.received_at);
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = query(
        tx,
        "INSERT INTO events (unique_id, license_id, event_type, chat, visitor, pre_chat_survey, ticket,
                             token_hash, token_expires_at, received_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                              $7::text[], $8::text[], $9::bigint[], $10::bigint[])
         RETURNING unique_id, seq",
        &[
            &ids, &lics, &types, &cols[0], &cols[1], &cols[2], &cols[3], &tokens, &expiries,
            &received,
        ],
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The `chat_changed` rule for a run: which events are delivered. A chat's
/// tags are read under its row lock, then every event of the run is decided
/// in order against the tags the one before it left, as if one at a time.
async fn chat_tag_rule(
    tx: &Transaction<'_>,
    events: &[(&NewEvent, Option<&Handoff>)],
    accepted: &[bool],
) -> Result<Vec<bool>, tokio_postgres::Error> {
    let tagged = || {
        events
            .iter()
            .zip(accepted)
            .filter(|(_, ok)| **ok)
            .filter_map(|((ev, _), _)| ev.chat_tags.as_ref().map(|(chat, tags)| (ev, chat, tags)))
    };
    // The first tags seen for each chat, inserted if the chat is new.
    let mut first: Vec<(ChatKey, &str)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (ev, chat, tags) in tagged() {
        if seen.insert((ev.license_id.as_str(), chat.as_str())) {
            first.push(((ev.license_id.as_str(), chat.as_str()), tags.as_str()));
        }
    }
    if first.is_empty() {
        return Ok(vec![true; events.len()]);
    }
    first.sort_unstable();
    let (lics, chats, tags): (Vec<&str>, Vec<&str>, Vec<&str>) =
        first.iter().map(|((l, c), t)| (*l, *c, *t)).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO chat_tags (license_id, chat_id, tags)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])
             ON CONFLICT DO NOTHING RETURNING license_id, chat_id",
        )
        .await?;
    let inserted_rows = tx.query(&stmt, &[&lics, &chats, &tags]).await?;
    // The run's own keys, looked up by the database's answers (a map to
    // itself, so what is found borrows from the run, not from the row).
    let asked: HashMap<ChatKey, ChatKey> = first.iter().map(|(k, _)| (*k, *k)).collect();
    let known = |r: &Row| -> Option<ChatKey> {
        asked
            .get(&(r.get::<_, &str>(0), r.get::<_, &str>(1)))
            .copied()
    };
    let inserted: std::collections::HashSet<ChatKey> =
        inserted_rows.iter().filter_map(known).collect();

    // What the chats that existed already hold, locked until commit.
    let (old_lics, old_chats): (Vec<&str>, Vec<&str>) = first
        .iter()
        .filter(|(key, _)| !inserted.contains(key))
        .map(|((l, c), _)| (*l, *c))
        .unzip();
    // current: the chat's tags as the events so far left them; stored: in the table.
    let mut current: HashMap<ChatKey, String> = HashMap::new();
    let mut stored: HashMap<ChatKey, String> = HashMap::new();
    if !old_lics.is_empty() {
        let stmt = tx
            .prepare_cached(
                "SELECT c.license_id, c.chat_id, c.tags
                 FROM chat_tags c JOIN UNNEST($1::text[], $2::text[]) AS u(l, ch)
                      ON c.license_id = u.l AND c.chat_id = u.ch
                 ORDER BY c.license_id, c.chat_id
                 FOR UPDATE OF c",
            )
            .await?;
        for row in tx.query(&stmt, &[&old_lics, &old_chats]).await? {
            if let Some(key) = known(&row) {
                stored.insert(key, row.get(2));
            }
        }
        current = stored.clone();
    }

    let mut deliver = vec![true; events.len()];
    for (i, ((ev, _), ok)) in events.iter().zip(accepted).enumerate() {
        let Some((chat, tags)) = ev.chat_tags.as_ref().filter(|_| *ok) else {
            continue;
        };
        let key = (ev.license_id.as_str(), chat.as_str());
        match current.entry(key) {
            // A new chat: its first event inserted it, and is delivered.
            Entry::Vacant(slot) => {
                slot.insert(tags.clone());
            }
            Entry::Occupied(mut slot) => {
                if ev.event_type == EventType::ChatChanged && slot.get() == tags {
                    deliver[i] = false;
                }
                slot.insert(tags.clone());
            }
        }
    }
    // Write back the chats whose tags the run changed.
    let first_tags: HashMap<ChatKey, &str> = first.iter().copied().collect();
    let changed: Vec<(&ChatKey, &String)> = current
        .iter()
        .filter(|(k, t)| match stored.get(*k) {
            Some(s) => s != *t,
            None => first_tags.get(*k).copied() != Some(t.as_str()),
        })
        .collect();
    if !changed.is_empty() {
        let (l, c, t): (Vec<&str>, Vec<&str>, Vec<&str>) = changed
            .iter()
            .map(|((l, c), t)| (*l, *c, t.as_str()))
            .collect();
        let stmt = tx
            .prepare_cached(
                "UPDATE chat_tags c SET tags = u.t
                 FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(l, ch, t)
                 WHERE c.license_id = u.l AND c.chat_id = u.ch",
            )
            .await?;
        tx.execute(&stmt, &[&l, &c, &t]).await?;
    }
    Ok(deliver)
}

/// A visitor's name, email, last event type and when it was seen.
type VisitorSeen<'a> = (Option<&'a str>, Option<&'a str>, &'a str, Millis);

/// What a run tells of its visitors, folded per visitor as one upsert after
/// another would leave it: the latest name and email given, the last event.
async fn upsert_visitors<'a>(
    tx: &Transaction<'_>,
    events: impl Iterator<Item = (&'a NewEvent, Option<&'a Handoff>)>,
) -> Result<(), tokio_postgres::Error> {
    let mut folded: HashMap<(&str, &str), VisitorSeen> = HashMap::new();
    for (ev, _) in events {
        let Some(v) = &ev.visitor else { continue };
        let seen = (
            v.name.as_deref(),
            v.email.as_deref(),
            ev.event_type.as_str(),
            ev.received_at,
        );
        folded
            .entry((ev.license_id.as_str(), v.id.as_str()))
            .and_modify(|f| {
                *f = (seen.0.or(f.0), seen.1.or(f.1), seen.2, seen.3);
            })
            .or_insert(seen);
    }
    if folded.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<_> = folded.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let (mut l, mut id, mut name, mut email, mut kind, mut at) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((lic, vid), (n, e, k, t)) in rows {
        l.push(lic);
        id.push(vid);
        name.push(n);
        email.push(e);
        kind.push(k);
        at.push(t);
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO visitors (license_id, visitor_id, name, email, last_event_type, last_seen_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
             ON CONFLICT (license_id, visitor_id) DO UPDATE SET
               name = COALESCE(excluded.name, visitors.name),
               email = COALESCE(excluded.email, visitors.email),
               last_event_type = excluded.last_event_type,
               last_seen_at = excluded.last_seen_at",
        )
        .await?;
    tx.execute(&stmt, &[&l, &id, &name, &email, &kind, &at])
        .await?;
    Ok(())
}

/// One event, alone: the path of events with an idempotency key, whose
/// claim on the key must come before anything else the event does.
async fn ingest_one(
    tx: &Transaction<'_>,
    ev: &NewEvent,
    handoff: Option<&Handoff>,
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
        // Claiming the key first serializes nodes racing on it: a second
        // insert waits for the first transaction, then finds the row.
        let claimed = tx
            .query_opt(
                "INSERT INTO idempotency_keys (key, body_hash, event_id, deliveries, created_at)
                 VALUES ($1, $2, $3, 0, $4) ON CONFLICT (key) DO NOTHING RETURNING key",
                &[key, body_hash, &ev.unique_id, &ev.received_at],
            )
            .await?;
        if claimed.is_none() {
            let row = tx
                .query_one(
                    "SELECT body_hash, event_id, deliveries FROM idempotency_keys WHERE key = $1",
                    &[key],
                )
                .await?;
            let (hash, event_id, count): (String, String, i64) =
                (row.get(0), row.get(1), row.get(2));
            return Ok(if &hash == body_hash {
                IngestOutcome::Replayed {
                    event_id,
                    delivery_count: count as usize,
                }
            } else {
                IngestOutcome::KeyReused
            });
        }
    }

    // The chat_changed rule, decided under the chat's row lock so that nodes
    // reporting the same chat at once agree on what changed.
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
            if ev.event_type == EventType::ChatChanged && &previous == tags {
                deliver = false;
            }
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
                    max_per_second
             FROM webhooks
             WHERE license_id = $1 AND event_type = $2 AND deleted_at IS NULL AND enabled",
            &[&ev.license_id, &ev.event_type.as_str()],
        )
        .await?
        .iter()
        .map(|r| {
            let bits: i16 = r.get(2);
            IngestTarget {
                webhook_id: r.get(0),
                url: r.get(1),
                data_types: DataTypes::from_bits(bits as u8),
                signing_secrets: signing_secrets(r.get(3), r.get(4), r.get(5), ev.received_at),
                max_per_second: r.get::<_, Option<i32>>(6).map(|n| n.max(0) as u32),
            }
        })
        .collect()
    } else {
        Vec::new()
    };
    let mut delivery_ids = Vec::with_capacity(targets.len());
    let mut notify = false;
    for t in &targets {
        let bits = t.data_types.bits() as i16;
        let lease = Handoff::lease_for(handoff, &t.webhook_id);
        notify |= lease == 0;
        let id: i64 = tx
            .query_one(
                "INSERT INTO deliveries (event_seq, webhook_id, license_id, data_types, state, next_attempt_at,
                                         lease_until, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $5, $5) RETURNING id",
                &[&seq, &t.webhook_id, &ev.license_id, &bits, &ev.received_at, &lease],
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
    if notify {
        notify_due(tx).await?;
    }

    let delivery_count = targets.len();
    let deliveries = handoff_jobs(handoff, delivery_ids.into_iter().zip(targets), || {
        event_body(ev)
    });
    Ok(IngestOutcome::Accepted {
        event_id: ev.unique_id.clone(),
        deliveries,
        delivery_count,
    })
}
