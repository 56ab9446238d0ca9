//! The web app's pages and form handlers.

use super::html::{self, csrf_field, esc, notice, qs, time, Chrome};
use super::sample::sample_event;
use super::session::{cookie, over_https, set_cookie, LOGIN_COOKIE, SESSION_COOKIE, SESSION_TTL};
use super::{SignedIn, UiError, UiResult};
use crate::api::licenses::create_license as create_license_with_key;
use crate::api::views;
use crate::api::webhooks::create_webhook as api_create_webhook;
use crate::api::AppState;
use crate::engine::attempt::AttemptOutcome;
use crate::secret::{constant_time_eq, hash_secret, random_hex};
use crate::store::{
    now_millis, DeliveryQuery, DeliveryState, DeliveryView, Millis, VisitorView, Webhook,
    WebhookPatch,
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
        Some("enabled") => notice("ok", "Webhook enabled."),
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

// Sign in and out.

fn login_page(token: &str, license: &str, error: Option<&str>) -> String {
    let error = error.map(|e| notice("error", &esc(e))).unwrap_or_default();
    html::document(
        "Sign in",
        &format!(
            r#"<main id="main" class="narrow"><h1>Sign in to hookwire</h1>{error}<form method="post" action="/ui/login" class="stack">
<input type="hidden" name="csrf" value="{token}">
<div class="field"><label for="license_id">License ID</label><input id="license_id" name="license_id" value="{license}" autocomplete="username" inputmode="numeric"><p class="hint">Leave empty when signing in with the platform key as operator.</p></div>
<div class="field"><label for="api_key">API key</label><input id="api_key" name="api_key" type="password" required autocomplete="current-password"></div>
<button type="submit">Sign in</button></form></main>"#,
            token = esc(token),
            license = esc(license),
        ),
    )
}

pub async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if cookie(&headers, SESSION_COOKIE).is_some_and(|id| state.sessions().get(id).is_some()) {
        return Redirect::to("/ui/overview").into_response();
    }
    let token = random_hex(16);
    (
        AppendHeaders([(
            SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, 3600, over_https(&headers)),
        )]),
        Html(login_page(&token, "", None)),
    )
        .into_response()
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    let presented = text(&form, "csrf");
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !constant_time_eq(presented, expected) {
        return Err(UiError::Csrf);
    }
    let license = text(&form, "license_id").trim();
    let key = text(&form, "api_key").trim();
    let secure = over_https(&headers);
    let fail = |msg: &str| {
        (
            StatusCode::UNAUTHORIZED,
            Html(login_page(expected, license, Some(msg))),
        )
            .into_response()
    };
    if key.is_empty() {
        return Ok(fail("Enter an API key."));
    }
    let (operator, chosen) = if constant_time_eq(key, state.platform_key().expose()) {
        let known = !license.is_empty()
            && state
                .store()
                .list_licenses()
                .await?
                .iter()
                .any(|l| l == license);
        (true, known.then(|| license.to_string()))
    } else {
        match state.store().license_by_key_hash(&hash_secret(key)).await? {
            Some(l) if license.is_empty() || l == license => (false, Some(l)),
            _ => return Ok(fail("That license ID and API key do not match.")),
        }
    };
    let id = state.sessions().create(operator, chosen);
    Ok((
        AppendHeaders([
            (
                SET_COOKIE,
                set_cookie(SESSION_COOKIE, &id, SESSION_TTL / 1000, secure),
            ),
            (SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0, secure)),
        ]),
        Redirect::to("/ui/overview"),
    )
        .into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    signed: SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> UiResult<Response> {
    signed.check_csrf(&form(&body)?)?;
    state.sessions().remove(&signed.cookie);
    Ok((
        AppendHeaders([(
            SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", 0, over_https(&headers)),
        )]),
        Redirect::to("/ui/login"),
    )
        .into_response())
}

// The operator's licenses.

pub async fn switch_license(
    State(state): State<AppState>,
    signed: SignedIn,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    signed.check_csrf(&form)?;
    if !signed.session.operator {
        return Err(UiError::BadRequest(
            "only the operator can switch licenses".into(),
        ));
    }
    let wanted = text(&form, "license_id");
    if !state
        .store()
        .list_licenses()
        .await?
        .iter()
        .any(|l| l == wanted)
    {
        return Err(UiError::NotFound(format!("no license {wanted}")));
    }
    state
        .sessions()
        .set_license(&signed.cookie, wanted.to_string());
    Ok(Redirect::to("/ui/overview?n=switched").into_response())
}

async fn licenses_body(state: &AppState, signed: &SignedIn, extra: &str) -> UiResult<String> {
    let licenses = state.store().list_licenses().await?;
    let mut rows = String::new();
    for l in &licenses {
        let _ = write!(
            rows,
            r#"<li><form method="post" action="/ui/license" class="inline">{}<input type="hidden" name="license_id" value="{l}"><button type="submit">Open {l}</button></form></li>"#,
            csrf_field(&signed.session),
            l = esc(l)
        );
    }
    if licenses.is_empty() {
        rows = "<li>No licenses yet: create the first one below.</li>".into();
    }
    Ok(format!(
        r#"{extra}<section><h2>Licenses</h2><ul class="plain">{rows}</ul></section>
<section><h2>Create a license</h2><form method="post" action="/ui/licenses" class="stack">{csrf}<div class="field"><label for="new-license">License ID</label><input id="new-license" name="license_id" required maxlength="64"></div><button type="submit">Create license</button></form></section>"#,
        csrf = csrf_field(&signed.session)
    ))
}

pub async fn licenses_page(
    State(state): State<AppState>,
    signed: SignedIn,
) -> UiResult<Html<String>> {
    if !signed.session.operator {
        return Err(UiError::NotFound(
            "only the operator manages licenses".into(),
        ));
    }
    let intro = if signed.session.license.is_none() {
        notice(
            "warn",
            "Choose a license to see its webhooks and deliveries.",
        )
    } else {
        String::new()
    };
    let body = licenses_body(&state, &signed, &intro).await?;
    render(&state, &signed, "/ui/licenses", "Licenses", &body).await
}

pub async fn create_license(
    State(state): State<AppState>,
    signed: SignedIn,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    signed.check_csrf(&form)?;
    if !signed.session.operator {
        return Err(UiError::NotFound(
            "only the operator manages licenses".into(),
        ));
    }
    let id = text(&form, "license_id").trim().to_string();
    let outcome = match hookwire_livechat::event::validate_license_id(&id) {
        Err(e) => Err(e.message),
        Ok(()) => create_license_with_key(state.store(), &id)
            .await
            .map_err(|e| e.body()["message"].as_str().unwrap_or("failed").to_string()),
    };
    let (status, extra) = match outcome {
        Ok(key) => (
            StatusCode::CREATED,
            notice(
                "ok",
                &format!(
                    "License {} created. Its API key, shown only now: <code class=\"secret\">{}</code>",
                    esc(&id),
                    esc(&key)
                ),
            ),
        ),
        Err(msg) => (StatusCode::BAD_REQUEST, notice("error", &esc(&msg))),
    };
    let body = licenses_body(&state, &signed, &extra).await?;
    Ok((
        status,
        render(&state, &signed, "/ui/licenses", "Licenses", &body).await?,
    )
        .into_response())
}

// Webhooks.

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
        let last = state
            .store()
            .list_deliveries(DeliveryQuery {
                license_id: license,
                webhook_id: Some(&w.id),
                state: None,
                event_type: None,
                before: None,
                limit: 1,
            })
            .await?;
        let last = match last.first() {
            Some(d) => format!(
                r#"{} <a href="/ui/deliveries/{}">{}</a>"#,
                state_badge(d.state),
                d.id,
                time(d.created_at)
            ),
            None => "never".into(),
        };
        let rate = match rates.get(w.id.as_str()) {
            Some((ok, total)) if *total > 0 => format!(
                "{:.0}% <span class=\"muted\">({ok}/{total} attempts)</span>",
                *ok as f64 * 100.0 / *total as f64
            ),
            _ => r#"<span class="muted">no attempts</span>"#.into(),
        };
        let id = esc(&w.id);
        let (status, toggle_label, toggle_value) = if w.enabled {
            (
                r#"<span class="badge delivered">enabled</span>"#.to_string(),
                "Disable",
                "false",
            )
        } else {
            (
                format!(
                    r#"<span class="badge failed">disabled</span>{}"#,
                    w.disabled_reason
                        .as_deref()
                        .map(|r| format!(r#" <span class="muted">{}</span>"#, esc(r)))
                        .unwrap_or_default()
                ),
                "Enable",
                "true",
            )
        };
        let _ = write!(
            out,
            r#"<tr id="webhook-{id}"><td data-label="Event">{event}</td><td data-label="Data types">{types}</td><td data-label="URL" class="url">{url}</td><td data-label="Status">{status}</td><td data-label="Last delivery">{last}</td><td data-label="Success (24 h)">{rate}</td><td data-label="Actions" class="actions">
<a href="/ui/webhooks/{id}">Edit</a> <a href="/ui/deliveries?webhook={id}">Deliveries</a>
<form method="post" action="/ui/webhooks/{id}/enabled" class="inline">{csrf}<input type="hidden" name="enabled" value="{toggle_value}"><button type="submit">{toggle_label}</button></form>
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
<div class="buttons"><button type="submit">Save webhook</button> <a href="/ui/webhooks">Cancel</a></div></form>"#,
        csrf = csrf_field(&signed.session),
        dt_described = described("data_types"),
        dt_err = err("data_types"),
        url = esc(&v.url),
        url_described = described("url"),
        url_err = err("url"),
        user = esc(&v.user),
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
        });
        match api_create_webhook(&state, license, input).await {
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
    let body = format!(
        "{}{}",
        notice(
            "error",
            "The webhook was not saved: see the highlighted fields."
        ),
        webhook_form(&signed, None, &values, &errors)
    );
    Ok((
        StatusCode::BAD_REQUEST,
        render(&state, &signed, "/ui/webhooks", "Add a webhook", &body).await?,
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
    if let (Some(data_types), Some(url)) = (data_types, url) {
        let http = http_target(&url);
        state
            .store()
            .update_webhook(
                &license,
                &id,
                WebhookPatch {
                    url: Some(url),
                    data_types: Some(data_types),
                    ..WebhookPatch::default()
                },
            )
            .await?
            .ok_or_else(|| UiError::NotFound(format!("There is no webhook {id}.")))?;
        let n = if http { "created_http" } else { "updated" };
        return Ok(Redirect::to(&format!("/ui/webhooks?n={n}")).into_response());
    }
    let body = format!(
        "{}{}",
        notice(
            "error",
            "The webhook was not saved: see the highlighted fields."
        ),
        webhook_form(&signed, Some(&current), &values, &errors)
    );
    Ok((
        StatusCode::BAD_REQUEST,
        render(&state, &signed, "/ui/webhooks", "Edit webhook", &body).await?,
    )
        .into_response())
}

pub async fn set_enabled(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    signed.check_csrf(&form)?;
    let license = signed.license()?;
    let enabled = text(&form, "enabled") == "true";
    state
        .store()
        .update_webhook(
            license,
            &id,
            WebhookPatch {
                enabled: Some(enabled),
                ..WebhookPatch::default()
            },
        )
        .await?
        .ok_or_else(|| UiError::NotFound(format!("There is no webhook {id}.")))?;
    if enabled {
        state.engine().dispatcher().wake();
    }
    let n = if enabled { "enabled" } else { "disabled" };
    Ok(Redirect::to(&format!("/ui/webhooks?n={n}")).into_response())
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> UiResult<Html<String>> {
    let w = owned(&state, signed.license()?, &id).await?;
    let body = format!(
        r#"<p>Delete the <strong>{event}</strong> webhook to <code>{url}</code>? Its pending deliveries end as failed. This cannot be undone.</p>
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
    if !state
        .store()
        .delete_webhook(signed.license()?, &id, now_millis())
        .await?
    {
        return Err(UiError::NotFound(format!("There is no webhook {id}.")));
    }
    Ok(Redirect::to("/ui/webhooks?n=deleted").into_response())
}

/// The receiver's answer to a test send, as HTML.
fn test_result(report: &crate::engine::attempt::AttemptReport) -> String {
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
                f.detail
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
    let result = match state.engine().attempt_now(&w, event).await {
        Some(report) => test_result(&report),
        None => notice("error", "Test sends are not available on this server."),
    };
    let body = webhooks_body(&state, &signed, "", Some((&id, result))).await?;
    Ok(render(&state, &signed, "/ui/webhooks", "Webhooks", &body)
        .await?
        .into_response())
}

// The delivery log.

fn delivery_row(d: &DeliveryView, webhooks: &HashMap<&str, &Webhook>) -> String {
    let last = d.attempts.last();
    let outcome = match last {
        Some(a) => match (&a.error, a.status) {
            (None, Some(s)) => format!("HTTP {s}"),
            (Some(e), Some(s)) if e.contains(&s.to_string()) => e.clone(),
            (Some(e), Some(s)) => format!("HTTP {s}: {e}"),
            (Some(e), None) => e.clone(),
            (None, None) => String::new(),
        },
        None => "not attempted yet".into(),
    };
    let target = webhooks
        .get(d.webhook_id.as_str())
        .map(|w| w.url.masked())
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
    let webhooks = state.store().list_webhooks(license).await?;
    let by_id: HashMap<&str, &Webhook> = webhooks.iter().map(|w| (w.id.as_str(), w)).collect();
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
            w.event_type.as_str(),
            esc(&w.url.masked())
        );
    }
    let mut st_options = String::from(r#"<option value="">Any state</option>"#);
    for s in [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Failed,
    ] {
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
            r#"<div class="empty"><p>No older deliveries.</p></div>"#
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
    let targets: Vec<String> = match webhook {
        Some(w) => vec![owned(&state, license, w).await?.id],
        None => state
            .store()
            .list_webhooks(license)
            .await?
            .into_iter()
            .map(|w| w.id)
            .collect(),
    };
    let mut count = 0;
    for id in &targets {
        count += state
            .store()
            .redeliver_failed_since(license, id, since, now)
            .await?;
    }
    state.engine().dispatcher().wake();
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
    found.into_iter().find(|d| d.id == n).ok_or_else(missing)
}

pub async fn delivery_page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    params: Params,
) -> UiResult<Html<String>> {
    let license = signed.license()?;
    let d = find_delivery(&state, license, &id).await?;
    let webhook = state.store().get_webhook(license, &d.webhook_id).await?;
    let mut out = flash(&params.0);
    let next = d
        .next_attempt_at
        .map(|t| format!("<dt>Next attempt</dt><dd>{}</dd>", time(t)))
        .unwrap_or_default();
    let _ = write!(
        out,
        r#"<dl class="facts"><dt>State</dt><dd>{badge}</dd><dt>Event</dt><dd>{event} <code>{event_id}</code></dd><dt>Webhook</dt><dd>{target}</dd><dt>Created</dt><dd>{created}</dd>{next}</dl>"#,
        badge = state_badge(d.state),
        event = d.event_type.as_str(),
        event_id = esc(&d.event_id),
        target = match &webhook {
            Some(w) => format!(
                r#"<a href="/ui/deliveries?webhook={}">{}</a>"#,
                esc(&w.id),
                esc(&w.url.masked())
            ),
            None => "(deleted)".into(),
        },
        created = time(d.created_at),
    );
    if webhook.is_some() {
        let _ = write!(
            out,
            r#"<form method="post" action="/ui/deliveries/{}/redeliver">{}<button type="submit">Redeliver</button></form>"#,
            d.id,
            csrf_field(&signed.session)
        );
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
            let body = state.engine().render_body(&event, data_types);
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
    if !state.store().redeliver(license, d.id, now_millis()).await? {
        return Err(UiError::NotFound(format!("There is no delivery {id}.")));
    }
    state.engine().dispatcher().wake();
    Ok(Redirect::to(&format!("/ui/deliveries/{}?n=redelivered&count=1", d.id)).into_response())
}

// Overview.

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
    let mut out = flash(&params.0);
    let oldest = queue
        .oldest_pending_at
        .map(|t| format!("{} (since {})", html::duration(now - t), time(t)))
        .unwrap_or_else(|| "none".into());
    let _ = write!(
        out,
        r#"<section aria-labelledby="queue-h"><h2 id="queue-h">Queue</h2><dl class="facts"><dt>Pending deliveries</dt><dd id="queue-depth">{}</dd><dt>Oldest pending</dt><dd>{oldest}</dd></dl></section>"#,
        queue.pending
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
    if samples.truncated {
        out.push_str(&notice(
            "warn",
            &format!("Only the newest {MAX_SAMPLES} attempts are counted."),
        ));
    }
    render(&state, &signed, "/ui/overview", "Overview", &out).await
}

// Agent view.

/// Icons are URLs without a scheme; anything else is not shown.
fn icon_src(icon: &str) -> Option<String> {
    let ok = !icon.is_empty()
        && icon.len() <= 500
        && icon
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~/:%?=&+".contains(c))
        && !icon.starts_with('/');
    ok.then(|| format!("https://{icon}"))
}

fn safe_link(url: &str) -> Option<&str> {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url)
}

fn visitor_card(v: &VisitorView) -> String {
    let mut sets = String::new();
    for d in &v.details {
        let fields: Value = serde_json::from_str(&d.fields_json).unwrap_or_else(|_| json!([]));
        let mut dl = String::new();
        for f in fields.as_array().into_iter().flatten() {
            let as_text = |v: Option<&Value>| match v {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            let name = as_text(f.get("name"));
            let value = as_text(f.get("value"));
            let url = f.get("url").and_then(Value::as_str).and_then(safe_link);
            let value = match url {
                Some(u) => format!(
                    r#"<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>"#,
                    esc(u),
                    esc(&value)
                ),
                None => esc(&value),
            };
            let _ = write!(dl, "<dt>{}</dt><dd>{value}</dd>", esc(&name));
        }
        let icon = d
            .icon
            .as_deref()
            .and_then(icon_src)
            .map(|src| {
                format!(
                    r#"<img src="{}" alt="" width="16" height="16" referrerpolicy="no-referrer" loading="lazy"> "#,
                    esc(&src)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            sets,
            r#"<div class="set"><h3>{icon}{}</h3><dl>{dl}</dl></div>"#,
            esc(&d.set_id)
        );
    }
    if sets.is_empty() {
        sets = r#"<p class="muted">No details from integrations yet.</p>"#.into();
    }
    format!(
        r#"<li class="visitor card" data-visitor="{id}"><h2>{name}</h2><p class="email">{email}</p><p class="muted">{id}{last}</p>{sets}</li>"#,
        id = esc(&v.visitor_id),
        name = esc(v.name.as_deref().unwrap_or("Unnamed visitor")),
        email = esc(v.email.as_deref().unwrap_or("")),
        last = v
            .last_seen_at
            .map(|t| format!(
                " · {} {}",
                esc(v.last_event_type.as_deref().unwrap_or("seen")),
                time(t)
            ))
            .unwrap_or_default(),
    )
}

const VISITORS: usize = 20;

pub async fn agents_page(
    State(state): State<AppState>,
    signed: SignedIn,
) -> UiResult<Html<String>> {
    let license = signed.license()?;
    let visitors = state.store().recent_visitors(license, VISITORS).await?;
    let mut out = String::from(
        r#"<p class="lead">What agents see during a chat: recent visitors with the details integrations posted through <code>POST /visitors/{id}/details</code>. Updates every 2 seconds.</p><ul id="visitors" class="cards" data-src="/ui/agents.json" aria-live="polite">"#,
    );
    for v in &visitors {
        out.push_str(&visitor_card(v));
    }
    out.push_str("</ul>");
    let hidden = if visitors.is_empty() { "" } else { " hidden" };
    let _ = write!(
        out,
        r#"<p id="visitors-empty" class="empty"{hidden}>No visitors yet: they appear when the platform reports a chat or a queued visitor.</p>"#
    );
    render(&state, &signed, "/ui/agents", "Agent view", &out).await
}

/// The agent view's data: each visitor rendered as an HTML card by the same
/// code as the page, so the script only swaps markup escaped here.
pub async fn agents_json(State(state): State<AppState>, signed: SignedIn) -> UiResult<Json<Value>> {
    let license = signed.license()?;
    let visitors = state.store().recent_visitors(license, VISITORS).await?;
    Ok(Json(json!({
        "visitors": visitors.iter().map(views::visitor).collect::<Vec<_>>(),
        "html": visitors.iter().map(visitor_card).collect::<String>(),
    })))
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

    #[test]
    fn icons_and_links_are_checked() {
        assert_eq!(
            icon_src("example.com/ico.png").as_deref(),
            Some("https://example.com/ico.png")
        );
        assert_eq!(icon_src("javascript:alert(1)\"><"), None);
        assert_eq!(safe_link("javascript:alert(1)"), None);
        assert_eq!(
            safe_link("https://crm.example.com/1"),
            Some("https://crm.example.com/1")
        );
    }
}
