//! The retry schedule: when the next attempt happens, or that there is none.

use crate::store::{Millis, NextState};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delay before retry 1, 2, ...; attempts = 1 + its length.
    pub schedule: Vec<Duration>,
    /// Each delay is scaled by a random factor in [1 - jitter, 1 + jitter].
    pub jitter: f64,
    /// The longest a receiver's `Retry-After` may push the next attempt back.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// Where a delivery goes after a failed attempt, given how many attempts
    /// (this one included) it has had in this round. A receiver's
    /// `Retry-After` moves the next attempt later (never earlier), up to
    /// `max_retry_after`; it never adds attempts.
    pub fn after_failure(
        &self,
        attempts_made: u32,
        now: Millis,
        retryable: bool,
        retry_after: Option<Duration>,
    ) -> NextState {
        let index = attempts_made.saturating_sub(1) as usize;
        match self.schedule.get(index) {
            Some(delay) if retryable => {
                let factor = 1.0 + self.jitter * (2.0 * unit_random() - 1.0);
                let mut ms = (delay.as_millis() as f64 * factor).round() as Millis;
                if let Some(asked) = retry_after {
                    let asked = asked.min(self.max_retry_after).as_millis() as Millis;
                    ms = ms.max(asked);
                }
                NextState::RetryAt(now + ms.max(0))
            }
            _ => NextState::Failed,
        }
    }
}

/// A uniform random number in [0, 1).
fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_then_fails() {
        let p = RetryPolicy {
            schedule: vec![Duration::from_millis(200), Duration::from_secs(1)],
            jitter: 0.0,
            max_retry_after: Duration::from_secs(3600),
        };
        assert_eq!(
            p.after_failure(1, 1000, true, None),
            NextState::RetryAt(1200)
        );
        assert_eq!(
            p.after_failure(2, 1000, true, None),
            NextState::RetryAt(2000)
        );
        assert_eq!(p.after_failure(3, 1000, true, None), NextState::Failed);
        assert_eq!(p.after_failure(1, 1000, false, None), NextState::Failed);
    }

    #[test]
    fn retry_after_delays_within_the_bound_and_budget() {
        let p = RetryPolicy {
            schedule: vec![Duration::from_millis(200), Duration::from_millis(200)],
            jitter: 0.0,
            max_retry_after: Duration::from_secs(60),
        };
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            p.after_failure(1, 0, true, secs(5)),
            NextState::RetryAt(5000)
        );
        assert_eq!(
            p.after_failure(1, 0, true, secs(7200)),
            NextState::RetryAt(60_000)
        );
        // Asking for less than the schedule does not hurry the next attempt.
        assert_eq!(
            p.after_failure(1, 0, true, secs(0)),
            NextState::RetryAt(200)
        );
        assert_eq!(p.after_failure(3, 0, true, secs(5)), NextState::Failed);
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let p = RetryPolicy {
            schedule: vec![Duration::from_secs(100)],
            jitter: 0.1,
            max_retry_after: Duration::from_secs(3600),
        };
        for _ in 0..200 {
            let NextState::RetryAt(at) = p.after_failure(1, 0, true, None) else {
                panic!()
            };
            assert!((90_000..=110_000).contains(&at), "{at}");
        }
    }
}
