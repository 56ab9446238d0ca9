//! Sending operator alerts: a task that claims due alerts (leased, so nodes
//! sharing a database never send one twice at once), POSTs each to the
//! operator's endpoint and records the answer. A 2xx acknowledges; anything
//! else is retried on the deliveries' retry schedule, then given up. Like
//! deliveries, alerts are claimed and sent only while this node's heartbeat
//! is fresh, and a send in flight at a fence is abandoned unrecorded.
//!
//! The endpoint is the operator's own configuration, not a stranger's URL,
//! so it is not put through the SSRF guard that webhook targets are.

use super::rfc3339;
use crate::config::OperatorWebhook;
use crate::engine::liveness::{Liveness, Ticket};
use crate::engine::retry::RetryPolicy;
use crate::secret::{standard_webhooks_signature, Secret};
use crate::store::{now_millis, AlertJob, Millis, NextState, Store};
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Alerts claimed (and sent at once) per round.
const CLAIM: usize = 32;

/// How the sender works, from the settings.
pub struct SendSettings {
    pub endpoint: OperatorWebhook,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    /// How long a claimed alert is this node's; longer than `timeout`.
    pub lease: Duration,
    /// How often due retries are looked for when nothing wakes the task.
    pub poll_interval: Duration,
}

/// The body of `job`: `{"type", "timestamp", "data"}`, the Standard Webhooks
/// payload convention. `Err` if its stored data is not a JSON object.
pub fn body(job: &AlertJob) -> Result<Vec<u8>, String> {
    let data: Value =
        serde_json::from_str(&job.data).map_err(|e| format!("stored data is not JSON: {e}"))?;
    if !data.is_object() {
        return Err("stored data is not a JSON object".into());
    }
    let payload = json!({
        "type": job.kind.as_str(),
        "timestamp": rfc3339(job.created_at),
        "data": data,
    });
    Ok(payload.to_string().into_bytes())
}

/// The Standard Webhooks headers of one attempt: `webhook-id`,
/// `webhook-timestamp` (seconds) and, with a secret, `webhook-signature`.
pub fn headers(
    secret: Option<&Secret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    if let Some(signature) =
        secret.and_then(|s| standard_webhooks_signature(s.expose(), id, timestamp, body))
    {
        headers.push(("webhook-signature", signature));
    }
    headers
}

struct AlertSender {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    settings: SendSettings,
    liveness: Liveness,
}

/// Starts the task; it ends soon after `stop`. Alerts it holds unsent then
/// are claimed again once their lease runs out.
pub fn spawn(
    store: Arc<dyn Store>,
    settings: SendSettings,
    liveness: Liveness,
    wake: Arc<Notify>,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .build()?;
    let sender = Arc::new(AlertSender {
        store,
        client,
        settings,
        liveness,
    });
    Ok(tokio::spawn(sender.run(wake, stop)))
}

impl AlertSender {
    async fn run(self: Arc<Self>, wake: Arc<Notify>, stop: CancellationToken) {
        let lease = self.settings.lease.as_millis() as Millis;
        loop {
            if stop.is_cancelled() {
                return;
            }
            let now = now_millis();
            let mut full = false;
            // Taken before the claim, so alerts claimed across a fence are
            // abandoned with the ticket; not fresh, nothing is claimed.
            if let Some(ticket) = self.liveness.ticket() {
                match self.store.claim_alerts(now, CLAIM, now + lease).await {
                    Ok(jobs) => {
                        full = jobs.len() == CLAIM;
                        futures_util::future::join_all(
                            jobs.into_iter().map(|job| self.deliver(job, &ticket)),
                        )
                        .await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming operator alerts failed; retrying")
                    }
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// One attempt at `job`, recorded. If the record is lost, the lease runs
    /// out and the alert is sent again: at least once, like deliveries. At a
    /// fence the attempt ends at once, unrecorded: the lease may be another
    /// node's.
    async fn deliver(&self, job: AlertJob, ticket: &Ticket) {
        let posted = match body(&job) {
            Ok(body) => {
                let post = self.post(&job.id, body);
                tokio::select! {
                    biased;
                    _ = ticket.lost() => return,
                    posted = post => Ok(posted),
                }
            }
            Err(error) => Err(error),
        };
        if !ticket.holds() {
            return;
        }
        let (next, error) = match posted {
            Ok(Ok(())) => (NextState::Delivered, None),
            Ok(Err(error)) => {
                let next =
                    self.settings
                        .retry
                        .after_failure(job.attempts + 1, now_millis(), true, None);
                (next, Some(error))
            }
            // Sending it again would not make it readable.
            Err(error) => (NextState::Failed, Some(error)),
        };
        let (alert_id, alert) = (job.id.as_str(), job.kind.as_str());
        match (&next, &error) {
            (NextState::Failed, Some(error)) => {
                tracing::warn!(alert_id, alert, error, "operator alert given up")
            }
            (NextState::RetryAt(_), Some(error)) => {
                tracing::info!(alert_id, alert, error, "operator alert refused; will retry")
            }
            _ => {}
        }
        let at = now_millis();
        if let Err(e) = self
            .store
            .record_alert_attempt(alert_id, at, next, error)
            .await
        {
            tracing::warn!(alert_id, error = %e, "could not record an operator alert's attempt");
        }
    }

    /// POSTs one alert; `Err` says why it was not acknowledged.
    async fn post(&self, id: &str, body: Vec<u8>) -> Result<(), String> {
        let endpoint = &self.settings.endpoint;
        let timestamp = now_millis() / 1000;
        let mut request = self
            .client
            .post(endpoint.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("hookwire/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers(endpoint.secret.as_ref(), id, timestamp, &body) {
            request = request.header(name, value);
        }
        match request.body(body).send().await {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => Err(format!("HTTP {}", answer.status().as_u16())),
            // Without the URL: it may carry credentials or a token.
            Err(e) => Err(format!("request failed: {}", e.without_url())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AlertKind;

    fn job(data: &str) -> AlertJob {
        AlertJob {
            id: "msg_1".into(),
            kind: AlertKind::BacklogHigh,
            created_at: 1_614_265_330_000,
            data: data.into(),
            attempts: 0,
        }
    }

    #[test]
    fn the_body_is_type_timestamp_and_data() {
        let body = body(&job(r#"{"pending":7,"threshold":5}"#)).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"type": "backlog.high", "timestamp": "2021-02-25T15:02:10Z",
                   "data": {"pending": 7, "threshold": 5}})
        );
        assert!(super::body(&job("[1]")).is_err());
        assert!(super::body(&job("{")).is_err());
    }

    #[test]
    fn headers_are_signed_only_with_a_secret() {
        let unsigned = headers(None, "msg_1", 1_614_265_330, b"{}");
        assert_eq!(unsigned.len(), 2);
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signed = headers(
            Some(&secret),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signed[2],
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_string()
            )
        );
    }
}
