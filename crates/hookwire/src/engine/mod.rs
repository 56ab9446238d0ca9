//! The delivery engine: accepting events (validated, committed, handed to the
//! dispatcher), attempting their deliveries, telling the operator what goes
//! wrong (`alerts`), and, on a shared database, keeping this node's
//! heartbeat (`heartbeat`, `liveness`).

pub mod alerts;
pub mod attempt;
pub mod dispatcher;
pub mod heartbeat;
pub mod liveness;
pub mod prune;
pub mod rate;
pub mod retry;
pub mod ssrf;
mod v3;

pub use v3::new_organization_id;

use crate::secret::{hash_secret, new_event_id, token_is_for, token_time_prefix, Secret};
use crate::store::{
    now_millis, DeliveryJob, EventBody, Handoff, IngestOutcome, Millis, NewEvent, Store,
    StoreError, TokenGrant, TokenKey, Webhook,
};
use attempt::{AttemptReport, Sender};
use dispatcher::DispatcherHandle;
use hookwire_livechat::{DataTypes, IncomingEvent};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The answer to one ingested event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestAnswer {
    Accepted { event_id: String, deliveries: usize },
    UnknownLicense,
    KeyReused,
}

/// What a test send goes to: a webhook as the sender needs it.
pub(crate) struct TestSend<'a> {
    pub license_id: &'a str,
    pub webhook_id: &'a str,
    pub signed: bool,
    /// As stored (its password sealed).
    pub url: &'a str,
    pub data_types: DataTypes,
    /// A v3 webhook's, sealed.
    pub v3_secret_key: Option<String>,
    pub event: EventBody,
}

/// What the engine needs besides the store and the dispatcher.
pub struct EngineSettings {
    pub token_secret: Secret,
    pub token_ttl: Duration,
    pub lease: Duration,
    pub max_backlog: u64,
    /// Counts ingested events (and, in the dispatcher, attempts).
    pub metrics: crate::telemetry::Metrics,
    /// Raises `backlog.high` past `backlog_alert_threshold`; `None`: no alerts.
    pub alerter: Option<alerts::Alerter>,
    pub backlog_alert_threshold: u64,
}

pub struct Engine {
    store: Arc<dyn Store>,
    dispatcher: DispatcherHandle,
    token_secret: Secret,
    token_ttl: Duration,
    lease: Duration,
    /// Pending and held deliveries, as last counted plus what was accepted since.
    backlog: AtomicU64,
    max_backlog: u64,
    /// For attempts made outside the delivery log (the web app's "send test").
    sender: Option<Arc<Sender>>,
    metrics: crate::telemetry::Metrics,
    alerter: Option<alerts::Alerter>,
    backlog_alert_threshold: u64,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, dispatcher: DispatcherHandle, s: EngineSettings) -> Self {
        Engine {
            store,
            dispatcher,
            token_secret: s.token_secret,
            token_ttl: s.token_ttl,
            lease: s.lease,
            backlog: AtomicU64::new(0),
            max_backlog: s.max_backlog,
            sender: None,
            metrics: s.metrics,
            alerter: s.alerter,
            backlog_alert_threshold: s.backlog_alert_threshold,
        }
    }

    /// This server's metrics (`GET /metrics`).
    pub fn metrics(&self) -> &crate::telemetry::Metrics {
        &self.metrics
    }

    /// Whether ingest should refuse work for now: the backlog of pending and
    /// held deliveries has reached `max_backlog`. Cheap: an atomic read.
    pub fn backlog_full(&self) -> bool {
        self.backlog.load(Ordering::Relaxed) >= self.max_backlog
    }

    /// Recounts the backlog every second until `stop`; between counts,
    /// accepted deliveries are added as they are committed. Each count is
    /// also what `backlog.high` alerts watch.
    pub async fn track_backlog(self: Arc<Self>, stop: CancellationToken) {
        let mut watch = alerts::BacklogWatch::default();
        loop {
            match self.store.backlog().await {
                Ok(backlog) => {
                    // Held deliveries take room as pending ones do, so a
                    // webhook left disabled shows in both the cap and the alert.
                    let n = backlog.total();
                    self.backlog.store(n, Ordering::Relaxed);
                    if let Some(alerter) = &self.alerter {
                        let (threshold, now) = (self.backlog_alert_threshold, now_millis());
                        if let Some(quiet_since) = watch.observe(n, threshold, now) {
                            alerter
                                .backlog_high(backlog, threshold, now, quiet_since)
                                .await;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "counting the backlog failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Every `every`, one INFO line: the attempts since the last one
    /// (delivered, retried, failed) and the backlog (pending and held). Successful attempts are
    /// logged one by one only at DEBUG, so this is what a default log shows
    /// of a healthy flow.
    pub async fn log_summaries(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let tally = self.metrics.take_tally();
            tracing::info!(
                delivered = tally.delivered,
                retried = tally.retried,
                failed = tally.failed,
                queue_depth = self.backlog.load(Ordering::Relaxed),
                "attempts since the last summary"
            );
        }
    }

    /// Lets [`Engine::attempt_now`] send test events through `sender`.
    pub fn with_sender(mut self, sender: Arc<Sender>) -> Self {
        self.sender = Some(sender);
        self
    }

    /// The exact body a delivery of `event` with `data_types` to webhook
    /// `webhook_id` sends, as the web app shows it: a v3 delivery's
    /// `secret_key` masked.
    pub fn render_body(
        &self,
        event: &EventBody,
        data_types: DataTypes,
        webhook_id: &str,
    ) -> Vec<u8> {
        let v3 = attempt::V3Recipient {
            webhook_id,
            secret_key: "****",
        };
        attempt::render_body(&self.token_secret, event, data_types, Some(v3))
    }

    /// Attempts one delivery of `event` to `webhook` right now, the way the
    /// dispatcher would (same client, SSRF guard, body and classification),
    /// without committing anything: a test send. `None` without a sender.
    /// Signed like a delivery when the webhook has a signing secret.
    pub async fn attempt_now(
        &self,
        webhook: &Webhook,
        event: EventBody,
    ) -> Result<Option<AttemptReport>, StoreError> {
        self.test_send(TestSend {
            license_id: &webhook.license_id,
            webhook_id: &webhook.id,
            signed: webhook.signed,
            url: webhook.url.as_stored(),
            data_types: webhook.data_types,
            v3_secret_key: None,
            event,
        })
        .await
    }

    /// A test send to any webhook, v2 or v3 (see [`Engine::attempt_now`]).
    pub(crate) async fn test_send(
        &self,
        to: TestSend<'_>,
    ) -> Result<Option<AttemptReport>, StoreError> {
        let Some(sender) = self.sender.as_ref() else {
            return Ok(None);
        };
        let signing_secrets = if to.signed {
            self.store
                .signing_secrets(to.license_id, to.webhook_id, now_millis())
                .await?
        } else {
            Vec::new()
        };
        let job = DeliveryJob {
            delivery_id: 0,
            webhook_id: to.webhook_id.to_string(),
            url: to.url.to_string(),
            data_types: to.data_types,
            attempts_in_round: 0,
            // A test send is not a delivery: no lease to respect.
            lease_until: Millis::MAX,
            event: Arc::new(to.event),
            signing_secrets,
            max_per_second: None,
            v3_secret_key: to.v3_secret_key,
            order_key: None,
        };
        Ok(Some(sender.attempt(&job).await))
    }

    /// What a per-event token (from a delivery's body) grants: `None` if it
    /// is not one. The events of the token's millisecond are read by the id
    /// index and the one its MAC is for kept; a token issued before tokens
    /// named their event's time is looked up by its stored hash.
    pub async fn token_grant(&self, token: &str) -> Result<Option<TokenGrant>, StoreError> {
        let Some(prefix) = token_time_prefix(token) else {
            return Ok(None);
        };
        let candidates = self
            .store
            .token_grants(TokenKey::EventsAt(prefix.to_string()))
            .await?;
        if let Some(grant) = candidates
            .into_iter()
            .find(|g| token_is_for(&self.token_secret, token, &g.event_id))
        {
            return Ok(Some(grant));
        }
        // A token issued before tokens named their event's time.
        let legacy = self
            .store
            .token_grants(TokenKey::LegacyHash(hash_secret(token)))
            .await?;
        Ok(legacy.into_iter().next())
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
        let event_types: Vec<_> = events
            .iter()
            .map(|(ev, _)| ev.event_type.as_str())
            .collect();
        let new_events = events
            .into_iter()
            .map(|(ev, idempotency)| {
                NewEvent {
                    // Time-ordered, and its token names it: no random key
                    // joins an index at ingest (see `secret::event_token`).
                    unique_id: new_event_id(),
                    token_hash: None,
                    license_id: ev.license_id,
                    event_type: ev.event_type,
                    sections: ev.sections,
                    token_expires_at: expires,
                    chat_tags: ev.chat_tags,
                    visitor: ev.visitor,
                    order_key: ev.ordering_key,
                    idempotency,
                    received_at: now,
                }
            })
            .collect();
        let handover = self.handover(now);
        let outcomes = self.store.ingest(new_events, handover.handoff).await?;
        Ok(self.hand_over(outcomes, event_types, handover.epoch))
    }

    /// Whether ingest hands its fresh deliveries straight to this node's
    /// dispatcher (a [`Handover`]): the epoch they are handed over in, and their lease. The
    /// epoch is read before the store leases anything: deliveries leased
    /// across a fence carry the old epoch, and the dispatcher drops them.
    fn handover(&self, now: Millis) -> Handover {
        let epoch = self.dispatcher.handoff_epoch();
        let handoff = epoch.map(|_| Handoff {
            lease_until: now + self.lease.as_millis() as Millis,
            saturated: self.dispatcher.saturated(),
        });
        Handover { epoch, handoff }
    }

    /// The answers to committed events (named for the metrics), their
    /// handed-over deliveries submitted and the dispatcher woken for those
    /// left to the poller.
    fn hand_over(
        &self,
        outcomes: Vec<IngestOutcome>,
        event_types: Vec<&'static str>,
        epoch: Option<u64>,
    ) -> Vec<IngestAnswer> {
        let mut answers = Vec::with_capacity(outcomes.len());
        let mut fresh = Vec::new();
        let mut left_unleased = false;
        for (outcome, event_type) in outcomes.into_iter().zip(event_types) {
            answers.push(match outcome {
                IngestOutcome::Accepted {
                    event_id,
                    deliveries,
                    delivery_count,
                    held,
                } => {
                    self.metrics.event_ingested(event_type);
                    // Held deliveries wait for their webhook; nothing to claim.
                    left_unleased |= deliveries.len() + held < delivery_count;
                    fresh.extend(deliveries);
                    self.backlog
                        .fetch_add(delivery_count as u64, Ordering::Relaxed);
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
        if left_unleased {
            // Not handed off: the deliveries are unleased and the poller claims them.
            self.dispatcher.wake();
        }
        if let Some(epoch) = epoch {
            self.dispatcher.submit(fresh, epoch);
        }
        answers
    }
}

/// How one ingest call hands its fresh deliveries to this node's dispatcher:
/// both set, or neither (past the high-water mark, or while the node is not
/// fresh, the poller claims them instead).
struct Handover {
    /// The liveness epoch the deliveries are leased in.
    epoch: Option<u64>,
    /// The lease the store writes on them.
    handoff: Option<Handoff>,
}
