//! The agent view: recent visitors with their custom details sets, as agents
//! see them during a chat; refreshed by the page script.

use super::*;

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
