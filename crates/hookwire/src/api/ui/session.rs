//! Web app sessions: server-side, in this process's memory.
//!
//! A session is created when someone signs in with a license's API key (or
//! the platform key, as operator) and lives for [`SESSION_TTL`]; restarting
//! hookwire signs everyone out. The browser holds only a random id in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind https); the table is
//! keyed by the id's hash. Every session has its own CSRF token, which every
//! form carries and every POST must match.

use crate::secret::{constant_time_eq, hash_secret, random_hex};
use crate::store::{now_millis, Millis};
use axum::http::header::COOKIE;
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::Mutex;

pub const SESSION_COOKIE: &str = "hookwire_session";
/// The pre-sign-in CSRF cookie (double-submit) of the sign-in form.
pub const LOGIN_COOKIE: &str = "hookwire_login";
/// How long a session lasts after signing in.
pub const SESSION_TTL: Millis = 12 * 60 * 60 * 1000;
/// The most sessions kept; past it the oldest is dropped.
const MAX_SESSIONS: usize = 10_000;

/// Who is signed in, and which license they are looking at.
#[derive(Debug, Clone)]
pub struct Session {
    /// Signed in with the platform key: may switch and create licenses.
    pub operator: bool,
    /// The license shown; an operator may have none chosen yet.
    pub license: Option<String>,
    pub csrf: String,
    pub expires_at: Millis,
}

impl Session {
    /// Whether a submitted CSRF token is the one this sign-in session holds.
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| constant_time_eq(p, &self.csrf))
    }
}

#[derive(Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session; answers the cookie value.
    pub fn create(&self, operator: bool, license: Option<String>) -> String {
        let id = random_hex(32);
        let now = now_millis();
        let session = Session {
            operator,
            license,
            csrf: random_hex(32),
            expires_at: now + SESSION_TTL,
        };
        if let Ok(mut map) = self.by_hash.lock() {
            map.retain(|_, s| s.expires_at > now);
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires_at)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
            map.insert(hash_secret(&id), session);
        }
        id
    }

    /// The live session a cookie value names.
    pub fn get(&self, id: &str) -> Option<Session> {
        let map = self.by_hash.lock().ok()?;
        map.get(&hash_secret(id))
            .filter(|s| s.expires_at > now_millis())
            .cloned()
    }

    /// Changes the license an operator looks at.
    pub fn set_license(&self, id: &str, license: String) {
        if let Ok(mut map) = self.by_hash.lock() {
            if let Some(s) = map.get_mut(&hash_secret(id)) {
                s.license = Some(license);
            }
        }
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.by_hash.lock() {
            map.remove(&hash_secret(id));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn sessions_are_found_by_cookie_and_end_on_sign_out() {
        let sessions = Sessions::default();
        let id = sessions.create(true, None);
        let s = sessions.get(&id).expect("live");
        assert!(s.operator && s.license.is_none());
        assert!(s.csrf_ok(Some(&s.csrf)));
        assert!(!s.csrf_ok(Some("forged")) && !s.csrf_ok(None));
        sessions.set_license(&id, "1025707".into());
        assert_eq!(
            sessions.get(&id).unwrap().license.as_deref(),
            Some("1025707")
        );
        assert!(sessions.get("unknown").is_none());
        sessions.remove(&id);
        assert!(sessions.get(&id).is_none());
    }

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
    }
}
