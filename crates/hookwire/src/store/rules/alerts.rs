//! Operator alerts apart from SQL: the `delivery.failed` batch's data (opened
//! and added to inside the backend's transaction), the key that keeps one
//! batch open per license, where an attempt moves an alert, and alert rows
//! read back as typed values.

use crate::store::{
    AlertJob, AlertKind, AlertState, AlertView, FailedDelivery, Millis, NextState, StoreError,
    StoreResult,
};
use serde::{Deserialize, Serialize};

/// The `data` of a `delivery.failed` alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedBatch {
    pub license_id: String,
    /// Every delivery counted, also past the listed ones.
    pub count: u64,
    /// The first `max_ids` deliveries' ids (strings, as the API shows them).
    pub delivery_ids: Vec<String>,
    /// The webhooks of the listed deliveries, each once.
    pub webhook_ids: Vec<String>,
}

/// The value of `open_key` while a license's batch takes deliveries: unique,
/// so at most one batch per license is open, on every backend.
pub fn open_key(license_id: &str) -> String {
    format!("{}:{license_id}", AlertKind::DeliveryFailed.as_str())
}

/// A new batch's data, holding its first delivery.
pub fn new_failed_batch(f: &FailedDelivery) -> String {
    let mut batch = FailedBatch {
        license_id: f.license_id.clone(),
        count: 0,
        delivery_ids: Vec::new(),
        webhook_ids: Vec::new(),
    };
    add(&mut batch, f);
    serde_json::to_string(&batch).expect("a batch serializes")
}

/// The open batch `alert_id`'s data with `f` counted in.
pub fn add_to_failed_batch(alert_id: &str, data: &str, f: &FailedDelivery) -> StoreResult<String> {
    let mut batch: FailedBatch = serde_json::from_str(data)
        .map_err(|e| StoreError::corrupt(format_args!("alert {alert_id}"), format!("data: {e}")))?;
    add(&mut batch, f);
    Ok(serde_json::to_string(&batch).expect("a batch serializes"))
}

fn add(batch: &mut FailedBatch, f: &FailedDelivery) {
    batch.count += 1;
    if batch.delivery_ids.len() < f.max_ids {
        batch.delivery_ids.push(f.delivery_id.to_string());
        if !batch.webhook_ids.contains(&f.webhook_id) {
            batch.webhook_ids.push(f.webhook_id.clone());
        }
    }
}

/// When a new batch is due: at once, unless the license's previous batch
/// was opened less than `spacing` ago.
pub fn batch_due_at(now: Millis, previous_opened_at: Option<Millis>, spacing: Millis) -> Millis {
    previous_opened_at.map_or(now, |p| now.max(p + spacing))
}

/// The stored state and next attempt time after an attempt at `at`.
pub fn after_attempt(next: NextState, at: Millis) -> (&'static str, Millis) {
    match next {
        NextState::Delivered => ("delivered", at),
        NextState::RetryAt(when) => ("pending", when),
        NextState::Failed => ("failed", at),
    }
}

/// An `alerts` row as stored, column by column.
pub struct AlertRow {
    pub id: String,
    pub kind: String,
    pub created_at: Millis,
    pub data: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl AlertRow {
    fn corrupt(&self, field: &str, value: impl std::fmt::Display) -> StoreError {
        StoreError::corrupt(
            format_args!("alert {}", self.id),
            format!("{field}: {value}"),
        )
    }

    fn kind(&self) -> StoreResult<AlertKind> {
        AlertKind::parse(&self.kind).ok_or_else(|| self.corrupt("kind", &self.kind))
    }

    fn attempts(&self) -> StoreResult<u32> {
        u32::try_from(self.attempts).map_err(|_| self.corrupt("attempts", self.attempts))
    }

    pub fn into_job(self) -> StoreResult<AlertJob> {
        Ok(AlertJob {
            kind: self.kind()?,
            attempts: self.attempts()?,
            id: self.id,
            created_at: self.created_at,
            data: self.data,
        })
    }

    pub fn into_view(self) -> StoreResult<AlertView> {
        let state = match self.state.as_str() {
            "pending" => AlertState::Pending,
            "delivered" => AlertState::Delivered,
            "failed" => AlertState::Failed,
            other => return Err(self.corrupt("state", other)),
        };
        Ok(AlertView {
            kind: self.kind()?,
            attempts: self.attempts()?,
            state,
            id: self.id,
            created_at: self.created_at,
            data: self.data,
            last_error: self.last_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(id: i64, webhook: &str) -> FailedDelivery {
        FailedDelivery {
            license_id: "L".into(),
            delivery_id: id,
            webhook_id: webhook.into(),
            at: 1_000,
            new_alert_id: "msg_x".into(),
            spacing: 60_000,
            max_ids: 2,
        }
    }

    #[test]
    fn a_batch_counts_everything_and_lists_the_first_ids() {
        let mut data = new_failed_batch(&failed(1, "a"));
        for (id, webhook) in [(2, "a"), (3, "b")] {
            data = add_to_failed_batch("msg_x", &data, &failed(id, webhook)).unwrap();
        }
        let batch: FailedBatch = serde_json::from_str(&data).unwrap();
        assert_eq!(batch.count, 3);
        assert_eq!(batch.delivery_ids, ["1", "2"]);
        assert_eq!(batch.webhook_ids, ["a"]);
    }

    #[test]
    fn batches_are_spaced_and_unreadable_data_is_corrupt() {
        assert_eq!(batch_due_at(5_000, None, 60_000), 5_000);
        assert_eq!(batch_due_at(5_000, Some(1_000), 60_000), 61_000);
        assert_eq!(batch_due_at(90_000, Some(1_000), 60_000), 90_000);
        let err = add_to_failed_batch("msg_x", "[", &failed(1, "a")).unwrap_err();
        assert!(err.to_string().contains("alert msg_x: data"), "{err}");
    }

    #[test]
    fn unknown_kinds_and_states_are_corrupt() {
        let row = |kind: &str, state: &str| AlertRow {
            id: "msg_1".into(),
            kind: kind.into(),
            created_at: 1,
            data: "{}".into(),
            state: state.into(),
            attempts: 0,
            last_error: None,
        };
        assert!(row("webhook.failing", "pending").into_view().is_ok());
        let err = row("webhook.sad", "pending").into_view().unwrap_err();
        assert!(err.to_string().contains("alert msg_1: kind"), "{err}");
        let err = row("backlog.high", "lost").into_view().unwrap_err();
        assert!(err.to_string().contains("state: lost"), "{err}");
        for kind in AlertKind::ALL {
            assert_eq!(AlertKind::parse(kind.as_str()), Some(kind));
        }
    }
}
