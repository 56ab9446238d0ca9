//! A token bucket per webhook, for the optional `max_per_second` limit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows `rate` acquisitions per second on average, in bursts of at most
/// `rate` (at least one).
#[derive(Debug)]
pub struct TokenBucket {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        TokenBucket {
            state: Mutex::new(State {
                rate,
                tokens: rate,
                last: Instant::now(),
            }),
        }
    }

    /// Follows a changed limit without losing the tokens already earned.
    pub fn set_rate(&self, rate: u32) {
        if let Ok(mut s) = self.state.lock() {
            s.rate = f64::from(rate.max(1));
            s.tokens = s.tokens.min(s.rate);
        }
    }

    /// Takes a token now, or answers how long until one is due.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        let Ok(mut s) = self.state.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let earned = now.duration_since(s.last).as_secs_f64() * s.rate;
        s.tokens = (s.tokens + earned).min(s.rate.max(1.0));
        s.last = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.tokens) / s.rate))
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        while let Err(wait) = self.try_acquire() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_of_rate_then_paces() {
        let bucket = TokenBucket::new(3);
        for _ in 0..3 {
            assert!(bucket.try_acquire().is_ok());
        }
        let wait = bucket.try_acquire().unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(334),
            "{wait:?}"
        );
    }
}
