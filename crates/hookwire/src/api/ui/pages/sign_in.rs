//! Signing in and out, and the operator's licenses page.

use super::*;

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

pub async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> UiResult<Response> {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        if state.sessions().get(id).await?.is_some() {
            return Ok(Redirect::to("/ui/overview").into_response());
        }
    }
    let token = random_hex(16);
    Ok((
        AppendHeaders([(
            SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, 3600, over_https(&headers)),
        )]),
        Html(login_page(&token, "", None)),
    )
        .into_response())
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
    let id = state.sessions().create(operator, chosen, false).await?;
    Ok((
        AppendHeaders([
            (
                SET_COOKIE,
                session_cookie(&id, SESSION_TTL / 1000, secure, false),
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
    state.sessions().remove(&signed.cookie).await?;
    Ok((
        AppendHeaders([(
            SET_COOKIE,
            session_cookie("", 0, over_https(&headers), signed.session.framed),
        )]),
        Redirect::to("/ui/login"),
    )
        .into_response())
}

/// `GET /ui/portal/{token}`: a portal link, opened. Signs the browser in as
/// the link's license (no API key) and lands on Webhooks; the link is used
/// up, so a second opening, like an expired link, gets a page saying so and
/// no session.
pub async fn open_portal_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> UiResult<Response> {
    let Some(license) = state.service().take_portal_link(&token).await? else {
        let body = r#"<main id="main" class="narrow"><h1>This link cannot sign you in</h1><p>It was used already or has expired: each link works once, for a few minutes. Open the webhooks settings again from your dashboard to get a new one.</p></main>"#;
        return Ok((
            StatusCode::GONE,
            Html(html::document("Link used or expired", body)),
        )
            .into_response());
    };
    let framed = !state.portal().frame_ancestors.is_empty();
    let id = state
        .sessions()
        .create(false, Some(license), framed)
        .await?;
    Ok((
        AppendHeaders([(
            SET_COOKIE,
            session_cookie(&id, SESSION_TTL / 1000, over_https(&headers), framed),
        )]),
        Redirect::to("/ui/webhooks"),
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
    state.sessions().set_license(&signed.cookie, wanted).await?;
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
    let (status, extra) = match state.service().create_license(&id).await {
        Ok(key) => (
            StatusCode::CREATED,
            notice(
                "ok",
                &format!(
                    "License {} created. Its API key, shown only now: <code class=\"secret\">{}</code>",
                    esc(&id),
                    esc(key.expose())
                ),
            ),
        ),
        Err(ServiceError::Invalid(e)) => (StatusCode::BAD_REQUEST, notice("error", &esc(&e.message))),
        Err(ServiceError::Conflict(m)) => (StatusCode::CONFLICT, notice("error", &esc(&m))),
        Err(e) => return Err(e.into()),
    };
    let body = licenses_body(&state, &signed, &extra).await?;
    Ok((
        status,
        render(&state, &signed, "/ui/licenses", "Licenses", &body).await?,
    )
        .into_response())
}
