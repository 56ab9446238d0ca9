//! Operator alerts: hookwire's own events, for the operator's endpoint
//! (`operator_webhook_url`).
//!
//! [`Alerter`] writes them to the store where something changes state: the
//! dispatcher disables a webhook (`webhook.disabled`), a webhook's failing
//! run begins (`webhook.failing`, at most once an hour per webhook), a
//! delivery ends `failed` (`delivery.failed`, batched per license, one per
//! `failed_alert_window`), and [`BacklogWatch`] sees the backlog cross
//! `backlog_alert_threshold` (`backlog.high`). Nothing is written for a
//! delivered attempt. [`send`] drains the table: each alert is POSTed as
//! `{"type", "timestamp", "data"}`, signed the Standard Webhooks way, and
//! retried on the deliveries' schedule until a 2xx.
//!
//! Writing an alert never fails what caused it: an alert the store refuses
//! is logged and dropped.

pub mod send;

use crate::secret::random_hex;
use crate::store::{AlertGuard, AlertKind, Backlog, FailedDelivery, Millis, NewAlert, Store};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::Notify;

const HOUR: Millis = 3_600_000;
/// The most delivery ids one `delivery.failed` alert lists (`count` goes on).
pub const BATCH_IDS: usize = 100;

/// Writes alerts; cheap to clone. Wakes this node's sender after each, so
/// an alert goes out at once rather than at the next poll.
#[derive(Clone)]
pub struct Alerter {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    /// A license's `delivery.failed` alerts are at least this far apart.
    failed_window: Millis,
}

/// A new alert's id: `msg_` and 128 random bits, as Standard Webhooks names
/// messages. The `webhook-id` header; the same on every retry.
pub fn new_alert_id() -> String {
    format!("msg_{}", random_hex(16))
}

/// A time as the payload writes it: RFC 3339, UTC.
pub fn rfc3339(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Alerter {
    pub fn new(store: Arc<dyn Store>, failed_window: std::time::Duration) -> Alerter {
        Alerter {
            store,
            wake: Arc::new(Notify::new()),
            failed_window: failed_window.as_millis() as Millis,
        }
    }

    /// What the sender waits on besides its poll interval.
    pub fn wake_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    async fn insert(
        &self,
        kind: AlertKind,
        license_id: Option<&str>,
        subject: Option<&str>,
        data: Value,
        at: Millis,
        guard: AlertGuard,
    ) {
        let alert = NewAlert {
            id: new_alert_id(),
            kind,
            license_id: license_id.map(String::from),
            subject: subject.map(String::from),
            data: data.to_string(),
            created_at: at,
        };
        match self.store.insert_alert(alert, guard).await {
            Ok(true) => {
                tracing::info!(alert = kind.as_str(), license_id, "operator alert raised");
                self.wake.notify_one();
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(alert = kind.as_str(), error = %e, "could not keep an operator alert")
            }
        }
    }

    /// The alerts a failed attempt raises: `webhook.disabled` if it disabled
    /// its webhook, else `webhook.failing` if it may have begun a failing
    /// run; and `delivery.failed` if its delivery has no retries left.
    pub async fn after_failure(&self, f: Failure<'_>) {
        if let Some((reason, gone)) = f.disabled {
            self.webhook_disabled(f.license_id, f.webhook_id, gone, reason, f.at)
                .await;
        } else if f.may_begin_failing {
            self.webhook_failing(f.license_id, f.webhook_id, f.at, f.status, f.error)
                .await;
        }
        if f.failed_for_good {
            self.delivery_failed(f.license_id, f.delivery_id, f.webhook_id, f.at)
                .await;
        }
    }

    /// The dispatcher disabled a webhook (`disable_webhook` answered true).
    async fn webhook_disabled(
        &self,
        license_id: &str,
        webhook_id: &str,
        gone: bool,
        reason: &str,
        at: Millis,
    ) {
        let data = json!({
            "webhook_id": webhook_id,
            "license_id": license_id,
            "cause": if gone { "gone" } else { "failing" },
            "reason": reason,
        });
        let kind = AlertKind::WebhookDisabled;
        self.insert(
            kind,
            Some(license_id),
            Some(webhook_id),
            data,
            at,
            AlertGuard::default(),
        )
        .await;
    }

    /// An attempt at `at` failed and was recorded. Raises `webhook.failing`
    /// only if that attempt began the webhook's failing run (the store kept
    /// `failing_since = at`), and not twice within an hour.
    async fn webhook_failing(
        &self,
        license_id: &str,
        webhook_id: &str,
        at: Millis,
        status: Option<u16>,
        error: Option<&str>,
    ) {
        let data = json!({
            "webhook_id": webhook_id,
            "license_id": license_id,
            "failing_since": rfc3339(at),
            "status": status,
            "error": error,
        });
        let guard = AlertGuard {
            quiet_since: Some(at - HOUR),
            failing_since: Some(at),
        };
        let kind = AlertKind::WebhookFailing;
        self.insert(kind, Some(license_id), Some(webhook_id), data, at, guard)
            .await;
    }

    /// A delivery ended `failed`: counted in its license's batch.
    async fn delivery_failed(
        &self,
        license_id: &str,
        delivery_id: i64,
        webhook_id: &str,
        at: Millis,
    ) {
        let failed = FailedDelivery {
            license_id: license_id.to_string(),
            delivery_id,
            webhook_id: webhook_id.to_string(),
            at,
            new_alert_id: new_alert_id(),
            spacing: self.failed_window,
            max_ids: BATCH_IDS,
        };
        match self.store.add_failed_delivery(failed).await {
            Ok(()) => self.wake.notify_one(),
            Err(e) => {
                tracing::warn!(error = %e, "could not count a failed delivery for the operator")
            }
        }
    }

    /// The backlog (pending and held together) is past its threshold;
    /// `quiet_since` as [`BacklogWatch`] says.
    pub async fn backlog_high(
        &self,
        backlog: Backlog,
        threshold: u64,
        at: Millis,
        quiet_since: Millis,
    ) {
        let data =
            json!({ "pending": backlog.pending, "held": backlog.held, "threshold": threshold });
        let guard = AlertGuard {
            quiet_since: Some(quiet_since),
            failing_since: None,
        };
        self.insert(AlertKind::BacklogHigh, None, None, data, at, guard)
            .await;
    }
}

/// A failed attempt, as far as alerts care.
pub struct Failure<'a> {
    pub license_id: &'a str,
    pub webhook_id: &'a str,
    pub delivery_id: i64,
    pub at: Millis,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    /// The reason, if this attempt disabled its webhook, and whether for a 410.
    pub disabled: Option<(&'a str, bool)>,
    /// Recorded, and not a 410: it may have begun its webhook's failing run.
    pub may_begin_failing: bool,
    /// Recorded, and its delivery has no retries left.
    pub failed_for_good: bool,
}

/// When the backlog deserves a `backlog.high` alert: on crossing the
/// threshold, then once an hour while it stays past it. Fed every count
/// (about once a second); asks the store only when an alert is due, and the
/// store's once-an-hour guard keeps nodes watching the same queue from
/// repeating each other. A pure step: the time is a parameter.
#[derive(Debug, Default)]
pub struct BacklogWatch {
    high: bool,
    /// When the backlog last fell back under the threshold.
    fell_at: Option<Millis>,
    /// Not before then: the store was asked at most an hour ago.
    next_try: Millis,
}

impl BacklogWatch {
    /// `Some(quiet_since)` when an alert is due now: raise it unless one was
    /// raised since then (by this node or another).
    pub fn observe(&mut self, waiting: u64, threshold: u64, now: Millis) -> Option<Millis> {
        if threshold == 0 || waiting <= threshold {
            if self.high {
                self.high = false;
                self.fell_at = Some(now);
            }
            return None;
        }
        let rising = !self.high;
        self.high = true;
        if !rising && now < self.next_try {
            return None;
        }
        self.next_try = now + HOUR;
        // A rise after a fall is news even within the hour; an alert since
        // the fall means another node told of this rise already.
        let hour_ago = now - HOUR;
        Some(match (rising, self.fell_at) {
            (true, Some(fell)) => fell.max(hour_ago),
            _ => hour_ago,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_alerts_on_rising_then_hourly_then_anew_after_a_fall() {
        let mut w = BacklogWatch::default();
        assert_eq!(w.observe(5, 10, 1_000), None);
        assert_eq!(w.observe(11, 10, 2_000), Some(2_000 - HOUR));
        assert_eq!(w.observe(50, 10, 3_000), None);
        assert_eq!(w.observe(50, 10, 2_000 + HOUR - 1), None);
        assert_eq!(w.observe(50, 10, 2_000 + HOUR), Some(2_000));
        // Falls and rises again within the hour: alerted anew.
        let fell = 2_000 + HOUR + 10;
        assert_eq!(w.observe(10, 10, fell), None);
        assert_eq!(w.observe(11, 10, fell + 5), Some(fell));
        assert_eq!(w.observe(11, 10, fell + 6), None);
    }

    #[test]
    fn a_zero_threshold_never_alerts() {
        let mut w = BacklogWatch::default();
        assert_eq!(w.observe(1_000_000, 0, 1), None);
    }

    #[test]
    fn alert_ids_and_times_look_like_the_standard() {
        let id = new_alert_id();
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
        assert_ne!(id, new_alert_id());
        assert_eq!(rfc3339(1_614_265_330_000), "2021-02-25T15:02:10Z");
    }
}
