//! How stored things are shown in API answers. Passwords in URLs only ever
//! appear masked.

use crate::store::rules::ordering::LinePlace;
use crate::store::{DeliveryState, DeliveryView, EventName, Millis, V3Webhook, Webhook};
use hookwire_livechat::EventType;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn rfc3339(ms: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn parse_rfc3339(field: &str, text: &str) -> Result<Millis, super::error::AppError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
        .map_err(|_| {
            super::error::AppError::invalid(
                field,
                format!("{text:?} is not an RFC 3339 time such as 2026-11-25T12:00:00Z"),
            )
        })
}

/// LiveChat's license ids are numbers in its answers; others stay strings.
fn licence_value(id: &str) -> Value {
    match id.parse::<u64>() {
        Ok(n) if !id.starts_with('0') || id == "0" => json!(n),
        _ => json!(id),
    }
}

/// A webhook as LiveChat's v2 API shows it (note the spelling `licence`).
pub fn livechat_webhook(w: &Webhook) -> Value {
    json!({
        "licence": licence_value(&w.license_id),
        "event_type": w.event_type.as_str(),
        "data_types": w.data_types.names(),
        "url": w.url.masked(),
        "verified": true,
        "token": w.token,
        "id": w.id,
    })
}

/// A webhook in hookwire's own API.
pub fn webhook(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "license_id": w.license_id,
        "event_type": w.event_type.as_str(),
        "data_types": w.data_types.names(),
        "url": w.url.masked(),
        "enabled": w.enabled,
        "disabled_reason": w.disabled_reason,
        "max_per_second": w.max_per_second,
        "ordered": w.ordered,
        "signed": w.signed,
        "held_deliveries": w.held_deliveries,
        "created_at": rfc3339(w.created_at),
    })
}

/// A LiveChat v3 webhook in hookwire's own API: what `list_webhooks`
/// shows (but the secret key), and its switches.
pub fn v3_webhook(w: &V3Webhook) -> Value {
    json!({
        "id": w.id,
        "license_id": w.license_id,
        "version": w.version.as_str(),
        "action": w.action.as_str(),
        "type": w.kind.as_str(),
        "owner_client_id": w.owner_client_id,
        "url": w.url.masked(),
        "description": w.description,
        "filters": w.filters,
        "additional_data": w.additional_data.names(),
        "enabled": w.enabled,
        "disabled_reason": w.disabled_reason,
        "ordered": w.ordered,
        "log_filtered": w.log_filtered,
        "held_deliveries": w.held_deliveries,
        "max_per_second": w.max_per_second,
        "signed": w.signed,
        "created_at": rfc3339(w.created_at),
    })
}

pub fn delivery(d: &DeliveryView) -> Value {
    json!({
        "id": d.id.to_string(),
        "event_id": d.event_id,
        "webhook_id": d.webhook_id,
        "event_type": d.event_type.as_str(),
        "state": d.state.as_str(),
        "created_at": rfc3339(d.created_at),
        "next_attempt_at": d.next_attempt_at.map(rfc3339),
        "attempts": d.attempts.iter().map(|a| json!({
            "at": rfc3339(a.at),
            "status": a.status,
            "latency_ms": a.latency_ms,
            "error": a.error,
            "response_excerpt": a.response_excerpt,
        })).collect::<Vec<_>>(),
        "ordering": d.line.as_ref().map(|line| ordering(d, line)),
        "filtered_by": d.filtered_by,
    })
}

/// A delivery's place in its key's line (ordered webhooks only): its key,
/// what it waits for, what it went past, and a sentence saying so.
fn ordering(d: &DeliveryView, line: &LinePlace) -> Value {
    match line {
        LinePlace::Unkeyed => json!({
            "key": null,
            "waits_for": null,
            "after_failed": [],
            "note": format!(
                "delivered unordered: the event has no {} id to order it by",
                ordering_key_kind(d)
            ),
        }),
        LinePlace::Keyed {
            key,
            waits_for,
            after_failed,
        } => {
            let mut notes = Vec::new();
            if let Some(id) = waits_for {
                notes.push(format!(
                    "waits for delivery {id}, the one before it of {} {key}",
                    ordering_key_kind(d)
                ));
            }
            if d.state == DeliveryState::Failed {
                notes.push(format!(
                    "failed for good; the later deliveries of {} {key} went on past it",
                    ordering_key_kind(d)
                ));
            }
            if !after_failed.is_empty() {
                let ids: Vec<String> = after_failed.iter().map(i64::to_string).collect();
                notes.push(format!(
                    "went on past delivery {}, which failed for good",
                    ids.join(", ")
                ));
            }
            json!({
                "key": key,
                "waits_for": waits_for.map(|id| id.to_string()),
                "after_failed": after_failed.iter().map(i64::to_string).collect::<Vec<_>>(),
                "note": (!notes.is_empty()).then(|| notes.join("; ")),
            })
        }
    }
}

/// What a delivery's ordering key names: a chat, a visitor or a ticket.
fn ordering_key_kind(d: &DeliveryView) -> &'static str {
    match d.event_type {
        EventName::V2(EventType::VisitorQueued) => "visitor",
        EventName::V2(EventType::TicketCreated) => "ticket",
        _ => "chat",
    }
}

pub fn visitor(v: &crate::store::VisitorView) -> Value {
    json!({
        "visitor_id": v.visitor_id,
        "name": v.name,
        "email": v.email,
        "last_event_type": v.last_event_type,
        "last_seen_at": v.last_seen_at.map(rfc3339),
        "details": v.details.iter().map(|d| json!({
            "id": d.set_id,
            "icon": d.icon,
            "fields": serde_json::from_str::<Value>(&d.fields_json).unwrap_or_else(|_| json!([])),
            "updated_at": rfc3339(d.updated_at),
        })).collect::<Vec<_>>(),
    })
}

/// A license's retention (`GET`/`PATCH /api/v1/licenses/{id}`).
pub fn license(view: &crate::service::RetentionView, organization_id: &str) -> Value {
    json!({
        "license_id": view.license_id,
        "organization_id": organization_id,
        "retention": view.retention.to_string(),
        "retention_seconds": view.retention.as_duration().as_secs(),
        "retention_is_default": view.own.is_none(),
        "oldest_kept_delivery_at": view.oldest_kept_delivery.map(rfc3339),
    })
}
