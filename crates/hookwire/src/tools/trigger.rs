//! `hookwire trigger EVENT --license ID`: reports a realistic sample event
//! (shaped like the documentation's examples) to a running hookwire, which
//! delivers it to the license's webhooks for that event.

use super::{error_message, http_client, DEFAULT_SERVER};
use crate::server::BoxError;
use hookwire_livechat::sample::sample_json;
use hookwire_livechat::EventType;
use serde_json::Value;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// chat_started, chat_ended, visitor_queued, chat_changed or ticket_created.
    event: String,
    /// The license the event belongs to.
    #[arg(long)]
    license: String,
    /// hookwire's base URL.
    #[arg(long, default_value = DEFAULT_SERVER)]
    server: String,
    /// The platform key (events are reported by the platform).
    #[arg(long, env = "HOOKWIRE_PLATFORM_KEY", hide_env_values = true)]
    platform_key: String,
}

pub async fn run(args: Args) -> Result<(), BoxError> {
    let event: EventType = args.event.parse()?;
    hookwire_livechat::event::validate_license_id(&args.license)?;
    let body = sample_json(event, &args.license);
    let url = format!("{}/api/v1/events", args.server.trim_end_matches('/'));
    let response = http_client(Duration::from_secs(30))
        .post(&url)
        .bearer_auth(&args.platform_key)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("cannot reach hookwire at {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    if status != 202 {
        return Err(format!(
            "hookwire refused the event: {}",
            error_message(status, &text)
        )
        .into());
    }
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let deliveries = answer["deliveries"].as_u64().unwrap_or(0);
    println!(
        "{event} for license {} accepted as event {}: {deliveries} deliver{} queued",
        args.license,
        answer["id"].as_str().unwrap_or("?"),
        if deliveries == 1 { "y" } else { "ies" }
    );
    if deliveries == 0 {
        println!("  (the license has no webhook for {event}; create one to receive it)");
    }
    Ok(())
}
