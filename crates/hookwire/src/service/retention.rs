//! Retention per license: the platform sets a license's own (or clears it
//! back to the default), and anything asked for by an id that retention
//! has pruned is answered "pruned", not "no such thing".

use super::{Service, ServiceError, ServiceResult};
use crate::store::rules::retention::RetentionPeriod;
use crate::store::Millis;

/// A license's retention as the API and the web app show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionView {
    pub license_id: String,
    /// What applies: the license's own, or the default.
    pub retention: RetentionPeriod,
    /// The license's own; `None`: it follows the configured default.
    pub own: Option<RetentionPeriod>,
    /// When the oldest delivery still kept was made.
    pub oldest_kept_delivery: Option<Millis>,
}

impl Service {
    /// A license's retention, and its oldest kept delivery.
    pub async fn license_retention(&self, license_id: &str) -> ServiceResult<RetentionView> {
        let Some(stored) = self.store.license_retention(license_id).await? else {
            return Err(ServiceError::NotFound(format!("no license {license_id}")));
        };
        Ok(RetentionView {
            license_id: stored.license_id,
            retention: stored.retention.unwrap_or(self.default_retention),
            own: stored.retention,
            oldest_kept_delivery: self.store.oldest_kept_delivery(license_id).await?,
        })
    }

    /// Gives a license a retention of its own; `None` returns it to the default.
    pub async fn set_license_retention(
        &self,
        license_id: &str,
        retention: Option<RetentionPeriod>,
    ) -> ServiceResult<RetentionView> {
        if !self
            .store
            .set_license_retention(license_id, retention)
            .await?
        {
            return Err(ServiceError::NotFound(format!("no license {license_id}")));
        }
        self.license_retention(license_id).await
    }

    /// The answer for a delivery the license does not have: pruned, if
    /// retention removed it, or simply not there.
    pub async fn delivery_not_found(&self, license_id: &str, delivery_id: i64) -> ServiceError {
        let stored = self.store.license_retention(license_id).await;
        match stored {
            Ok(Some(r)) if delivery_id > 0 && delivery_id <= r.pruned_through_id => {
                let retention = r.retention.unwrap_or(self.default_retention);
                ServiceError::NotFound(format!(
                    "delivery {delivery_id} was pruned: finished deliveries are kept for \
                     {retention} (this license's retention)"
                ))
            }
            _ => ServiceError::NotFound(format!("no delivery {delivery_id}")),
        }
    }
}
