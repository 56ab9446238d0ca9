//! The delivery engine: accepting events (validated, committed, handed to the
//! dispatcher) and attempting their deliveries.

pub mod attempt;
pub mod dispatcher;
pub mod retry;
pub mod ssrf;

use crate::secret::{event_token, hash_secret, random_hex, Secret};
use crate::store::{
    now_millis, DeliveryJob, EventBody, IngestOutcome, Millis, NewEvent, Store, StoreError, Webhook,
};
use attempt::{AttemptReport, Sender};
use dispatcher::DispatcherHandle;
use hookwire_livechat::DataTypes;
use hookwire_livechat::IncomingEvent;
use std::sync::Arc;
use std::time::Duration;

/// The answer to one ingested event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestAnswer {
    Accepted { event_id: String, deliveries: usize },
    UnknownLicense,
    KeyReused,
}

pub struct Engine {
    store: Arc<dyn Store>,
    dispatcher: DispatcherHandle,
    token_secret: Secret,
    token_ttl: Duration,
    lease: Duration,
    /// For attempts made outside the delivery log (the web app's "send test").
    sender: Option<Arc<Sender>>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        dispatcher: DispatcherHandle,
        token_secret: Secret,
        token_ttl: Duration,
        lease: Duration,
    ) -> Self {
        Engine {
            store,
            dispatcher,
            token_secret,
            token_ttl,
            lease,
            sender: None,
        }
    }

    /// Lets [`Engine::attempt_now`] send test events through `sender`.
    pub fn with_sender(mut self, sender: Arc<Sender>) -> Self {
        self.sender = Some(sender);
        self
    }

    /// The exact body a delivery of `event` with `data_types` sends.
    pub fn render_body(&self, event: &EventBody, data_types: DataTypes) -> Vec<u8> {
        attempt::render_body(&self.token_secret, event, data_types)
    }

    /// Attempts one delivery of `event` to `webhook` right now, the way the
    /// dispatcher would (same client, SSRF guard, body and classification),
    /// without committing anything: a test send. `None` without a sender.
    pub async fn attempt_now(&self, webhook: &Webhook, event: EventBody) -> Option<AttemptReport> {
        let sender = self.sender.as_ref()?;
        let job = DeliveryJob {
            delivery_id: 0,
            webhook_id: webhook.id.clone(),
            url: webhook.url.as_stored().to_string(),
            data_types: webhook.data_types,
            attempts_in_round: 0,
            event: Arc::new(event),
        };
        Some(sender.attempt(&job).await)
    }

    pub fn dispatcher(&self) -> &DispatcherHandle {
        &self.dispatcher
    }

    /// Commits validated events with their deliveries, then hands the fresh
    /// deliveries to the dispatcher. Answers only after the commit.
    ///
    /// `idempotency` carries, per event, the caller's key and a hash of its request.
    pub async fn ingest(
        &self,
        events: Vec<(IncomingEvent, Option<(String, String)>)>,
    ) -> Result<Vec<IngestAnswer>, StoreError> {
        let now = now_millis();
        let expires = now + self.token_ttl.as_millis() as Millis;
        let new_events = events
            .into_iter()
            .map(|(ev, idempotency)| {
                let unique_id = random_hex(16);
                let token = event_token(&self.token_secret, &unique_id);
                NewEvent {
                    token_hash: hash_secret(&token),
                    unique_id,
                    license_id: ev.license_id,
                    event_type: ev.event_type,
                    sections: ev.sections,
                    token_expires_at: expires,
                    chat_tags: ev.chat_tags,
                    visitor: ev.visitor,
                    idempotency,
                    received_at: now,
                }
            })
            .collect();
        let handoff = self
            .dispatcher
            .has_room()
            .then(|| now + self.lease.as_millis() as Millis);
        let outcomes = self.store.ingest(new_events, handoff).await?;
        let mut answers = Vec::with_capacity(outcomes.len());
        let mut fresh = Vec::new();
        for outcome in outcomes {
            answers.push(match outcome {
                IngestOutcome::Accepted {
                    event_id,
                    deliveries,
                    delivery_count,
                } => {
                    fresh.extend(deliveries);
                    IngestAnswer::Accepted {
                        event_id,
                        deliveries: delivery_count,
                    }
                }
                IngestOutcome::Replayed {
                    event_id,
                    delivery_count,
                } => IngestAnswer::Accepted {
                    event_id,
                    deliveries: delivery_count,
                },
                IngestOutcome::KeyReused => IngestAnswer::KeyReused,
                IngestOutcome::UnknownLicense => IngestAnswer::UnknownLicense,
            });
        }
        if handoff.is_none() {
            // Not handed off: the deliveries are unleased and the poller claims them.
            self.dispatcher.wake();
        }
        self.dispatcher.submit(fresh);
        Ok(answers)
    }
}
