//! Licenses: created by the platform (API) or the operator (web app, CLI),
//! each with an API key that is shown once and stored only as a hash; and
//! the portal links that sign a browser in as one license without that key.

use super::{Service, ServiceError, ServiceResult};
use crate::secret::{hash_secret, random_hex, Secret};
use crate::store::{now_millis, Millis, Store, StoreError};

/// A portal link's token, to put in its URL, and when it stops working.
pub struct PortalLink {
    pub token: Secret,
    pub expires_at: Millis,
}

impl Service {
    /// Makes a single-use portal link for a license, valid for the
    /// configured `portal_link_ttl`; only its hash is stored.
    pub async fn create_portal_link(&self, license_id: &str) -> ServiceResult<PortalLink> {
        let token = Secret::new(random_hex(32));
        let expires_at = now_millis() + self.portal_link_ttl.as_millis() as Millis;
        if self
            .store
            .create_portal_link(&hash_secret(token.expose()), license_id, expires_at)
            .await?
        {
            Ok(PortalLink { token, expires_at })
        } else {
            Err(ServiceError::NotFound(format!("no license {license_id}")))
        }
    }

    /// Uses a portal link up: the license it signs in as, if it was unused
    /// and has not expired. Only the token's hash is looked up.
    pub async fn take_portal_link(&self, token: &str) -> ServiceResult<Option<String>> {
        Ok(self
            .store
            .take_portal_link(&hash_secret(token), now_millis())
            .await?)
    }

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
        Ok(()) => {
            // The organization id v3 webhooks carry is made with the license.
            store
                .organization_id(license_id, &crate::engine::new_organization_id())
                .await?;
            Ok(api_key)
        }
        Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict(format!(
            "license {license_id} already exists"
        ))),
        Err(e) => Err(e.into()),
    }
}
