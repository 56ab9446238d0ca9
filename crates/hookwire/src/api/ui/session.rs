//! Web app sessions: server-side, in the database, so any node serves any
//! signed-in browser and signing out ends the session everywhere.
//!
//! A session is created when someone signs in with a license's API key (or
//! the platform key, as operator), or opens a portal link, and lives for
//! [`SESSION_TTL`]; expired ones are pruned in the background. The browser
//! holds only a random id in an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` behind https; `SameSite=None; Secure` for a portal session that
//! a dashboard frames); the table is keyed by the id's hash. Every session
//! has its own CSRF token, which every form carries and every POST must match.

use crate::secret::{constant_time_eq, hash_secret, random_hex};
use crate::store::{now_millis, Millis, Store, StoreResult};
use axum::http::header::COOKIE;
use axum::http::HeaderMap;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "hookwire_session";
/// The pre-sign-in CSRF cookie (double-submit) of the sign-in form.
pub const LOGIN_COOKIE: &str = "hookwire_login";
/// How long a session lasts after signing in.
pub const SESSION_TTL: Millis = 12 * 60 * 60 * 1000;

/// Who is signed in, and which license they are looking at.
pub use crate::store::WebSession as Session;

/// Whether a submitted CSRF token is the one this sign-in session holds.
pub fn csrf_ok(session: &Session, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| constant_time_eq(p, &session.csrf))
}

/// The sessions, as the database keeps them (see [`WebSessions`]).
pub struct Sessions {
    store: Arc<dyn Store>,
}

impl Sessions {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Sessions { store }
    }

    /// Starts a session; answers the cookie value. `framed` sessions came
    /// through a portal link for a dashboard allowed to frame the web app.
    pub async fn create(
        &self,
        operator: bool,
        license: Option<String>,
        framed: bool,
    ) -> StoreResult<String> {
        let id = random_hex(32);
        let session = Session {
            operator,
            license,
            csrf: random_hex(32),
            framed,
            expires_at: now_millis() + SESSION_TTL,
        };
        self.store
            .create_web_session(&hash_secret(&id), session)
            .await?;
        Ok(id)
    }

    /// The live session a cookie value names.
    pub async fn get(&self, id: &str) -> StoreResult<Option<Session>> {
        self.store.web_session(&hash_secret(id), now_millis()).await
    }

    /// Changes the license an operator looks at.
    pub async fn set_license(&self, id: &str, license: &str) -> StoreResult<()> {
        self.store
            .set_web_session_license(&hash_secret(id), license)
            .await
    }

    /// Signs out: the session ends on every node.
    pub async fn remove(&self, id: &str) -> StoreResult<()> {
        self.store.delete_web_session(&hash_secret(id)).await
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the browser reached us over https (directly or through a proxy
/// that says so), so cookies get `Secure`.
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session cookie of `session`: strict, or, for a framed portal
/// session, `SameSite=None; Secure` (browsers send no other cookie to a
/// frame from another site, and accept `None` only with `Secure`).
pub fn session_cookie(value: &str, max_age_secs: i64, secure: bool, framed: bool) -> String {
    if framed {
        format!("{SESSION_COOKIE}={value}; Path=/ui; HttpOnly; SameSite=None; Secure; Max-Age={max_age_secs}")
    } else {
        set_cookie(SESSION_COOKIE, value, max_age_secs, secure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_parsed_and_set_strictly() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; hookwire_session=abc"),
        );
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(!over_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(over_https(&h));
        let c = set_cookie(SESSION_COOKIE, "v", 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("; Secure"));
        let framed = session_cookie("v", 60, false, true);
        assert!(framed.contains("SameSite=None; Secure") && framed.contains("HttpOnly"));
        assert_eq!(session_cookie("v", 60, true, false), c);
        let s = Session {
            operator: false,
            license: None,
            csrf: "token".into(),
            framed: false,
            expires_at: 0,
        };
        assert!(csrf_ok(&s, Some("token")));
        assert!(!csrf_ok(&s, Some("forged")) && !csrf_ok(&s, None));
    }
}
