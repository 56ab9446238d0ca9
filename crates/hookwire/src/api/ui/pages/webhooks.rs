//! Settings > Integrations > Webhooks: the list, the create/edit form,
//! delete, and the send-test button (switching on and off is `enable`).

use super::enable::{held_link, toggle_form};
use super::*;

async fn webhooks_body(
    state: &AppState,
    signed: &SignedIn,
    top: &str,
    test: Option<(&str, String)>,
) -> UiResult<String> {
    let license = signed.license()?;
    let webhooks = state.store().list_webhooks(license).await?;
    let now = now_millis();
    let mut out = format!(
        r#"{top}<p class="lead">LiveChat v2 webhooks of license {}. Each event is POSTed as JSON to the URL until it answers 200.</p><p><a class="button" href="/ui/webhooks/new">Add a webhook</a></p>"#,
        esc(license)
    );
    if webhooks.is_empty() {
        out.push_str(r#"<div class="empty"><p>No webhooks yet: <a href="/ui/webhooks/new">add one</a> to start receiving events.</p></div>"#);
        return Ok(out);
    }
    let samples = state
        .store()
        .attempt_samples(license, now - DAY, MAX_SAMPLES)
        .await?;
    let mut rates: HashMap<&str, (u64, u64)> = HashMap::new();
    for s in &samples.samples {
        if let Some(id) = samples.webhook_ids.get(s.webhook) {
            let e = rates.entry(id.as_str()).or_default();
            e.1 += 1;
            if s.ok {
                e.0 += 1;
            }
        }
    }
    out.push_str(r#"<div class="table-wrap"><table><caption class="sr-only">Webhooks</caption><thead><tr><th scope="col">Event</th><th scope="col">Data types</th><th scope="col">URL</th><th scope="col">Status</th><th scope="col">Last delivery</th><th scope="col">Success (24 h)</th><th scope="col">Actions</th></tr></thead><tbody>"#);
    let csrf = csrf_field(&signed.session);
    for w in &webhooks {
        let last = last_delivery_cell(state, license, &w.id).await?;
        let rate = match rates.get(w.id.as_str()) {
            Some((ok, total)) if *total > 0 => format!(
                "{:.0}% <span class=\"muted\">({ok}/{total} attempts)</span>",
                *ok as f64 * 100.0 / *total as f64
            ),
            _ => r#"<span class="muted">no attempts</span>"#.into(),
        };
        let id = esc(&w.id);
        let ordered = if w.ordered {
            r#" <span class="badge" title="A chat's events go one at a time, in order">ordered</span>"#
        } else {
            ""
        };
        let status = if w.enabled {
            format!(r#"<span class="badge delivered">enabled</span>{ordered}"#)
        } else {
            format!(
                r#"<span class="badge failed">disabled</span>{ordered}{}{}"#,
                w.disabled_reason
                    .as_deref()
                    .map(|r| format!(r#" <span class="muted">{}</span>"#, esc(r)))
                    .unwrap_or_default(),
                held_link(w),
            )
        };
        // Enabling a webhook that holds deliveries asks first what becomes
        // of them (`enable_choice`).
        let toggle = match (w.enabled, w.held_deliveries) {
            (true, _) => toggle_form(&id, &csrf, "false", "Disable"),
            (false, 0) => toggle_form(&id, &csrf, "true", "Enable"),
            (false, _) => {
                format!(r#"<a href="/ui/webhooks/{id}/enable" class="enable">Enable…</a>"#)
            }
        };
        let _ = write!(
            out,
            r#"<tr id="webhook-{id}"><td data-label="Event">{event}</td><td data-label="Data types">{types}</td><td data-label="URL" class="url">{url}</td><td data-label="Status">{status}</td><td data-label="Last delivery">{last}</td><td data-label="Success (24 h)">{rate}</td><td data-label="Actions" class="actions">
<a href="/ui/webhooks/{id}">Edit</a> <a href="/ui/deliveries?webhook={id}">Deliveries</a>
{toggle}
<form method="post" action="/ui/webhooks/{id}/test" class="inline">{csrf}<button type="submit" aria-describedby="test-note">Send test</button></form>
<a href="/ui/webhooks/{id}/delete" class="danger">Delete</a></td></tr>"#,
            event = w.event_type.as_str(),
            types = esc(&w.data_types.names().join(", ")),
            url = esc(&w.url.masked()),
        );
        if let Some((tid, result)) = &test {
            if *tid == w.id {
                let _ = write!(
                    out,
                    r#"<tr class="test-result"><td colspan="7">{result}</td></tr>"#
                );
            }
        }
    }
    out.push_str(r#"</tbody></table></div><p id="test-note" class="hint">Send test posts a sample event of the webhook's type straight to its URL; it is not written to the delivery log.</p>"#);
    Ok(out)
}

pub async fn webhooks_page(
    State(state): State<AppState>,
    signed: SignedIn,
    params: Params,
) -> UiResult<Html<String>> {
    let body = webhooks_body(&state, &signed, &flash(&params.0), None).await?;
    render(&state, &signed, "/ui/webhooks", "Webhooks", &body).await
}

/// What the webhook form shows.
#[derive(Default)]
struct FormValues {
    event: String,
    data_types: Vec<String>,
    url: String,
    user: String,
    /// Editing a webhook whose URL has a password.
    has_password: bool,
    /// Ordered delivery per chat (visitor, ticket).
    ordered: bool,
}

fn webhook_form(
    signed: &SignedIn,
    editing: Option<&Webhook>,
    v: &FormValues,
    errors: &HashMap<String, String>,
) -> String {
    let err = |field: &str| {
        errors
            .get(field)
            .map(|m| {
                format!(
                    r#"<p class="error" id="{field}-error" role="alert">{}</p>"#,
                    esc(m)
                )
            })
            .unwrap_or_default()
    };
    let described = |field: &str| {
        if errors.contains_key(field) {
            format!(r#" aria-invalid="true" aria-describedby="{field}-error""#)
        } else {
            String::new()
        }
    };
    let action = match editing {
        Some(w) => format!("/ui/webhooks/{}", esc(&w.id)),
        None => "/ui/webhooks".into(),
    };
    let event_field = match editing {
        Some(w) => format!(
            r#"<div class="field"><span class="label">Event</span> <strong id="event_type" data-event="{0}">{0}</strong><p class="hint">The event cannot change; create another webhook for another event.</p></div>"#,
            w.event_type.as_str()
        ),
        None => {
            let mut options = String::from(r#"<option value="">Choose an event</option>"#);
            for e in EventType::ALL {
                let sel = if v.event == e.as_str() {
                    " selected"
                } else {
                    ""
                };
                let _ = write!(
                    options,
                    r#"<option value="{0}"{sel}>{0}</option>"#,
                    e.as_str()
                );
            }
            format!(
                r#"<div class="field"><label for="event_type">Event</label><select id="event_type" name="event_type" required{}>{options}</select>{}</div>"#,
                described("event_type"),
                err("event_type")
            )
        }
    };
    let mut boxes = String::new();
    for t in DataType::ALL {
        let events: Vec<&str> = EventType::ALL
            .iter()
            .filter(|e| e.supported().contains(t))
            .map(|e| e.as_str())
            .collect();
        let checked = if v.data_types.iter().any(|d| d == t.as_str()) {
            " checked"
        } else {
            ""
        };
        let _ = write!(
            boxes,
            r#"<div class="check" data-events="{events}"><input type="checkbox" id="dt-{t}" name="data_types[]" value="{t}"{checked}><label for="dt-{t}">{t}</label> <span class="hint">({for_events})</span></div>"#,
            events = events.join(" "),
            for_events = events.join(", "),
        );
    }
    let http_hidden = if v
        .url
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("http://")
    {
        ""
    } else {
        " hidden"
    };
    let password_hint = if v.has_password {
        "A password is set; leave empty to keep it."
    } else {
        "Optional. Sent as HTTP basic auth, and only ever shown masked."
    };
    format!(
        r#"<form method="post" action="{action}" class="stack webhook-form" novalidate>{csrf}
{event_field}
<fieldset class="field" id="data_types"{dt_described}><legend>Data types</legend><p class="hint">Only the types the chosen event supports are accepted.</p>{boxes}{dt_err}</fieldset>
<div class="field"><label for="url">Target URL</label><input id="url" name="url" type="url" inputmode="url" required maxlength="500" value="{url}" placeholder="https://example.com/hook"{url_described}>{url_err}<p class="warn" id="http-warning"{http_hidden}>This URL uses http://: payloads and tokens will travel unencrypted. https:// is recommended.</p></div>
<div class="field"><label for="user">Basic auth user</label><input id="user" name="user" autocomplete="off" value="{user}"><p class="hint">Optional.</p></div>
<div class="field"><label for="password">Basic auth password</label><input id="password" name="password" type="password" autocomplete="new-password"><p class="hint">{password_hint}</p></div>
<div class="field check"><input type="checkbox" id="ordered" name="ordered" value="true"{ordered} aria-describedby="ordered-hint"><label for="ordered">Ordered delivery</label><p class="hint" id="ordered-hint">A chat's events (a visitor's, a ticket's) are delivered one at a time, in the order they came, even through retries; other chats never wait for them.</p></div>
<div class="buttons"><button type="submit">Save webhook</button> <a href="/ui/webhooks">Cancel</a></div></form>"#,
        csrf = csrf_field(&signed.session),
        dt_described = described("data_types"),
        dt_err = err("data_types"),
        url = esc(&v.url),
        url_described = described("url"),
        url_err = err("url"),
        user = esc(&v.user),
        ordered = if v.ordered { " checked" } else { "" },
    )
}

pub async fn new_webhook_form(
    State(state): State<AppState>,
    signed: SignedIn,
) -> UiResult<Html<String>> {
    signed.license()?;
    let body = webhook_form(&signed, None, &FormValues::default(), &HashMap::new());
    render(&state, &signed, "/ui/webhooks", "Add a webhook", &body).await
}

/// The URL with the form's basic-auth fields composed into it. A URL that
/// does not parse is returned as typed, for `TargetUrl::parse` to explain.
fn compose_url(url: &str, user: &str, password: &str) -> String {
    let url = url.trim();
    if user.is_empty() && password.is_empty() {
        return url.to_string();
    }
    match url::Url::parse(url) {
        Ok(mut u) if u.has_host() => {
            let _ = u.set_username(user);
            let _ = u.set_password((!password.is_empty()).then_some(password));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn record(errors: &mut HashMap<String, String>, e: ValidationError) {
    let field = match e.field.as_str() {
        f if f.starts_with("data_types") => "data_types",
        f if f.starts_with("url") => "url",
        f if f.starts_with("event_type") => "event_type",
        _ => "url",
    };
    errors.entry(field.to_string()).or_insert(e.message);
}

fn http_target(url: &TargetUrl) -> bool {
    !url.is_https()
}

pub async fn create_webhook(
    State(state): State<AppState>,
    signed: SignedIn,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    signed.check_csrf(&form)?;
    let license = signed.license()?.to_string();
    let values = FormValues {
        event: text(&form, "event_type").to_string(),
        data_types: list(&form, "data_types"),
        url: text(&form, "url").to_string(),
        user: text(&form, "user").to_string(),
        has_password: false,
        ordered: checked(&form, "ordered"),
    };
    let full_url = compose_url(&values.url, &values.user, text(&form, "password"));
    // The API's checks, each run so every field shows its own error.
    let mut errors = HashMap::new();
    match values.event.parse::<EventType>() {
        Ok(event) => {
            if let Err(e) = DataTypes::parse_for(event, &values.data_types) {
                record(&mut errors, e);
            }
        }
        Err(e) => record(&mut errors, ValidationError::new("event_type", e.message)),
    }
    let target = TargetUrl::parse(&full_url);
    if let Err(e) = &target {
        record(&mut errors, e.clone());
    }
    if errors.is_empty() {
        let input = json!({
            "event_type": values.event,
            "data_types": values.data_types,
            "url": full_url,
            "ordered": values.ordered,
        });
        match api_create_webhook(&state, license, input, Surface::Hookwire).await {
            Ok(_) => {
                let http = target.as_ref().is_ok_and(http_target);
                let n = if http { "created_http" } else { "created" };
                return Ok(Redirect::to(&format!("/ui/webhooks?n={n}")).into_response());
            }
            Err(crate::api::error::AppError::Invalid(e)) => record(&mut errors, e),
            Err(e) => {
                errors.insert(
                    "url".into(),
                    e.body()["message"].as_str().unwrap_or("failed").to_string(),
                );
            }
        }
    }
    refused(&state, &signed, None, &values, &errors).await
}

/// The form again, 400, with each error beside its field.
async fn refused(
    state: &AppState,
    signed: &SignedIn,
    webhook: Option<&Webhook>,
    values: &FormValues,
    errors: &HashMap<String, String>,
) -> UiResult<Response> {
    let body = format!(
        "{}{}",
        notice(
            "error",
            "The webhook was not saved: see the highlighted fields."
        ),
        webhook_form(signed, webhook, values, errors)
    );
    let title = if webhook.is_some() {
        "Edit webhook"
    } else {
        "Add a webhook"
    };
    Ok((
        StatusCode::BAD_REQUEST,
        render(state, signed, "/ui/webhooks", title, &body).await?,
    )
        .into_response())
}

pub async fn edit_webhook_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> UiResult<Html<String>> {
    let w = owned(&state, signed.license()?, &id).await?;
    let creds = w.url.credentials();
    let values = FormValues {
        event: w.event_type.as_str().into(),
        data_types: w.data_types.names().iter().map(|s| s.to_string()).collect(),
        url: w.url.without_credentials().to_string(),
        user: creds.as_ref().map(|c| c.user.clone()).unwrap_or_default(),
        has_password: creds.is_some_and(|c| !c.password.is_empty()),
        ordered: w.ordered,
    };
    let body = webhook_form(&signed, Some(&w), &values, &HashMap::new());
    render(&state, &signed, "/ui/webhooks", "Edit webhook", &body).await
}

pub async fn update_webhook(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    signed.check_csrf(&form)?;
    let license = signed.license()?.to_string();
    let current = owned(&state, &license, &id).await?;
    let current_creds = current.url.credentials();
    let values = FormValues {
        event: current.event_type.as_str().into(),
        data_types: list(&form, "data_types"),
        url: text(&form, "url").to_string(),
        user: text(&form, "user").to_string(),
        has_password: current_creds
            .as_ref()
            .is_some_and(|c| !c.password.is_empty()),
        ordered: checked(&form, "ordered"),
    };
    let typed_password = text(&form, "password");
    let password = match &current_creds {
        Some(c) if typed_password.is_empty() && !values.user.is_empty() => c.password.as_str(),
        _ => typed_password,
    };
    let full_url = compose_url(&values.url, &values.user, password);
    let mut errors = HashMap::new();
    let data_types = DataTypes::parse_for(current.event_type, &values.data_types)
        .map_err(|e| record(&mut errors, e))
        .ok();
    let url = TargetUrl::parse(&full_url)
        .map_err(|e| record(&mut errors, e))
        .ok();
    if let (Some(_), Some(url)) = (data_types, url) {
        let http = http_target(&url);
        state
            .service()
            .update_webhook(
                &license,
                &id,
                WebhookChanges {
                    url: Some(url),
                    data_types: Some(values.data_types.clone()),
                    ordered: Some(values.ordered),
                    ..WebhookChanges::default()
                },
            )
            .await?;
        let n = if http { "created_http" } else { "updated" };
        return Ok(Redirect::to(&format!("/ui/webhooks?n={n}")).into_response());
    }
    refused(&state, &signed, Some(&current), &values, &errors).await
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> UiResult<Html<String>> {
    let w = owned(&state, signed.license()?, &id).await?;
    let body = format!(
        r#"<p>Delete the <strong>{event}</strong> webhook to <code>{url}</code>? Its pending deliveries end as failed, and those it holds as discarded. This cannot be undone.</p>
<form method="post" action="/ui/webhooks/{id}/delete" class="buttons">{csrf}<button type="submit" class="danger">Delete webhook</button> <a href="/ui/webhooks">Cancel</a></form>"#,
        event = w.event_type.as_str(),
        url = esc(&w.url.masked()),
        id = esc(&w.id),
        csrf = csrf_field(&signed.session),
    );
    render(&state, &signed, "/ui/webhooks", "Delete webhook", &body).await
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult<Response> {
    signed.check_csrf(&form(&body)?)?;
    state
        .service()
        .delete_webhook(signed.license()?, &id)
        .await?;
    Ok(Redirect::to("/ui/webhooks?n=deleted").into_response())
}

/// The receiver's answer to a test send, as HTML.
pub(super) fn test_result(report: &crate::engine::attempt::AttemptReport) -> String {
    let latency = report.latency.as_millis();
    let (kind, headline) = match &report.outcome {
        AttemptOutcome::Delivered { status } => (
            "ok",
            format!("Delivered: the receiver answered HTTP {status} in {latency} ms."),
        ),
        AttemptOutcome::Failed(f) => (
            "error",
            format!(
                "Not acknowledged{}: {} ({latency} ms).",
                f.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                f
            ),
        ),
    };
    let excerpt = report
        .response_excerpt
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(|e| format!(r#"<p>Response:</p><pre class="excerpt">{}</pre>"#, esc(e)))
        .unwrap_or_else(|| "<p class=\"muted\">The response had no body.</p>".into());
    notice(kind, &format!("<p>{}</p>{excerpt}", esc(&headline)))
}

pub async fn send_test(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult<Response> {
    signed.check_csrf(&form(&body)?)?;
    let license = signed.license()?.to_string();
    let w = owned(&state, &license, &id).await?;
    let event = sample_event(w.event_type, &license)
        .map_err(|e| UiError::BadRequest(format!("the sample event is invalid: {e}")))?;
    let result = match state.engine().attempt_now(&w, event).await? {
        Some(report) => test_result(&report),
        None => notice("error", "Test sends are not available on this server."),
    };
    let body = webhooks_body(&state, &signed, "", Some((&id, result))).await?;
    Ok(render(&state, &signed, "/ui/webhooks", "Webhooks", &body)
        .await?
        .into_response())
}

/// A webhook's newest delivery as a table cell (state, link, time), or
/// "never"; v2 and v3 webhooks' lists both show it.
pub(super) async fn last_delivery_cell(
    state: &AppState,
    license: &str,
    webhook_id: &str,
) -> UiResult<String> {
    let last = state
        .store()
        .list_deliveries(DeliveryQuery {
            license_id: license,
            webhook_id: Some(webhook_id),
            state: None,
            event_type: None,
            before: None,
            limit: 1,
        })
        .await?;
    Ok(match last.first() {
        Some(d) => format!(
            r#"{} <a href="/ui/deliveries/{}">{}</a>"#,
            state_badge(d.state),
            d.id,
            time(d.created_at)
        ),
        None => "never".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composes_credentials_into_the_url() {
        assert_eq!(
            compose_url("https://example.com/hook", "u s", "p@ss"),
            "https://u%20s:p%40ss@example.com/hook"
        );
        assert_eq!(compose_url(" https://x.io/ ", "", ""), "https://x.io/");
        assert_eq!(compose_url("not a url", "u", "p"), "not a url");
    }
}
