//! LiveChat v3 webhooks: a license's registrations grouped by Client ID,
//! each group with its license-webhooks switch, each webhook with its
//! filters, additional data, last delivery and an unregister button.
//! Secret keys are never shown.

use super::*;
use crate::store::V3Webhook;
use std::collections::BTreeMap;

/// A v3 webhook of the license, for the delivery page: (id, masked URL).
pub(super) async fn v3_target(
    state: &AppState,
    license: &str,
    id: &str,
) -> UiResult<Option<(String, String)>> {
    Ok(state
        .store()
        .list_v3_webhooks(license, None)
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .map(|w| (w.id, w.url.masked())))
}

fn v3_flash(p: &HashMap<String, String>) -> String {
    match p.get("n").map(String::as_str) {
        Some("switched_on") => notice("ok", "License webhooks enabled for the Client ID."),
        Some("switched_off") => notice(
            "ok",
            "License webhooks disabled for the Client ID: its license webhooks get no new events.",
        ),
        Some("unregistered") => notice("ok", "Webhook unregistered."),
        Some("enabled") => notice("ok", "Webhook enabled; what it held is on its way."),
        Some("enabled_discarded") => notice("ok", "Webhook enabled; what it held was discarded."),
        Some("disabled") => notice(
            "ok",
            "Webhook disabled: its events are held until it is enabled again.",
        ),
        Some("ordered") => notice("ok", "Ordered delivery switched."),
        Some("log_filtered") => notice(
            "ok",
            "Switched: events its filters exclude are logged as filtered deliveries, or no longer.",
        ),
        _ => String::new(),
    }
}

async fn row(state: &AppState, license: &str, w: &V3Webhook, csrf: &str) -> UiResult<String> {
    let last = super::webhooks::last_delivery_cell(state, license, &w.id).await?;
    let filters = if w.filters.is_empty() {
        r#"<span class="muted">none</span>"#.to_string()
    } else {
        format!(
            "<code>{}</code>{}",
            esc(&serde_json::to_string(&w.filters).unwrap_or_default()),
            if w.log_filtered {
                r#" <span class="muted">(excluded events logged)</span>"#
            } else {
                ""
            }
        )
    };
    let ordered = if w.ordered {
        r#" <span class="badge" title="A chat's events go one at a time, in order">ordered</span>"#
    } else {
        ""
    };
    let held = match w.held_deliveries {
        0 => String::new(),
        n => format!(r#" <span class="badge held">{n} held</span>"#),
    };
    let status = if w.enabled {
        format!(r#"<span class="badge delivered">enabled</span>{ordered}"#)
    } else {
        format!(
            r#"<span class="badge failed">disabled</span>{ordered}{held} <span class="muted">{}</span>"#,
            esc(w.disabled_reason.as_deref().unwrap_or(""))
        )
    };
    let id = esc(&w.id);
    let switch = |fields: &str, label: &str| {
        format!(
            r#"<form method="post" action="/ui/v3-webhooks/{id}" class="inline">{csrf}{fields}<button type="submit">{label}</button></form>"#
        )
    };
    let enable = match (w.enabled, w.held_deliveries) {
        (true, _) => switch(
            r#"<input type="hidden" name="enabled" value="false">"#,
            "Disable",
        ),
        (false, 0) => switch(
            r#"<input type="hidden" name="enabled" value="true">"#,
            "Enable",
        ),
        (false, n) => format!(
            "{}{}",
            switch(
                r#"<input type="hidden" name="enabled" value="true">"#,
                &format!("Enable, deliver the {n} held")
            ),
            switch(
                r#"<input type="hidden" name="enabled" value="true"><input type="hidden" name="discard_held" value="true">"#,
                &format!("Enable, discard the {n} held")
            ),
        ),
    };
    // Only filters exclude events: the switch is shown where there are some.
    let log = match (w.filters.is_empty(), w.log_filtered) {
        (true, _) => String::new(),
        (false, true) => switch(
            r#"<input type="hidden" name="log_filtered" value="false">"#,
            "Stop logging filtered",
        ),
        (false, false) => switch(
            r#"<input type="hidden" name="log_filtered" value="true">"#,
            "Log filtered",
        ),
    };
    let order = if w.ordered {
        switch(
            r#"<input type="hidden" name="ordered" value="false">"#,
            "Unordered",
        )
    } else {
        switch(
            r#"<input type="hidden" name="ordered" value="true">"#,
            "Ordered",
        )
    };
    Ok(format!(
        r#"<tr id="v3-webhook-{id}"><td data-label="Action">{action}</td><td data-label="Type">{kind}</td><td data-label="URL" class="url">{url}</td><td data-label="Filters">{filters}</td><td data-label="Additional data">{data}</td><td data-label="Status">{status}</td><td data-label="Last delivery">{last}</td><td data-label="Actions" class="actions">
<a href="/ui/deliveries?webhook={id}">Deliveries</a>
{enable} {order} {log}
<form method="post" action="/ui/v3-webhooks/{id}/test" class="inline">{csrf}<button type="submit">Send test</button></form>
<form method="post" action="/ui/v3-webhooks/{id}/unregister" class="inline">{csrf}<input type="hidden" name="owner_client_id" value="{owner}"><button type="submit" class="danger">Unregister</button></form></td></tr>"#,
        action = w.action.as_str(),
        kind = w.kind.as_str(),
        url = esc(&w.url.masked()),
        data = esc(&w.additional_data.names().join(", ")),
        owner = esc(&w.owner_client_id),
    ))
}

pub async fn v3_webhooks_page(
    State(state): State<AppState>,
    signed: SignedIn,
    params: Params,
) -> UiResult<Html<String>> {
    v3_page(&state, &signed, v3_flash(&params.0)).await
}

/// A test send to a v3 webhook: a sample of its action in its envelope,
/// posted now and never logged; the page shows what the receiver answered.
pub async fn send_v3_test(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult<Html<String>> {
    signed.check_csrf(&form(&body)?)?;
    let license = signed.license()?.to_string();
    let hook = state.service().v3_webhook(&license, &id).await?;
    let organization_id = state.service().organization_id(&license).await?;
    let result = match state
        .engine()
        .attempt_now_v3(&hook, organization_id)
        .await?
    {
        Some(report) => format!(
            r#"<div id="v3-test-result">{}</div>"#,
            super::webhooks::test_result(&report)
        ),
        None => notice("error", "Test sends are not available on this server."),
    };
    v3_page(&state, &signed, result).await
}

/// The v3 webhooks page, with `top` (a notice) above the list.
async fn v3_page(state: &AppState, signed: &SignedIn, top: String) -> UiResult<Html<String>> {
    let license = signed.license()?;
    let webhooks = state.store().list_v3_webhooks(license, None).await?;
    let mut out = format!(
        r#"{top}<p class="lead">LiveChat v3.x webhooks of license {}, registered through the Configuration API, by Client ID. A Client ID's license webhooks get events only while switched on. Send test posts a sample of the webhook's action in its envelope straight to its URL; it is not written to the delivery log.</p>"#,
        esc(license)
    );
    if webhooks.is_empty() {
        out.push_str(r#"<div class="empty"><p>No v3 webhooks: an application registers them with <code>register_webhook</code>.</p></div>"#);
        return render(state, signed, "/ui/v3-webhooks", "v3 webhooks", &out).await;
    }
    let mut groups: BTreeMap<&str, Vec<&V3Webhook>> = BTreeMap::new();
    for w in &webhooks {
        groups.entry(&w.owner_client_id).or_default().push(w);
    }
    let csrf = csrf_field(&signed.session);
    for (owner, hooks) in groups {
        let on = state
            .store()
            .license_webhooks_enabled(license, owner)
            .await?;
        let (badge, label, value) = if on {
            (
                r#"<span class="badge delivered">license webhooks on</span>"#,
                "Switch off",
                "false",
            )
        } else {
            (
                r#"<span class="badge failed">license webhooks off</span>"#,
                "Switch on",
                "true",
            )
        };
        let _ = write!(
            out,
            r#"<section class="client"><h2>Client ID <code>{o}</code> {badge}</h2>
<form method="post" action="/ui/v3-webhooks/switch" class="inline">{csrf}<input type="hidden" name="owner_client_id" value="{o}"><input type="hidden" name="enabled" value="{value}"><button type="submit">{label}</button></form>
<div class="table-wrap"><table><caption class="sr-only">Webhooks of {o}</caption><thead><tr><th scope="col">Action</th><th scope="col">Type</th><th scope="col">URL</th><th scope="col">Filters</th><th scope="col">Additional data</th><th scope="col">Status</th><th scope="col">Last delivery</th><th scope="col">Actions</th></tr></thead><tbody>"#,
            o = esc(owner),
        );
        for w in hooks {
            out.push_str(&row(state, license, w, &csrf).await?);
        }
        out.push_str("</tbody></table></div></section>");
    }
    render(state, signed, "/ui/v3-webhooks", "v3 webhooks", &out).await
}

pub async fn switch_license_webhooks(
    State(state): State<AppState>,
    signed: SignedIn,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    signed.check_csrf(&form)?;
    let enabled = text(&form, "enabled") == "true";
    state
        .service()
        .set_license_webhooks(signed.license()?, text(&form, "owner_client_id"), enabled)
        .await?;
    let n = if enabled {
        "switched_on"
    } else {
        "switched_off"
    };
    Ok(Redirect::to(&format!("/ui/v3-webhooks?n={n}")).into_response())
}

/// One of a v3 webhook's switches, from its row's buttons: enabled (and
/// what becomes of what it held), or ordered.
pub async fn switch_v3_webhook(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    signed.check_csrf(&form)?;
    let yes_no = |key: &str| match text(&form, key) {
        "" => None,
        v => Some(v == "true"),
    };
    let changes = WebhookChanges {
        enabled: yes_no("enabled"),
        discard_held: yes_no("discard_held").unwrap_or(false),
        ordered: yes_no("ordered"),
        log_filtered: yes_no("log_filtered"),
        ..WebhookChanges::default()
    };
    let n = match (changes.enabled, changes.discard_held) {
        (Some(true), true) => "enabled_discarded",
        (Some(true), false) => "enabled",
        (Some(false), _) => "disabled",
        (None, _) if changes.log_filtered.is_some() => "log_filtered",
        (None, _) => "ordered",
    };
    state
        .service()
        .update_v3_webhook(signed.license()?, &id, changes)
        .await?;
    Ok(Redirect::to(&format!("/ui/v3-webhooks?n={n}")).into_response())
}

pub async fn unregister_v3_webhook(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> UiResult<Response> {
    let form = form(&body)?;
    signed.check_csrf(&form)?;
    state
        .service()
        .unregister_v3_webhook(signed.license()?, text(&form, "owner_client_id"), &id)
        .await?;
    Ok(Redirect::to("/ui/v3-webhooks?n=unregistered").into_response())
}
