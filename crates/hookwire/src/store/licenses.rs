//! Licenses: the tenants of a hookwire, each with its API key (stored as a
//! hash) and everything else scoped by it.

use super::{Millis, StoreResult};
use async_trait::async_trait;

/// Licenses and their API keys.
#[async_trait]
pub trait Licenses: Send + Sync {
    /// Creates a license; `Conflict` if the id exists.
    async fn create_license(
        &self,
        license_id: &str,
        api_key_hash: &str,
        now: Millis,
    ) -> StoreResult<()>;
    /// The license whose API key hashes to `api_key_hash`.
    async fn license_by_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<String>>;
    /// Every license id, sorted: the operator's license switcher.
    async fn list_licenses(&self) -> StoreResult<Vec<String>>;
}
