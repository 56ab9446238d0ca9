//! Ingest of LiveChat v3 events: committed with a delivery per v3 webhook
//! their filters admit, then handed to the same dispatcher as v2 deliveries.

use super::{Engine, IngestAnswer};
use crate::secret::{new_event_id, random_hex};
use crate::store::{now_millis, NewV3Event, StoreError};
use hookwire_livechat::v3::V3Event;

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
