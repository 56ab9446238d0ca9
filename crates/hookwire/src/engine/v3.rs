//! Ingest of LiveChat v3 events: committed with a delivery per v3 webhook
//! their filters admit, then handed to the same dispatcher as v2 deliveries.

use super::attempt::AttemptReport;
use super::{Engine, IngestAnswer, TestSend};
use crate::secret::{new_event_id, random_hex};
use crate::store::{
    now_millis, EventBody, EventName, NewV3Event, StoreError, V3Body, V3Extra, V3Webhook,
};
use hookwire_livechat::v3::{sample, V3Event};
use hookwire_livechat::DataTypes;

/// A new organization id: 128 random bits in the UUID layout LiveChat's
/// organization ids have.
pub fn new_organization_id() -> String {
    let hex = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Engine {
    /// A test send to a v3 webhook: a sample payload of its action (every
    /// optional key present) in the six-key envelope with its `secret_key`,
    /// attempted now as the dispatcher would, committing nothing. `None`
    /// without a sender.
    pub async fn attempt_now_v3(
        &self,
        webhook: &V3Webhook,
        organization_id: String,
    ) -> Result<Option<AttemptReport>, StoreError> {
        let payload = serde_json::value::to_raw_value(&sample::payload(webhook.action, true))
            .map_err(|e| StoreError::unavailable(format!("the sample payload: {e}")))?;
        let event = EventBody {
            unique_id: new_event_id(),
            license_id: webhook.license_id.clone(),
            event_type: EventName::V3(webhook.action),
            sections: Default::default(),
            v3: Some(V3Body {
                action: webhook.action,
                payload,
                extra: V3Extra {
                    organization_id,
                    chat_properties: None,
                    chat_presence_user_ids: None,
                },
            }),
        };
        self.test_send(TestSend {
            license_id: &webhook.license_id,
            webhook_id: &webhook.id,
            signed: webhook.signed,
            url: webhook.url.as_stored(),
            data_types: DataTypes::from_bits(webhook.additional_data.bits()),
            v3_secret_key: Some(webhook.secret_key.clone()),
            event,
        })
        .await
    }

    /// Commits validated v3 events with their deliveries, then hands the
    /// fresh deliveries to the dispatcher. Answers only after the commit.
    pub async fn ingest_v3(
        &self,
        events: Vec<(V3Event, Option<(String, String)>)>,
    ) -> Result<Vec<IngestAnswer>, StoreError> {
        let now = now_millis();
        let names: Vec<&'static str> = events.iter().map(|(ev, _)| ev.action.as_str()).collect();
        let new_events = events
            .into_iter()
            .map(|(ev, idempotency)| NewV3Event {
                unique_id: new_event_id(),
                license_id: ev.license_id,
                action: ev.action,
                payload: ev.payload,
                context: ev.context,
                agent_id: ev.agent_id,
                order_key: ev.ordering_key,
                new_organization_id: new_organization_id(),
                idempotency,
                received_at: now,
            })
            .collect();
        let handover = self.handover(now);
        let outcomes = self.store.ingest_v3(new_events, handover.handoff).await?;
        Ok(self.hand_over(outcomes, names, handover.epoch))
    }
}
