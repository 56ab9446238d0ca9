//! Who is calling: the chat platform (platform key) or a license (API key).

use super::error::AppError;
use super::AppState;
use crate::secret::{constant_time_eq, hash_secret};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;

/// The chat platform's backend, authenticated by `Authorization: Bearer <platform key>`.
pub struct Platform;

/// A license, authenticated by its API key: `Authorization: Bearer KEY`, or
/// basic auth with the key as the password (LiveChat's older clients).
pub struct License(pub String);

/// The secret a request presents, from bearer or basic auth.
fn presented_secret(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_string());
    }
    None
}

impl FromRequestParts<AppState> for Platform {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let secret = presented_secret(parts).ok_or_else(|| {
            AppError::Unauthorized("send the platform key as Authorization: Bearer KEY".into())
        })?;
        if constant_time_eq(&secret, state.platform_key().expose()) {
            Ok(Platform)
        } else {
            Err(AppError::Unauthorized("invalid platform key".into()))
        }
    }
}

impl FromRequestParts<AppState> for License {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let secret = presented_secret(parts).ok_or_else(|| {
            AppError::Unauthorized("send the license API key as Authorization: Bearer KEY".into())
        })?;
        // Lookup by hash: the stored value is a hash, and an index lookup on
        // it reveals nothing useful about the key.
        match state
            .store()
            .license_by_key_hash(&hash_secret(&secret))
            .await?
        {
            Some(license_id) => Ok(License(license_id)),
            None => Err(AppError::Unauthorized("invalid API key".into())),
        }
    }
}
