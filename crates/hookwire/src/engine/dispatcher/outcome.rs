//! What a finished attempt means for its delivery and its webhook: the next
//! state (delivered, retried at the schedule's time, or failed for good) and
//! which health rule may disable the webhook. A pure step: the time is a
//! parameter, and the store is left to the dispatcher.

use crate::engine::attempt::{AttemptFailure, AttemptOutcome};
use crate::engine::retry::RetryPolicy;
use crate::store::{Millis, NextState};

/// A finished attempt's consequences, ready for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub status: Option<u16>,
    /// The delivery log's text for a failure.
    pub error: Option<String>,
    pub next: NextState,
    pub health: Health,
}

/// What an attempt says about its webhook's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Delivered: nothing to check.
    Fine,
    /// `410 Gone`: the webhook is disabled before the attempt is logged, so
    /// whoever sees the failed delivery also sees the webhook off.
    Gone,
    /// Any other failure: the webhook is disabled if every attempt has failed
    /// for `disable_after`. Checked after the attempt is logged, because
    /// logging it is what keeps the failing run's start.
    Failing,
}

/// Where a delivery goes after an attempt that ended in `outcome` at `now`,
/// `attempts_made` (this one included) into its round.
pub fn after_attempt(
    outcome: &AttemptOutcome,
    attempts_made: u32,
    now: Millis,
    retry: &RetryPolicy,
) -> Step {
    match outcome {
        AttemptOutcome::Delivered { status } => Step {
            status: Some(*status),
            error: None,
            next: NextState::Delivered,
            health: Health::Fine,
        },
        AttemptOutcome::Failed(f) => Step {
            status: f.status,
            error: Some(f.to_string()),
            next: retry.after_failure(attempts_made, now, f.retryable(), f.retry_after),
            health: if matches!(f.cause, AttemptFailure::Gone) {
                Health::Gone
            } else {
                Health::Failing
            },
        },
    }
}

impl Health {
    /// Why the webhook is to be disabled, and the store's condition for it
    /// (`Some(t)`: only if it has been failing since `t` or before); `None`
    /// when there is nothing to check.
    pub fn disable_reason(
        self,
        now: Millis,
        disable_after: Millis,
    ) -> Option<(String, Option<Millis>)> {
        let when = || {
            time::OffsetDateTime::from_unix_timestamp_nanos(now as i128 * 1_000_000)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default()
        };
        match self {
            Health::Fine => None,
            Health::Gone => Some((
                format!("the receiver answered 410 Gone at {}", when()),
                None,
            )),
            Health::Failing => Some((
                format!(
                    "every attempt failed for {} (disabled at {})",
                    humantime::format_duration(std::time::Duration::from_millis(
                        disable_after as u64
                    )),
                    when()
                ),
                Some(now - disable_after),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::attempt::Failure;
    use std::time::Duration;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![Duration::from_secs(10), Duration::from_secs(60)],
            jitter: 0.0,
            max_retry_after: Duration::from_secs(3600),
        }
    }

    fn failed(cause: AttemptFailure, status: Option<u16>) -> AttemptOutcome {
        AttemptOutcome::Failed(Failure {
            cause,
            status,
            retry_after: None,
        })
    }

    #[test]
    fn delivered_is_done() {
        let step = after_attempt(&AttemptOutcome::Delivered { status: 200 }, 3, 5, &policy());
        assert_eq!(
            step,
            Step {
                status: Some(200),
                error: None,
                next: NextState::Delivered,
                health: Health::Fine,
            }
        );
    }

    #[test]
    fn failures_follow_the_schedule_then_fail_for_good() {
        let p = policy();
        let mut now: Millis = 1_000;
        let outcome = failed(AttemptFailure::Status(500), Some(500));
        let first = after_attempt(&outcome, 1, now, &p);
        assert_eq!(first.next, NextState::RetryAt(now + 10_000));
        assert_eq!(first.status, Some(500));
        assert_eq!(first.error.as_deref(), Some("HTTP 500"));
        assert_eq!(first.health, Health::Failing);
        now += 10_000;
        let second = after_attempt(&failed(AttemptFailure::Timeout, None), 2, now, &p);
        assert_eq!(second.next, NextState::RetryAt(now + 60_000));
        assert_eq!(second.error.as_deref(), Some("timed out"));
        now += 60_000;
        let last = after_attempt(&outcome, 3, now, &p);
        assert_eq!(last.next, NextState::Failed);
        assert_eq!(last.health, Health::Failing);
    }

    #[test]
    fn retry_after_pushes_the_retry_back() {
        let outcome = AttemptOutcome::Failed(Failure {
            cause: AttemptFailure::Status(429),
            status: Some(429),
            retry_after: Some(Duration::from_secs(30)),
        });
        assert_eq!(
            after_attempt(&outcome, 1, 0, &policy()).next,
            NextState::RetryAt(30_000)
        );
    }

    #[test]
    fn final_failures_are_not_retried() {
        let p = policy();
        let gone = after_attempt(&failed(AttemptFailure::Gone, Some(410)), 1, 0, &p);
        assert_eq!(gone.next, NextState::Failed);
        assert_eq!(gone.health, Health::Gone);
        assert_eq!(
            gone.error.as_deref(),
            Some("HTTP 410: the receiver is gone")
        );
        for cause in [
            AttemptFailure::Blocked,
            AttemptFailure::InvalidTarget("x".into()),
        ] {
            let step = after_attempt(&failed(cause, None), 1, 0, &p);
            assert_eq!(step.next, NextState::Failed);
            assert_eq!(step.health, Health::Failing);
        }
    }

    #[test]
    fn disable_reasons() {
        let day = 86_400_000;
        let now = 2 * day;
        assert_eq!(Health::Fine.disable_reason(now, day), None);
        assert_eq!(
            Health::Gone.disable_reason(now, day),
            Some((
                "the receiver answered 410 Gone at 1970-01-03T00:00:00Z".to_string(),
                None
            ))
        );
        assert_eq!(
            Health::Failing.disable_reason(now, day),
            Some((
                "every attempt failed for 1day (disabled at 1970-01-03T00:00:00Z)".to_string(),
                Some(day)
            ))
        );
    }
}
