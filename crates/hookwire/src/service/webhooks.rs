//! Webhooks: create, change, switch on and off, delete, rotate the signing
//! secret. URLs are sealed here, on the way to the store.

use super::{Service, ServiceError, ServiceResult};
use crate::secret::{new_signing_secret, random_hex, Secret};
use crate::store::{now_millis, HeldDeliveries, Millis, NewWebhook, Webhook, WebhookPatch};
use hookwire_livechat::{DataTypes, EventType, TargetUrl, ValidationError};

/// The most webhooks one license may have.
pub const MAX_WEBHOOKS_PER_LICENSE: usize = 100;

/// A webhook as a license asks for it, validated by the domain types.
pub struct WebhookSpec {
    pub event_type: EventType,
    pub data_types: DataTypes,
    /// As typed: the password, if any, in the clear. It is sealed here.
    pub url: TargetUrl,
    /// Ordered delivery per chat (visitor, ticket); LiveChat's own routes
    /// never ask for it.
    pub ordered: bool,
}

/// What a change to a webhook sets; `None` leaves a field as it is.
#[derive(Default)]
pub struct WebhookChanges {
    /// As typed; sealed before it is stored.
    pub url: Option<TargetUrl>,
    /// Data type names, checked against the webhook's event type.
    pub data_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// Drop the deliveries held while the webhook was disabled instead of
    /// delivering them; only with `enabled: Some(true)`.
    pub discard_held: bool,
    /// `Some(None)` removes the rate limit.
    pub max_per_second: Option<Option<u32>>,
    /// Switches ordered delivery on or off.
    pub ordered: Option<bool>,
    /// A v3 webhook's: log the events its filters exclude.
    pub log_filtered: Option<bool>,
}

impl WebhookChanges {
    /// The store's patch for these changes, with `data_types` checked by the
    /// caller and the URL left for it to seal: what v2 and v3 webhooks share.
    pub(super) fn into_patch(self, data_types: Option<DataTypes>) -> ServiceResult<WebhookPatch> {
        if self.discard_held && self.enabled != Some(true) {
            return Err(ValidationError::new(
                "discard_held",
                "applies only when enabling the webhook: send it with \"enabled\": true",
            )
            .into());
        }
        Ok(WebhookPatch {
            url: None,
            data_types,
            enabled: self.enabled,
            held: if self.discard_held {
                HeldDeliveries::Discard
            } else {
                HeldDeliveries::Deliver
            },
            max_per_second: self.max_per_second,
            ordered: self.ordered,
            log_filtered: self.log_filtered,
            at: now_millis(),
        })
    }
}

impl Service {
    /// Creates a webhook within the per-license limit.
    pub async fn create_webhook(
        &self,
        license_id: &str,
        spec: WebhookSpec,
    ) -> ServiceResult<Webhook> {
        let existing = self.store.list_webhooks(license_id).await?;
        if existing.len() >= MAX_WEBHOOKS_PER_LICENSE {
            return Err(ServiceError::Conflict(format!(
                "a license may have at most {MAX_WEBHOOKS_PER_LICENSE} webhooks"
            )));
        }
        Ok(self
            .store
            .create_webhook(NewWebhook {
                id: random_hex(16),
                license_id: license_id.to_string(),
                event_type: spec.event_type,
                data_types: spec.data_types,
                url: self.cipher.seal_url(&spec.url),
                token: random_hex(16),
                ordered: spec.ordered,
                created_at: now_millis(),
            })
            .await?)
    }

    /// The license's webhook, or `NotFound` naming it.
    pub async fn webhook(&self, license_id: &str, id: &str) -> ServiceResult<Webhook> {
        self.store
            .get_webhook(license_id, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Applies `changes`. Switching a webhook on makes its waiting deliveries
    /// due (its held ones too, oldest first, unless `discard_held` drops
    /// them), so the dispatcher is woken.
    pub async fn update_webhook(
        &self,
        license_id: &str,
        id: &str,
        changes: WebhookChanges,
    ) -> ServiceResult<Webhook> {
        let data_types = match &changes.data_types {
            Some(names) => {
                let current = self.webhook(license_id, id).await?;
                Some(DataTypes::parse_for(current.event_type, names)?)
            }
            None => None,
        };
        let sealed_url = changes.url.as_ref().map(|u| self.cipher.seal_url(u));
        let mut patch = changes.into_patch(data_types)?;
        patch.url = sealed_url;
        let enabled = patch.enabled;
        let updated = self
            .store
            .update_webhook(license_id, id, patch)
            .await?
            .ok_or_else(|| not_found(id))?;
        if enabled == Some(true) {
            self.made_due();
        }
        Ok(updated)
    }

    /// Deletes a webhook; its pending deliveries end as failed, its held
    /// ones as discarded.
    pub async fn delete_webhook(&self, license_id: &str, id: &str) -> ServiceResult<()> {
        if self
            .store
            .delete_webhook(license_id, id, now_millis())
            .await?
        {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// Creates or rotates a webhook's signing secret and answers it; this is
    /// the only time it is shown. The old one keeps signing for the grace
    /// period.
    pub async fn rotate_signing_secret(&self, license_id: &str, id: &str) -> ServiceResult<Secret> {
        let secret = new_signing_secret();
        let sealed = self.cipher.seal_signing_secret(&secret);
        let grace_until = now_millis() + self.secret_rotation_grace.as_millis() as Millis;
        if self
            .store
            .rotate_signing_secret(license_id, id, sealed, grace_until)
            .await?
        {
            Ok(secret)
        } else {
            Err(not_found(id))
        }
    }

    /// Seals URL passwords stored in the clear (before encryption at rest
    /// existed); answers how many URLs it sealed.
    pub async fn seal_legacy_passwords(&self) -> ServiceResult<usize> {
        let mut sealed = 0;
        for (id, stored) in self.store.all_webhook_urls().await? {
            let Ok(url) = TargetUrl::parse_stored(&stored) else {
                continue;
            };
            // A password sealed already, under this key or a former one, is
            // left as it is.
            let in_the_clear = url
                .raw_password()
                .is_some_and(|p| !p.starts_with(crate::secret::SEALED_PREFIX));
            if in_the_clear
                && self
                    .store
                    .replace_webhook_url(&id, &stored, &self.cipher.seal_url(&url))
                    .await?
            {
                sealed += 1;
            }
        }
        Ok(sealed)
    }
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no webhook {id}"))
}
