//! The delivery log: per webhook and per license, one delivery's attempts and
//! exact body, redelivery of one or of every failed one since a time.

use super::*;

/// A webhook of the license, v2 or v3, as the log's filter and rows name it.
struct Target {
    id: String,
    /// Its event type, or its v3 action.
    event: &'static str,
    /// Its URL, masked.
    url: String,
}

/// The license's webhooks, v2 then v3, for the log.
async fn targets(state: &AppState, license: &str) -> UiResult<Vec<Target>> {
    let v2 = state.store().list_webhooks(license).await?;
    let v3 = state.store().list_v3_webhooks(license, None).await?;
    Ok(v2
        .iter()
        .map(|w| Target {
            id: w.id.clone(),
            event: w.event_type.as_str(),
            url: w.url.masked(),
        })
        .chain(v3.iter().map(|w| Target {
            id: w.id.clone(),
            event: w.action.as_str(),
            url: w.url.masked(),
        }))
        .collect())
}

fn delivery_row(d: &DeliveryView, webhooks: &HashMap<&str, &Target>) -> String {
    let last = d.attempts.last();
    let outcome = match last {
        Some(a) => match (&a.error, a.status) {
            (None, Some(s)) => format!("HTTP {s}"),
            (Some(e), Some(s)) if e.contains(&s.to_string()) => e.clone(),
            (Some(e), Some(s)) => format!("HTTP {s}: {e}"),
            (Some(e), None) => e.clone(),
            (None, None) => String::new(),
        },
        None if d.state == DeliveryState::Held => "held: its webhook is disabled".into(),
        None if d.state == DeliveryState::Discarded => "discarded, never sent".into(),
        None if d.state == DeliveryState::Filtered => format!(
            "filtered out, never sent ({})",
            d.filtered_by.as_deref().unwrap_or("a filter")
        ),
        None => match waits_for(d) {
            Some(id) => format!("waits for #{id}, the one before it in order"),
            None => "not attempted yet".into(),
        },
    };
    let target = webhooks
        .get(d.webhook_id.as_str())
        .map(|w| w.url.clone())
        .unwrap_or_else(|| "(deleted webhook)".into());
    format!(
        r#"<tr><td data-label="Delivery"><a href="/ui/deliveries/{id}">#{id}</a></td><td data-label="Created">{created}</td><td data-label="Event">{event}</td><td data-label="Target" class="url">{target}</td><td data-label="State">{badge}</td><td data-label="Attempts">{attempts}</td><td data-label="Last answer">{outcome}</td></tr>"#,
        id = d.id,
        created = time(d.created_at),
        event = d.event_type.as_str(),
        target = esc(&target),
        badge = state_badge(d.state),
        attempts = d.attempts.len(),
        outcome = esc(&outcome),
    )
}

pub async fn deliveries_page(
    State(state): State<AppState>,
    signed: SignedIn,
    params: Params,
) -> UiResult<Html<String>> {
    let license = signed.license()?;
    let p = &params.0;
    let webhooks = targets(&state, license).await?;
    let by_id: HashMap<&str, &Target> = webhooks.iter().map(|w| (w.id.as_str(), w)).collect();
    let mut problems = Vec::new();
    let webhook = param(p, "webhook");
    if let Some(w) = webhook {
        if !by_id.contains_key(w) {
            return Err(UiError::NotFound(format!("There is no webhook {w}.")));
        }
    }
    let wanted_state = param(p, "state").and_then(|s| {
        DeliveryState::parse(s).or_else(|| {
            problems.push("Unknown state ignored.");
            None
        })
    });
    let wanted_event = param(p, "event").and_then(|s| {
        s.parse::<EventType>().ok().or_else(|| {
            problems.push("Unknown event type ignored.");
            None
        })
    });
    let before = param(p, "before").and_then(|b| b.parse::<i64>().ok());
    let deliveries = state
        .store()
        .list_deliveries(DeliveryQuery {
            license_id: license,
            webhook_id: webhook,
            state: wanted_state,
            event_type: wanted_event,
            before,
            limit: PAGE_SIZE,
        })
        .await?;
    let mut out = flash(p);
    for problem in problems {
        out.push_str(&notice("warn", problem));
    }
    // Filters.
    let mut wh_options = String::from(r#"<option value="">All webhooks</option>"#);
    for w in &webhooks {
        let sel = if webhook == Some(w.id.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            wh_options,
            r#"<option value="{}"{sel}>{} → {}</option>"#,
            esc(&w.id),
            w.event,
            esc(&w.url)
        );
    }
    let mut st_options = String::from(r#"<option value="">Any state</option>"#);
    for s in DeliveryState::ALL {
        let sel = if wanted_state == Some(s) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            st_options,
            r#"<option value="{0}"{sel}>{0}</option>"#,
            s.as_str()
        );
    }
    let mut ev_options = String::from(r#"<option value="">Any event</option>"#);
    for e in EventType::ALL {
        let sel = if wanted_event == Some(e) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            ev_options,
            r#"<option value="{0}"{sel}>{0}</option>"#,
            e.as_str()
        );
    }
    let _ = write!(
        out,
        r#"<form method="get" action="/ui/deliveries" class="filters"><div class="field"><label for="f-webhook">Webhook</label><select id="f-webhook" name="webhook">{wh_options}</select></div><div class="field"><label for="f-state">State</label><select id="f-state" name="state">{st_options}</select></div><div class="field"><label for="f-event">Event type</label><select id="f-event" name="event">{ev_options}</select></div><button type="submit">Filter</button></form>"#
    );
    if deliveries.is_empty() {
        out.push_str(if before.is_some() {
            r#"<div class="empty"><p>No older deliveries (finished ones are pruned after the license's retention).</p></div>"#
        } else if webhooks.is_empty() {
            r#"<div class="empty"><p>No deliveries yet: <a href="/ui/webhooks/new">add a webhook</a>, then events matching it show up here.</p></div>"#
        } else {
            r#"<div class="empty"><p>No deliveries match. Events reported for this license show up here as they are delivered.</p></div>"#
        });
    } else {
        out.push_str(r#"<div class="table-wrap"><table id="deliveries"><caption class="sr-only">Deliveries, newest first</caption><thead><tr><th scope="col">Delivery</th><th scope="col">Created</th><th scope="col">Event</th><th scope="col">Target</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Last answer</th></tr></thead><tbody>"#);
        for d in &deliveries {
            out.push_str(&delivery_row(d, &by_id));
        }
        out.push_str("</tbody></table></div>");
    }
    // Older than retention is not "no deliveries": say it was pruned.
    let retention = state.service().license_retention(license).await?;
    let _ = write!(
        out,
        r#"<p class="hint" id="retention-note">Finished deliveries are kept for {}; older ones are pruned.</p>"#,
        esc(&retention.retention.to_string())
    );
    // Paging.
    let mut base = String::new();
    for (k, v) in [
        ("webhook", webhook),
        ("state", wanted_state.map(DeliveryState::as_str)),
        ("event", wanted_event.map(EventType::as_str)),
    ] {
        if let Some(v) = v {
            let _ = write!(base, "&{k}={}", qs(v));
        }
    }
    out.push_str(r#"<nav class="pager" aria-label="Pages">"#);
    if before.is_some() {
        let _ = write!(
            out,
            r#"<a href="/ui/deliveries?{}">Newest</a> "#,
            base.trim_start_matches('&')
        );
    }
    if deliveries.len() == PAGE_SIZE {
        if let Some(last) = deliveries.last() {
            let _ = write!(
                out,
                r#"<a href="/ui/deliveries?before={}{base}">Older</a>"#,
                last.id
            );
        }
    }
    out.push_str("</nav>");
    // Bulk redelivery.
    if !webhooks.is_empty() {
        let scope = match webhook {
            Some(w) => format!(r#"<input type="hidden" name="webhook" value="{}">"#, esc(w)),
            None => String::new(),
        };
        let what = if webhook.is_some() {
            "this webhook"
        } else {
            "every webhook"
        };
        let _ = write!(
            out,
            r#"<section><h2>Redeliver failed deliveries</h2><form method="post" action="/ui/deliveries/redeliver-failed" class="filters">{csrf}{scope}<div class="field"><label for="since">Failed deliveries of {what} created in the last</label><select id="since" name="since_hours"><option value="1">hour</option><option value="6">6 hours</option><option value="24" selected>24 hours</option><option value="168">7 days</option><option value="720">30 days</option></select></div><div class="field"><label for="since_time">or since (your time; overrides the period)</label><input type="datetime-local" id="since_time" name="since_time"><input type="hidden" name="tz_offset" class="tz-offset" value="0"></div><button type="submit">Redeliver failed</button></form></section>"#,
            csrf = csrf_field(&signed.session),
        );
    }
    render(&state, &signed, "/ui/deliveries", "Delivery log", &out).await
}

pub async fn redeliver_failed(
    State(state): State<AppState>,
    signed: SignedIn,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    signed.check_csrf(&form)?;
    let license = signed.license()?;
    let now = now_millis();
    let since = match text(&form, "since_time") {
        "" => {
            let hours: i64 = text(&form, "since_hours")
                .parse()
                .ok()
                .filter(|h| (1..=24 * 366).contains(h))
                .ok_or_else(|| UiError::BadRequest("choose how far back to redeliver".into()))?;
            now - hours * HOUR
        }
        local => local_time_to_millis(local, text(&form, "tz_offset")).ok_or_else(|| {
            UiError::BadRequest(format!(
                "\"{local}\" is not a date and time like 2026-11-26T09:30"
            ))
        })?,
    };
    let webhook = Some(text(&form, "webhook")).filter(|w| !w.is_empty());
    let scope = match webhook {
        Some(w) => RedeliverySince::Webhook(w),
        None => RedeliverySince::License,
    };
    let count = state
        .service()
        .redeliver_failed_since(license, scope, since)
        .await?;
    let scope = webhook
        .map(|w| format!("&webhook={}", qs(w)))
        .unwrap_or_default();
    Ok(Redirect::to(&format!(
        "/ui/deliveries?n=redelivered&count={count}{scope}"
    ))
    .into_response())
}

/// A `datetime-local` value ("2026-11-26T09:30", seconds optional) in the
/// viewer's zone, whose offset the page script sends as JavaScript's
/// `getTimezoneOffset()` (minutes behind UTC; 0, i.e. UTC, without script).
fn local_time_to_millis(local: &str, tz_offset: &str) -> Option<i64> {
    use time::macros::format_description;
    let with_seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let without = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let naive = time::PrimitiveDateTime::parse(local, with_seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(local, without))
        .ok()?;
    let offset_minutes: i64 = match tz_offset {
        "" => 0,
        o => o.parse().ok().filter(|m: &i64| m.abs() <= 16 * 60)?,
    };
    let utc = naive.assume_utc().unix_timestamp() * 1000;
    Some(utc + offset_minutes * 60_000)
}

async fn find_delivery(state: &AppState, license: &str, id: &str) -> UiResult<DeliveryView> {
    let missing = || UiError::NotFound(format!("There is no delivery {id}."));
    let n: i64 = id.parse().map_err(|_| missing())?;
    let found = state
        .store()
        .list_deliveries(DeliveryQuery {
            license_id: license,
            webhook_id: None,
            state: None,
            event_type: None,
            before: n.checked_add(1),
            limit: 1,
        })
        .await?;
    match found.into_iter().find(|d| d.id == n) {
        Some(d) => Ok(d),
        // Pruned by retention, or never there: the service tells which.
        None => Err(state.service().delivery_not_found(license, n).await.into()),
    }
}

/// The delivery an ordered webhook's pending delivery waits for.
fn waits_for(d: &DeliveryView) -> Option<i64> {
    match &d.line {
        Some(LinePlace::Keyed { waits_for, .. }) => *waits_for,
        _ => None,
    }
}

/// An ordered webhook's delivery: the key it is ordered by, what it waits
/// for, and what its line went past (`rules::ordering`).
fn line_facts(d: &DeliveryView) -> String {
    let link = |id: &i64| format!(r#"<a href="/ui/deliveries/{id}">#{id}</a>"#);
    let text = match &d.line {
        None => return String::new(),
        Some(LinePlace::Unkeyed) => {
            "delivered unordered: its event has no id to order it by".to_string()
        }
        Some(LinePlace::Keyed {
            key,
            waits_for,
            after_failed,
        }) => {
            let mut parts = vec![format!("in order with <code>{}</code>", esc(key))];
            if let Some(id) = waits_for {
                parts.push(format!("waits for {}, the one before it", link(id)));
            }
            if d.state == DeliveryState::Failed {
                parts.push("failed for good; the later ones went on past it".into());
            }
            if !after_failed.is_empty() {
                let ids: Vec<String> = after_failed.iter().map(link).collect();
                parts.push(format!(
                    "went on past {}, which failed for good",
                    ids.join(", ")
                ));
            }
            parts.join("; ")
        }
    };
    format!(r#"<dt>Order</dt><dd id="ordering">{text}</dd>"#)
}

pub async fn delivery_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    params: Params,
) -> UiResult<Html<String>> {
    let license = signed.license()?;
    let d = find_delivery(&state, license, &id).await?;
    // A v2 webhook, else a v3 one: (id, masked URL).
    let webhook = match state.store().get_webhook(license, &d.webhook_id).await? {
        Some(w) => Some((w.id, w.url.masked())),
        None => v3_target(&state, license, &d.webhook_id).await?,
    };
    let mut out = flash(&params.0);
    let next = d
        .next_attempt_at
        .map(|t| format!("<dt>Next attempt</dt><dd>{}</dd>", time(t)))
        .unwrap_or_default();
    let _ = write!(
        out,
        r#"<dl class="facts"><dt>State</dt><dd>{badge}</dd><dt>Event</dt><dd>{event} <code>{event_id}</code></dd><dt>Webhook</dt><dd>{target}</dd><dt>Created</dt><dd>{created}</dd>{next}{line}</dl>"#,
        line = line_facts(&d),
        badge = state_badge(d.state),
        event = d.event_type.as_str(),
        event_id = esc(&d.event_id),
        target = match &webhook {
            Some((id, url)) => format!(
                r#"<a href="/ui/deliveries?webhook={}">{}</a>"#,
                esc(id),
                esc(url)
            ),
            None => "(deleted)".into(),
        },
        created = time(d.created_at),
    );
    match &webhook {
        // Redelivery is refused for a held delivery: enabling its webhook
        // is what sends it.
        Some((webhook_id, _)) if d.state == DeliveryState::Held => {
            let _ = write!(
                out,
                r#"<p class="hint" id="held-note">Held: its webhook is disabled. <a href="/ui/webhooks/{}/enable">Enable the webhook</a> to deliver it with everything else it holds, or to discard them.</p>"#,
                esc(webhook_id)
            );
        }
        Some(_) => {
            let _ = write!(
                out,
                r#"<form method="post" action="/ui/deliveries/{}/redeliver">{}<button type="submit">Redeliver</button></form>"#,
                d.id,
                csrf_field(&signed.session)
            );
        }
        None => {}
    }
    out.push_str("<h2>Attempts</h2>");
    if d.attempts.is_empty() {
        out.push_str(r#"<p class="empty">No attempts yet.</p>"#);
    } else {
        out.push_str(r#"<div class="table-wrap"><table id="attempts"><thead><tr><th scope="col">Time</th><th scope="col">Status or error</th><th scope="col">Latency</th><th scope="col">Response excerpt</th></tr></thead><tbody>"#);
        for a in d.attempts.iter().rev() {
            let status = match (a.status, &a.error) {
                (Some(s), None) => format!(r#"<span class="badge delivered">HTTP {s}</span>"#),
                (Some(s), Some(e)) if *e == format!("HTTP {s}") => {
                    format!(r#"<span class="badge failed">HTTP {s}</span>"#)
                }
                (Some(s), Some(e)) => {
                    format!(r#"<span class="badge failed">HTTP {s}</span> {}"#, esc(e))
                }
                (None, Some(e)) => format!(r#"<span class="badge failed">error</span> {}"#, esc(e)),
                (None, None) => String::new(),
            };
            let _ = write!(
                out,
                r#"<tr><td data-label="Time">{}</td><td data-label="Status or error">{status}</td><td data-label="Latency">{} ms</td><td data-label="Response"><pre class="excerpt">{}</pre></td></tr>"#,
                time(a.at),
                a.latency_ms,
                esc(a.response_excerpt.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("<h2>Body sent</h2>");
    match state.store().delivery_body(license, d.id).await? {
        Some((event, data_types)) => {
            let body = state
                .engine()
                .render_body(&event, data_types, &d.webhook_id);
            let _ = write!(
                out,
                r#"<p class="hint">Exactly as POSTed (Content-Type: application/json), on every attempt.</p><pre class="body" id="body-sent" tabindex="0">{}</pre>"#,
                esc(&String::from_utf8_lossy(&body))
            );
            if let Ok(pretty) = serde_json::from_slice::<Value>(&body)
                .and_then(|v| serde_json::to_string_pretty(&v))
            {
                let _ = write!(
                    out,
                    r#"<details><summary>Formatted</summary><pre class="body" tabindex="0">{}</pre></details>"#,
                    esc(&pretty)
                );
            }
        }
        None => out.push_str("<p>The event is no longer stored.</p>"),
    }
    render(
        &state,
        &signed,
        "/ui/deliveries",
        &format!("Delivery #{}", d.id),
        &out,
    )
    .await
}

pub async fn redeliver(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult<Response> {
    signed.check_csrf(&form(&body)?)?;
    let license = signed.license()?;
    let d = find_delivery(&state, license, &id).await?;
    state.service().redeliver(license, d.id).await?;
    Ok(Redirect::to(&format!("/ui/deliveries/{}?n=redelivered&count=1", d.id)).into_response())
}
