//! The overview: deliveries per minute by outcome, latency percentiles, and
//! the queue, drawn as server-side SVG; the license's retention and oldest
//! kept delivery; and its newest operator alerts.

use super::*;
use crate::store::{AlertKind, AlertState, AlertView};

/// Operator alerts the overview lists.
const RECENT_ALERTS: usize = 10;

pub async fn overview(
    State(state): State<AppState>,
    signed: SignedIn,
    params: Params,
) -> UiResult<Html<String>> {
    let license = signed.license()?;
    let now = now_millis();
    let samples = state
        .store()
        .attempt_samples(license, now - DAY, MAX_SAMPLES)
        .await?;
    let queue = state.store().queue_stats(license).await?;
    let alerts = state.store().recent_alerts(license, RECENT_ALERTS).await?;
    let mut out = flash(&params.0);
    let oldest = queue
        .oldest_pending_at
        .map(|t| format!("{} (since {})", html::duration(now - t), time(t)))
        .unwrap_or_else(|| "none".into());
    let _ = write!(
        out,
        r#"<section aria-labelledby="queue-h"><h2 id="queue-h">Queue</h2><dl class="facts"><dt>Pending deliveries</dt><dd id="queue-depth">{}</dd><dt>Oldest pending</dt><dd>{oldest}</dd><dt>Held for disabled webhooks</dt><dd id="queue-held">{held}</dd></dl></section>"#,
        queue.pending,
        held = match queue.held {
            0 => "0".to_string(),
            n => format!(r#"<a href="/ui/deliveries?state=held">{n}</a>"#),
        },
    );
    let retention = state.service().license_retention(license).await?;
    let kept_since = retention
        .oldest_kept_delivery
        .map(time)
        .unwrap_or_else(|| "none kept".into());
    let _ = write!(
        out,
        r#"<section aria-labelledby="retention-h"><h2 id="retention-h">Retention</h2><dl class="facts"><dt>Finished deliveries are kept for</dt><dd id="retention">{}{}</dd><dt>Oldest kept delivery</dt><dd id="oldest-kept">{kept_since}</dd></dl></section>"#,
        html::esc(&retention.retention.to_string()),
        if retention.own.is_none() {
            " (the server's default)"
        } else {
            ""
        },
    );
    for (label, span, bucket) in [("Last hour", HOUR, MINUTE), ("Last day", DAY, 30 * MINUTE)] {
        let start = now - span;
        let n = (span / bucket) as usize;
        let mut buckets = vec![(0u64, 0u64); n];
        let mut latencies = Vec::new();
        for s in samples.samples.iter().filter(|s| s.at >= start) {
            let i = (((s.at - start) / bucket) as usize).min(n - 1);
            if s.ok {
                buckets[i].0 += 1;
            } else {
                buckets[i].1 += 1;
            }
            latencies.push(s.latency_ms);
        }
        latencies.sort_unstable();
        let ms = |q| {
            html::quantile(&latencies, q)
                .map(|v| format!("{v} ms"))
                .unwrap_or_else(|| "–".into())
        };
        let total: u64 = buckets.iter().map(|(o, f)| o + f).sum();
        let per = if bucket == MINUTE {
            "per minute"
        } else {
            "per 30 minutes"
        };
        let chart = html::bar_chart(&format!("{label}: attempts {per}"), &buckets, &|i| {
            let mins = (n - i) as i64 * bucket / MINUTE;
            if mins >= 60 {
                format!("{} h ago", mins / 60)
            } else {
                format!("{mins} min ago")
            }
        });
        let _ = write!(
            out,
            r#"<section class="card"><h2>{label}</h2><p>{total} attempts {per_label}: <span class="legend ok">delivered</span> <span class="legend failed">failed</span>. Latency p50 <strong>{p50}</strong>, p95 <strong>{p95}</strong>.</p>{chart}</section>"#,
            per_label = if bucket == MINUTE {
                "by minute"
            } else {
                "by half hour"
            },
            p50 = ms(0.5),
            p95 = ms(0.95),
        );
    }
    out.push_str(&alerts_section(&alerts));
    if samples.truncated {
        out.push_str(&notice(
            "warn",
            &format!("Only the newest {MAX_SAMPLES} attempts are counted."),
        ));
    }
    render(&state, &signed, "/ui/overview", "Overview", &out).await
}

/// The newest operator alerts, newest first, with whether the operator's
/// endpoint has acknowledged them.
fn alerts_section(alerts: &[AlertView]) -> String {
    let mut out = String::from(
        r#"<section aria-labelledby="alerts-h"><h2 id="alerts-h">Operator alerts</h2>"#,
    );
    if alerts.is_empty() {
        out.push_str("<p>None: no webhook was disabled or began failing, and no delivery failed for good.</p></section>");
        return out;
    }
    out.push_str(r#"<div class="table-wrap"><table id="alerts"><caption class="sr-only">Operator alerts, newest first</caption><thead><tr><th scope="col">Time</th><th scope="col">Alert</th><th scope="col">What</th><th scope="col">Sent</th></tr></thead><tbody>"#);
    for a in alerts {
        let sent = match a.state {
            AlertState::Delivered => {
                r#"<span class="badge delivered">acknowledged</span>"#.to_string()
            }
            AlertState::Pending => format!(
                r#"<span class="badge pending">pending</span> {}"#,
                esc(a.last_error.as_deref().unwrap_or(""))
            ),
            AlertState::Failed => format!(
                r#"<span class="badge failed">gave up</span> {}"#,
                esc(a.last_error.as_deref().unwrap_or(""))
            ),
        };
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{sent}</td></tr>"#,
            time(a.created_at),
            a.kind.as_str(),
            esc(&alert_summary(a)),
        );
    }
    out.push_str("</tbody></table></div></section>");
    out
}

/// One line on what an alert says, from its data.
fn alert_summary(a: &AlertView) -> String {
    let data: Value = serde_json::from_str(&a.data).unwrap_or(Value::Null);
    let field = |key: &str| match &data[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match a.kind {
        AlertKind::WebhookDisabled => format!(
            "Webhook {} disabled: {}",
            field("webhook_id"),
            field("reason")
        ),
        AlertKind::WebhookFailing => format!(
            "Webhook {} failing since {}: {}",
            field("webhook_id"),
            field("failing_since"),
            field("error")
        ),
        AlertKind::DeliveryFailed => {
            format!("{} deliveries failed for good", field("count"))
        }
        AlertKind::BacklogHigh => format!(
            "{} deliveries pending and {} held (threshold {})",
            field("pending"),
            // Alerts raised before held deliveries existed have no count.
            match field("held") {
                h if h.is_empty() => "0".to_string(),
                h => h,
            },
            field("threshold")
        ),
    }
}
