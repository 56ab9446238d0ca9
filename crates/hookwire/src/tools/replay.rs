//! `hookwire replay --license ID --since TIME`: redelivers a license's
//! failed deliveries (or, with `--include-delivered`, every finished one)
//! created since a time, through `POST /api/v1/deliveries/redeliver`, batch
//! by batch with a progress bar. Receivers deduplicate by
//! `event_unique_id`, which a replay keeps.

use super::{error_message, http_client, DEFAULT_SERVER};
use crate::server::BoxError;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The license whose deliveries to redeliver (must match the API key).
    #[arg(long)]
    license: String,
    /// From when: an RFC 3339 time (2026-11-25T12:00:00Z) or a duration back from now (30m, 2h, 7d).
    #[arg(long)]
    since: String,
    /// Only this webhook's deliveries.
    #[arg(long)]
    webhook: Option<String>,
    /// Also redeliver deliveries that succeeded (default: failed ones only).
    #[arg(long)]
    include_delivered: bool,
    /// hookwire's base URL.
    #[arg(long, default_value = DEFAULT_SERVER)]
    server: String,
    /// The license's API key.
    #[arg(long, env = "HOOKWIRE_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Deliveries per request.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    batch: u16,
}

pub async fn run(args: Args) -> Result<(), BoxError> {
    hookwire_livechat::event::validate_license_id(&args.license)?;
    let client = http_client(Duration::from_secs(60));
    let url = format!(
        "{}/api/v1/deliveries/redeliver",
        args.server.trim_end_matches('/')
    );
    let mut after: Option<String> = None;
    let mut since = args.since.clone();
    let mut bar: Option<ProgressBar> = None;
    let mut total = 0u64;
    loop {
        let mut query: Vec<(&str, String)> = vec![
            ("license_id", args.license.clone()),
            ("since", since.clone()),
            ("limit", args.batch.to_string()),
        ];
        if let Some(id) = &args.webhook {
            query.push(("webhook_id", id.clone()));
        }
        if args.include_delivered {
            query.push(("include_delivered", "true".into()));
        }
        if let Some(after) = &after {
            query.push(("after", after.clone()));
        }
        let response = client
            .post(&url)
            .bearer_auth(&args.api_key)
            .query(&query)
            .send()
            .await
            .map_err(|e| format!("cannot reach hookwire at {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != 202 {
            if let Some(bar) = &bar {
                bar.abandon();
            }
            return Err(format!(
                "replay stopped after {total} redeliveries: {}",
                error_message(status, &text)
            )
            .into());
        }
        let answer: Value = serde_json::from_str(&text)?;
        let redelivered = answer["redelivered"].as_u64().unwrap_or(0);
        let remaining = answer["remaining"].as_u64().unwrap_or(0);
        total += redelivered;
        if let Some(resolved) = answer["since"].as_str() {
            since = resolved.to_string();
        }
        let bar = bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(redelivered + remaining);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} redelivered ({per_sec}, {eta} left)",
                )
                .expect("a valid progress template"),
            );
            bar
        });
        bar.inc(redelivered);
        match answer["last_id"].as_str() {
            Some(last) if remaining > 0 => after = Some(last.to_string()),
            _ => {
                bar.finish_and_clear();
                break;
            }
        }
    }
    println!(
        "redelivered {total} deliver{} of license {} since {}{}",
        if total == 1 { "y" } else { "ies" },
        args.license,
        args.since,
        args.webhook
            .as_deref()
            .map(|w| format!(" (webhook {w})"))
            .unwrap_or_default()
    );
    Ok(())
}
