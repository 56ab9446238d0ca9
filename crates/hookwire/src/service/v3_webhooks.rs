//! LiveChat v3 webhooks: registered, listed (their secret keys opened for
//! the owner), unregistered, and each application's license-webhooks switch.
//! URLs and secret keys are sealed here, on the way to the store.

use super::{Service, ServiceError, ServiceResult, WebhookChanges};
use crate::engine::new_organization_id;
use crate::secret::{random_hex, Secret, V3_SECRET_KEY};
use crate::store::{now_millis, NewV3Webhook, V3Registered, V3Webhook, MAX_V3_WEBHOOKS_PER_ACTION};
use hookwire_livechat::v3::{Registration, Version};
use hookwire_livechat::ValidationError;

/// A v3 webhook with its `secret_key` opened, as `list_webhooks` answers it.
pub struct OpenedV3Webhook {
    pub webhook: V3Webhook,
    pub secret_key: Secret,
}

impl Service {
    /// Registers a v3 webhook for the license, within the per-action limit.
    pub async fn register_v3_webhook(
        &self,
        license_id: &str,
        version: Version,
        r: Registration,
    ) -> ServiceResult<V3Webhook> {
        let new = NewV3Webhook {
            id: random_hex(16),
            license_id: license_id.to_string(),
            version,
            action: r.action,
            kind: r.kind,
            owner_client_id: r.owner_client_id,
            url: self.cipher.seal_url(&r.url),
            secret_key: self.cipher.seal_v3_secret_key(&Secret::new(r.secret_key)),
            description: r.description,
            additional_data: r.additional_data,
            filters: r.filters,
            created_at: now_millis(),
        };
        let action = new.action;
        match self.store.register_v3_webhook(new).await? {
            V3Registered::Registered(w) => Ok(*w),
            V3Registered::LimitReached => Err(ServiceError::Invalid(ValidationError::new(
                "action",
                format!(
                    "the limit of {MAX_V3_WEBHOOKS_PER_ACTION} webhooks per action per Client ID is reached for {action}"
                ),
            ))),
            V3Registered::UnknownLicense => {
                Err(ServiceError::NotFound(format!("no license {license_id}")))
            }
        }
    }

    /// Switches a license's v3 webhook on or off (delivering or discarding
    /// what it held), ordered or not, and its rate limit: the switches a v2
    /// webhook has. Its URL and additional data are LiveChat's to set, by
    /// registering it again.
    pub async fn update_v3_webhook(
        &self,
        license_id: &str,
        id: &str,
        changes: WebhookChanges,
    ) -> ServiceResult<V3Webhook> {
        if changes.url.is_some() || changes.data_types.is_some() {
            let field = if changes.url.is_some() {
                "url"
            } else {
                "data_types"
            };
            return Err(ValidationError::new(
                field,
                "a v3 webhook's URL and additional data are set by registering it again (register_webhook)",
            )
            .into());
        }
        let patch = changes.into_patch(None)?;
        let enabled = patch.enabled;
        let updated = self
            .store
            .update_v3_webhook(license_id, id, patch)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no v3 webhook {id}")))?;
        if enabled == Some(true) {
            self.made_due();
        }
        Ok(updated)
    }

    /// The license's v3 webhook `id`.
    pub async fn v3_webhook(&self, license_id: &str, id: &str) -> ServiceResult<V3Webhook> {
        self.store
            .list_v3_webhooks(license_id, None)
            .await?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("no v3 webhook {id}")))
    }

    /// An owner's webhooks on the license, secret keys opened.
    pub async fn list_v3_webhooks(
        &self,
        license_id: &str,
        owner_client_id: &str,
    ) -> ServiceResult<Vec<OpenedV3Webhook>> {
        let webhooks = self
            .store
            .list_v3_webhooks(license_id, Some(owner_client_id))
            .await?;
        webhooks
            .into_iter()
            .map(|webhook| {
                let secret_key = self
                    .cipher
                    .open(V3_SECRET_KEY, &webhook.secret_key)
                    .and_then(|s| String::from_utf8(s).ok())
                    .map(Secret::new)
                    .ok_or_else(|| {
                        ServiceError::Store(crate::store::StoreError::corrupt(
                            format_args!("webhook {}", webhook.id),
                            "v3_secret_key: cannot be decrypted (was encryption_key changed?)",
                        ))
                    })?;
                Ok(OpenedV3Webhook {
                    webhook,
                    secret_key,
                })
            })
            .collect()
    }

    /// Unregisters an owner's webhook; `NotFound` if the owner has no such
    /// webhook on the license.
    pub async fn unregister_v3_webhook(
        &self,
        license_id: &str,
        owner_client_id: &str,
        id: &str,
    ) -> ServiceResult<()> {
        if self
            .store
            .unregister_v3_webhook(license_id, owner_client_id, id, now_millis())
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "no webhook {id} of Client ID {owner_client_id}"
            )))
        }
    }

    /// Switches an application's license webhooks on the license.
    pub async fn set_license_webhooks(
        &self,
        license_id: &str,
        owner_client_id: &str,
        enabled: bool,
    ) -> ServiceResult<()> {
        Ok(self
            .store
            .set_license_webhooks_enabled(license_id, owner_client_id, enabled, now_millis())
            .await?)
    }

    /// The license's organization id, generated the first time it is needed.
    pub async fn organization_id(&self, license_id: &str) -> ServiceResult<String> {
        self.store
            .organization_id(license_id, &new_organization_id())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no license {license_id}")))
    }

    /// Sets the license's organization id (the platform's own, if it has one).
    pub async fn set_organization_id(
        &self,
        license_id: &str,
        organization_id: &str,
    ) -> ServiceResult<()> {
        let valid = !organization_id.is_empty()
            && organization_id.len() <= 64
            && organization_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(ServiceError::Invalid(ValidationError::new(
                "organization_id",
                "must be 1 to 64 letters, digits, '-', '_' or '.'",
            )));
        }
        if self
            .store
            .set_organization_id(license_id, organization_id)
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("no license {license_id}")))
        }
    }
}
