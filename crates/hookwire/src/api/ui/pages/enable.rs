//! Switching a webhook on and off from the web app. Enabling one that holds
//! deliveries (made while it was off) first asks whether to deliver them,
//! oldest first, or discard them, showing how many.

use super::*;

/// The form that switches a webhook on (`value` "true") or off.
pub(super) fn toggle_form(id: &str, csrf: &str, value: &str, label: &str) -> String {
    format!(
        r#"<form method="post" action="/ui/webhooks/{id}/enabled" class="inline">{csrf}<input type="hidden" name="enabled" value="{value}"><button type="submit">{label}</button></form>"#
    )
}

/// How many deliveries a disabled webhook holds, linked to them in the log.
pub(super) fn held_link(w: &Webhook) -> String {
    match w.held_deliveries {
        0 => String::new(),
        n => format!(
            r#" <a href="/ui/deliveries?webhook={}&amp;state=held" class="held-count"><span class="badge held">{n} held</span></a>"#,
            esc(&w.id)
        ),
    }
}

/// Asks what enabling a webhook does with the deliveries it held while it
/// was disabled: deliver them, oldest first, or discard them.
pub async fn enable_choice(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> UiResult<Response> {
    let w = owned(&state, signed.license()?, &id).await?;
    if w.enabled {
        return Ok(Redirect::to("/ui/webhooks?n=enabled").into_response());
    }
    let n = w.held_deliveries;
    let (them, were) = if n == 1 {
        ("it", "was")
    } else {
        ("them", "were")
    };
    let body = format!(
        r#"<p>While the <strong>{event}</strong> webhook to <code>{url}</code> was disabled, <strong id="held-count">{n}</strong> {deliveries} {were} held for it (<a href="/ui/deliveries?webhook={id}&amp;state=held">see {them}</a>). Enable it and:</p>
<form method="post" action="/ui/webhooks/{id}/enabled" class="buttons">{csrf}<input type="hidden" name="enabled" value="true"><button type="submit" name="held" value="deliver" id="deliver-held">Deliver {them}</button> <button type="submit" name="held" value="discard" id="discard-held" class="danger">Discard {them}</button> <a href="/ui/webhooks">Cancel</a></form>
<p class="hint">Delivered, they go oldest first, as if they had been sent on time. Discarded, they stay in the delivery log as <span class="badge discarded">discarded</span> and are never sent. Events from now on are delivered either way.</p>"#,
        event = w.event_type.as_str(),
        url = esc(&w.url.masked()),
        id = esc(&w.id),
        deliveries = if n == 1 { "delivery" } else { "deliveries" },
        csrf = csrf_field(&signed.session),
    );
    Ok(
        render(&state, &signed, "/ui/webhooks", "Enable webhook", &body)
            .await?
            .into_response(),
    )
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
    // What becomes of held deliveries: asked by `enable_choice`; without
    // an answer they are delivered, as the API does.
    let discard_held = match text(&form, "held") {
        "" | "deliver" => false,
        "discard" if enabled => true,
        other => {
            return Err(UiError::BadRequest(format!(
                "held: {other:?} is not a choice here (deliver, or discard when enabling)"
            )))
        }
    };
    state
        .service()
        .update_webhook(
            license,
            &id,
            WebhookChanges {
                enabled: Some(enabled),
                discard_held,
                ..WebhookChanges::default()
            },
        )
        .await?;
    let n = match (enabled, discard_held) {
        (false, _) => "disabled",
        (true, false) => "enabled",
        (true, true) => "enabled_discarded",
    };
    Ok(Redirect::to(&format!("/ui/webhooks?n={n}")).into_response())
}
