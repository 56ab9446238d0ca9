//! Tools for integrators, on the command line: `listen` (a local receiver
//! that prints webhooks), `trigger` (sends a sample event through a running
//! hookwire), `check-receiver` (a conformance run against a receiver) and
//! `replay` (bulk redelivery since a time). They speak HTTP only: to a
//! hookwire server's API, or to a receiver as hookwire would.

pub mod check_receiver;
pub mod listen;
pub mod replay;
pub mod samples;
pub mod trigger;

use hookwire_receiver::WebhookPayload;
use serde_json::Value;
use std::time::Duration;

/// Where `trigger` and `replay` find hookwire unless told (the default `listen`).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

pub(crate) fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("hookwire-tools/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client with default TLS settings")
}

/// The server's error message from a JSON error answer, or the raw text.
pub(crate) fn error_message(status: u16, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| {
            let e = v.get("error").unwrap_or(v);
            e.get("message").and_then(Value::as_str).map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(300).collect());
    format!("HTTP {status}: {message}")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// The key fields of a webhook, one line each, for people reading a terminal.
pub fn summarize(p: &WebhookPayload) -> Vec<String> {
    let mut lines = vec![format!(
        "license {}  event_unique_id {}",
        p.license_id, p.event_unique_id
    )];
    if let Some(chat) = &p.chat {
        let whispers = chat.messages.iter().filter(|m| m.is_whisper()).count();
        let n = chat.messages.len();
        let mut line = format!(
            "chat {}: {n} message{}",
            chat.id,
            if n == 1 { "" } else { "s" }
        );
        if whispers > 0 {
            line.push_str(&format!(
                " ({whispers} supervisor whisper{})",
                if whispers == 1 { "" } else { "s" }
            ));
        }
        if !chat.tags.is_empty() {
            line.push_str(&format!(", tags {}", chat.tags.join(", ")));
        }
        lines.push(line);
        if let Some(last) = chat.messages.last() {
            lines.push(format!(
                "  last message ({} {}): {}",
                last.user_type,
                last.author_name,
                cut(&last.text, 80)
            ));
        }
    }
    if let Some(v) = &p.visitor {
        let mut line = format!("visitor {}", v.id);
        if let Some(name) = &v.name {
            line.push_str(&format!(" {name}"));
        }
        if let Some(email) = &v.email {
            line.push_str(&format!(" <{email}>"));
        }
        for var in &v.custom_variables {
            let value = match &var.value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            line.push_str(&format!(", {}={}", var.key, cut(&value, 40)));
        }
        lines.push(line);
    }
    if let Some(survey) = &p.pre_chat_survey {
        if survey.is_empty() {
            lines.push("pre_chat_survey: empty (skipped by the visitor)".into());
        } else {
            lines.push(format!("pre_chat_survey: {} fields", survey.len()));
        }
    }
    if let Some(t) = &p.ticket {
        lines.push(format!(
            "ticket {} [{}] {}",
            t.id,
            t.status.as_deref().unwrap_or("?"),
            t.subject.as_deref().map(|s| cut(s, 80)).unwrap_or_default()
        ));
    }
    lines
}

/// The data types a payload carries, in payload order.
pub fn data_types_of(p: &WebhookPayload) -> Vec<&'static str> {
    let mut out = Vec::new();
    if p.chat.is_some() {
        out.push("chat");
    }
    if p.visitor.is_some() {
        out.push("visitor");
    }
    if p.pre_chat_survey.is_some() {
        out.push("pre_chat_survey");
    }
    if p.ticket.is_some() {
        out.push("ticket");
    }
    out
}
