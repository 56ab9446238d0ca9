//! Ingest on SQLite: one event, its visitor, the `chat_changed` rule and its
//! deliveries, inside the writer's group commit (each request's events run
//! in a savepoint of their own, so one request's failure is only its own).

use super::ordering::park_behind_unfinished;
use super::*;
use rules::idempotency::{self, StoredKey};

pub(super) fn ingest_one(
    c: &Connection,
    ev: NewEvent,
    handoff: Option<&Handoff>,
) -> rusqlite::Result<IngestOutcome> {
    if let Some((key, body_hash)) = &ev.idempotency {
        if let Some(answer) = idempotency_answer(c, key, body_hash, ev.received_at)? {
            return Ok(answer);
        }
    }
    // The webhooks first: one of them means the license exists (licenses
    // are never deleted), so the license is looked up only when there is
    // none, and most events cost one statement less.
    // Disabled webhooks too: their deliveries are made held, so nothing
    // that happens while a webhook is off goes missing.
    let mut targets = webhooks_for(c, &ev)?;
    if targets.is_empty() && !license_known(c, &ev.license_id)? {
        return Ok(IngestOutcome::UnknownLicense);
    }

    // The chat_changed rule (`rules::tags`) against the tags last seen of
    // this chat, read only when the rule needs them; every chat event
    // updates what was seen, unless it reports what was seen.
    if let Some((chat_id, tags)) = &ev.chat_tags {
        let previous: Option<String> = if rules::tags::needs_previous(ev.event_type) {
            c.prepare_cached("SELECT tags FROM chat_tags WHERE license_id = ?1 AND chat_id = ?2")?
                .query_row(params![ev.license_id, chat_id], |r| r.get(0))
                .optional()?
        } else {
            None
        };
        if !rules::tags::delivers(ev.event_type, previous.as_deref(), tags) {
            targets.clear();
        }
        if !rules::tags::needs_previous(ev.event_type)
            || rules::tags::changes_what_is_kept(previous.as_deref(), tags)
        {
            c.prepare_cached(
                "INSERT INTO chat_tags (license_id, chat_id, tags) VALUES (?1, ?2, ?3)
                 ON CONFLICT (license_id, chat_id) DO UPDATE SET tags = excluded.tags",
            )?
            .execute(params![ev.license_id, chat_id, tags])?;
        }
    }
    if let Some(v) = &ev.visitor {
        c.prepare_cached(
            "INSERT INTO visitors (license_id, visitor_id, name, email, last_event_type, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (license_id, visitor_id) DO UPDATE SET
               name = COALESCE(excluded.name, visitors.name),
               email = COALESCE(excluded.email, visitors.email),
               last_event_type = excluded.last_event_type,
               last_seen_at = excluded.last_seen_at",
        )?
        .execute(params![ev.license_id, v.id, v.name, v.email, ev.event_type.as_str(), ev.received_at])?;
    }

    let section_text = |t: DataType| ev.sections[t.index()].as_ref().map(|r| r.get());
    c.prepare_cached(
        "INSERT INTO events (unique_id, license_id, event_type, chat, visitor, pre_chat_survey, ticket,
                             token_hash, token_expires_at, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        ev.unique_id,
        ev.license_id,
        ev.event_type.as_str(),
        section_text(DataType::Chat),
        section_text(DataType::Visitor),
        section_text(DataType::PreChatSurvey),
        section_text(DataType::Ticket),
        // '' rather than NULL: see schema_6.sql.
        ev.token_hash.as_deref().unwrap_or(""),
        ev.token_expires_at,
        ev.received_at,
    ])?;
    let event_seq = c.last_insert_rowid();

    park_behind_unfinished(c, &mut targets)?;
    let mut insert = c.prepare_cached(
        "INSERT INTO deliveries (event_seq, webhook_id, license_id, data_types, state, next_attempt_at,
                                 lease_until, created_at, updated_at, order_key)
         VALUES (?1, ?2, ?3, ?4, ?7, ?8, ?6, ?5, ?5, ?9)",
    )?;
    let mut delivery_ids = Vec::with_capacity(targets.len());
    for t in &targets {
        insert.execute(params![
            event_seq,
            t.webhook_id,
            ev.license_id,
            t.data_types.bits(),
            ev.received_at,
            ingest_lease(handoff, t),
            ingest_state(t),
            ingest_due(ev.received_at, t),
            t.order_key,
        ])?;
        delivery_ids.push(c.last_insert_rowid());
    }
    if let Some((key, body_hash)) = &ev.idempotency {
        keep_idempotency_key(
            c,
            key,
            body_hash,
            &ev.unique_id,
            targets.len(),
            ev.received_at,
        )?;
    }

    let delivery_count = targets.len();
    let held = targets.iter().filter(|t| t.held).count();
    let event_id = ev.unique_id.clone();
    let deliveries = handoff_jobs(handoff, delivery_ids.into_iter().zip(targets), || {
        EventBody {
            unique_id: ev.unique_id,
            license_id: ev.license_id,
            event_type: EventName::V2(ev.event_type),
            sections: ev.sections,
            v3: None,
        }
    });
    Ok(IngestOutcome::Accepted {
        event_id,
        deliveries,
        delivery_count,
        held,
    })
}

/// Every webhook of the event's license and type that is not deleted,
/// enabled or not, as ingest targets.
fn webhooks_for(c: &Connection, ev: &NewEvent) -> rusqlite::Result<Vec<IngestTarget>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, url, data_types, signing_secret, previous_signing_secret, previous_secret_until,
                max_per_second, enabled, ordered_since IS NOT NULL
         FROM webhooks
         WHERE license_id = ?1 AND event_type = ?2 AND deleted_at IS NULL AND v3_version IS NULL",
    )?;
    let now = ev.received_at;
    let rows = stmt.query_map(params![ev.license_id, ev.event_type.as_str()], |r| {
        Ok(IngestTarget {
            webhook_id: r.get(0)?,
            held: !r.get::<_, bool>(7)?,
            url: r.get(1)?,
            data_types: DataTypes::from_bits(r.get(2)?),
            signing_secrets: signing_secrets(r.get(3)?, r.get(4)?, r.get(5)?, now),
            max_per_second: r.get(6)?,
            v3_secret_key: None,
            order_key: ev.order_key.clone().filter(|_| r.get(8).unwrap_or(false)),
            parked: false,
        })
    })?;
    rows.collect()
}

fn license_known(c: &Connection, license_id: &str) -> rusqlite::Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM licenses WHERE license_id = ?1")?
            .query_row([license_id], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// What an event with an idempotency key is answered without being ingested
/// (a replay, or a key reused with another body); `None`: ingest it. On
/// SQLite the writer is alone, so reading the key first decides it.
pub(super) fn idempotency_answer(
    c: &Connection,
    key: &str,
    body_hash: &str,
    received_at: Millis,
) -> rusqlite::Result<Option<IngestOutcome>> {
    let stored = c
        .prepare_cached(
            "SELECT body_hash, event_id, deliveries, created_at FROM idempotency_keys WHERE key = ?1",
        )?
        .query_row([key], |r| {
            Ok(StoredKey {
                body_hash: r.get(0)?,
                event_id: r.get(1)?,
                deliveries: r.get(2)?,
                created_at: r.get(3)?,
            })
        })
        .optional()?;
    Ok(idempotency::decide(stored, body_hash, received_at).outcome())
}

/// Keeps the key an ingested event claimed, with its delivery count. An
/// expired key is claimed anew (`idempotency::decide`).
pub(super) fn keep_idempotency_key(
    c: &Connection,
    key: &str,
    body_hash: &str,
    event_id: &str,
    deliveries: usize,
    received_at: Millis,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO idempotency_keys (key, body_hash, event_id, deliveries, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET body_hash = excluded.body_hash, event_id = excluded.event_id,
           deliveries = excluded.deliveries, created_at = excluded.created_at",
    )?
    .execute(params![key, body_hash, event_id, deliveries as i64, received_at])?;
    Ok(())
}
