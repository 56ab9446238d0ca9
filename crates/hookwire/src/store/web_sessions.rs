//! The web app's sign-in sessions and single-use portal links, kept in the
//! database so that any node serves any signed-in browser. Only hashes of
//! the cookie values and link tokens are stored.

use super::{Millis, StoreResult};
use async_trait::async_trait;

/// One signed-in browser, as stored under the hash of its cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Signed in with the platform key: may switch and create licenses.
    pub operator: bool,
    /// The license shown; an operator may have none chosen yet.
    pub license: Option<String>,
    /// The CSRF token every form of the signed-in browser carries.
    pub csrf: String,
    /// Opened through a portal link for a framing dashboard: its cookie is
    /// `SameSite=None` so it works inside the frame.
    pub framed: bool,
    pub expires_at: Millis,
}

/// Sessions and portal links.
#[async_trait]
pub trait WebSessions: Send + Sync {
    async fn create_web_session(&self, id_hash: &str, session: WebSession) -> StoreResult<()>;
    /// The session, unless unknown or expired at `now`.
    async fn web_session(&self, id_hash: &str, now: Millis) -> StoreResult<Option<WebSession>>;
    /// Changes the license an operator's session shows.
    async fn set_web_session_license(&self, id_hash: &str, license_id: &str) -> StoreResult<()>;
    /// Ends a session (signing out): on every node at once.
    async fn delete_web_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Stores a portal link for a license; false if the license is unknown.
    async fn create_portal_link(
        &self,
        token_hash: &str,
        license_id: &str,
        expires_at: Millis,
    ) -> StoreResult<bool>;
    /// Uses a portal link up: the license it signs in as, if it was unused
    /// and unexpired at `now`. A second call for the same link answers `None`.
    async fn take_portal_link(&self, token_hash: &str, now: Millis) -> StoreResult<Option<String>>;
    /// Removes sessions and links expired at `now`; answers how many.
    async fn prune_web_sessions(&self, now: Millis) -> StoreResult<u64>;
}
