//! Licenses: created by the platform (API) or the operator (web app, CLI),
//! each with an API key that is shown once and stored only as a hash.

use super::{Service, ServiceError, ServiceResult};
use crate::secret::{hash_secret, random_hex, Secret};
use crate::store::{now_millis, Store, StoreError};

impl Service {
    /// Creates a license and answers its API key.
    pub async fn create_license(&self, license_id: &str) -> ServiceResult<Secret> {
        create_license(self.store.as_ref(), license_id).await
    }
}

/// Creates a license and answers its API key. Needs no dispatcher, so the
/// CLI calls it on a store it opened itself.
pub async fn create_license(store: &dyn Store, license_id: &str) -> ServiceResult<Secret> {
    hookwire_livechat::event::validate_license_id(license_id)?;
    let api_key = Secret::new(format!("hwk_{}", random_hex(24)));
    match store
        .create_license(license_id, &hash_secret(api_key.expose()), now_millis())
        .await
    {
        Ok(()) => Ok(api_key),
        Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict(format!(
            "license {license_id} already exists"
        ))),
        Err(e) => Err(e.into()),
    }
}
