//! The web app's pages and form handlers, a module per page; here the form
//! parsing and page chrome they share.

use super::html::{self, csrf_field, esc, notice, qs, time, Chrome};
use super::sample::sample_event;
use super::session::{
    cookie, over_https, session_cookie, set_cookie, LOGIN_COOKIE, SESSION_COOKIE, SESSION_TTL,
};
use super::{SignedIn, UiError, UiResult};
use crate::api::views;
use crate::api::webhooks::{create_webhook as api_create_webhook, Surface};
use crate::api::AppState;
use crate::engine::attempt::AttemptOutcome;
use crate::secret::{constant_time_eq, hash_secret, random_hex};
use crate::service::{RedeliverySince, ServiceError, WebhookChanges};
use crate::store::rules::ordering::LinePlace;
use crate::store::{
    now_millis, DeliveryQuery, DeliveryState, DeliveryView, Millis, VisitorView, Webhook,
};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::Json;
use hookwire_livechat::{DataType, DataTypes, EventType, TargetUrl, ValidationError};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

mod agents;
mod deliveries;
mod enable;
mod overview;
mod sign_in;
mod v3_webhooks;
mod webhooks;

pub use agents::*;
pub use deliveries::*;
pub use enable::*;
pub use overview::*;
pub use sign_in::*;
pub use v3_webhooks::*;
pub use webhooks::*;

const PAGE_SIZE: usize = 25;
const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;
/// The most attempts the overview and the rates look at.
const MAX_SAMPLES: usize = 200_000;

type Params = Query<HashMap<String, String>>;

/// Parses a urlencoded form body (PHP-style brackets make arrays).
fn form(body: &Bytes) -> UiResult<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|_| UiError::BadRequest("the form was not valid UTF-8".into()))?;
    hookwire_livechat::form::parse(text).map_err(|e| UiError::BadRequest(e.to_string()))
}

fn text<'a>(form: &'a Value, key: &str) -> &'a str {
    form.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Whether a checkbox was ticked: a form sends it only then.
fn checked(form: &Value, key: &str) -> bool {
    matches!(text(form, key), "true" | "on" | "1")
}

/// A list field (`data_types[]`), also accepting a lone value.
fn list(form: &Value, key: &str) -> Vec<String> {
    match form.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

async fn render(
    state: &AppState,
    signed: &SignedIn,
    active: &str,
    title: &str,
    body: &str,
) -> UiResult<Html<String>> {
    let licenses = if signed.session.operator {
        state.store().list_licenses().await?
    } else {
        Vec::new()
    };
    let chrome = Chrome {
        session: &signed.session,
        licenses: &licenses,
        active,
    };
    Ok(Html(html::page(title, &chrome, body)))
}

fn param<'a>(p: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    p.get(key).map(String::as_str).filter(|s| !s.is_empty())
}

/// Fixed notices named in a redirect's query (never user text).
fn flash(p: &HashMap<String, String>) -> String {
    let count = param(p, "count")
        .and_then(|c| c.parse::<u64>().ok())
        .unwrap_or(0);
    match param(p, "n") {
        Some("created") => notice("ok", "Webhook created."),
        Some("created_http") => notice(
            "warn",
            "Webhook created. <strong>Warning:</strong> its URL uses http://, so payloads and tokens travel unencrypted.",
        ),
        Some("updated") => notice("ok", "Webhook saved."),
        Some("enabled") => notice(
            "ok",
            "Webhook enabled: what it held while disabled is delivered, oldest first.",
        ),
        Some("enabled_discarded") => notice(
            "ok",
            "Webhook enabled: what it held while disabled was discarded.",
        ),
        Some("disabled") => notice("ok", "Webhook disabled: new events are held until you enable it again."),
        Some("deleted") => notice("ok", "Webhook deleted."),
        Some("redelivered") => notice(
            "ok",
            &format!(
                "Redelivery queued for {count} {}.",
                if count == 1 { "delivery" } else { "deliveries" }
            ),
        ),
        Some("switched") => notice("ok", "License switched."),
        _ => String::new(),
    }
}

async fn owned(state: &AppState, license: &str, id: &str) -> UiResult<Webhook> {
    state
        .store()
        .get_webhook(license, id)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("There is no webhook {id}.")))
}

fn state_badge(state: DeliveryState) -> String {
    format!(r#"<span class="badge {0}">{0}</span>"#, state.as_str())
}
