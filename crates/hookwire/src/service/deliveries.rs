//! Redelivery: one delivery, a webhook's failures since a time, and the bulk
//! replay. Each makes deliveries due and wakes the dispatcher once.

use super::{Service, ServiceError, ServiceResult};
use crate::store::{now_millis, Millis, Redelivery, ReplayBatch, ReplayQuery};

/// Whose failed deliveries [`Service::redeliver_failed_since`] takes.
pub enum RedeliverySince<'a> {
    /// One webhook's.
    Webhook(&'a str),
    /// Every webhook's of the license.
    License,
}

impl Service {
    /// Makes one delivery pending again with a fresh retry budget. A held
    /// one is refused (`Conflict`): it waits for its webhook, and enabling
    /// the webhook is what sends it (or discards it).
    pub async fn redeliver(&self, license_id: &str, delivery_id: i64) -> ServiceResult<()> {
        match self
            .store
            .redeliver(license_id, delivery_id, now_millis())
            .await?
        {
            Redelivery::Pending => {
                self.made_due();
                Ok(())
            }
            Redelivery::Held => Err(ServiceError::Conflict(format!(
                "delivery {delivery_id} is held until its webhook is enabled: \
                 enabling the webhook delivers it with the rest it holds \
                 (or discards them, with \"discard_held\": true)"
            ))),
            Redelivery::Unknown => Err(self.delivery_not_found(license_id, delivery_id).await),
        }
    }

    /// Redelivers the failed deliveries created since `since`; answers how many.
    pub async fn redeliver_failed_since(
        &self,
        license_id: &str,
        scope: RedeliverySince<'_>,
        since: Millis,
    ) -> ServiceResult<u64> {
        let webhooks = match scope {
            RedeliverySince::Webhook(id) => vec![self.webhook(license_id, id).await?.id],
            RedeliverySince::License => self
                .store
                .list_webhooks(license_id)
                .await?
                .into_iter()
                .map(|w| w.id)
                .collect(),
        };
        let now = now_millis();
        let mut count = 0;
        for id in &webhooks {
            count += self
                .store
                .redeliver_failed_since(license_id, id, since, now)
                .await?;
        }
        if count > 0 {
            self.made_due();
        }
        Ok(count)
    }

    /// One batch of a bulk replay (`hookwire replay`): the next `limit`
    /// matching deliveries after `after`, in id order.
    pub async fn redeliver_batch(
        &self,
        query: &ReplayQuery<'_>,
        after: i64,
        limit: usize,
    ) -> ServiceResult<ReplayBatch> {
        if let Some(id) = query.webhook_id {
            self.webhook(query.license_id, id).await?;
        }
        let batch = self
            .store
            .redeliver_batch(query, after, limit, now_millis())
            .await?;
        if batch.redelivered > 0 {
            self.made_due();
        }
        Ok(batch)
    }
}
