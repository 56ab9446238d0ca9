//! Per-key rate limiting: a token bucket per presented key, refilled at
//! `rate_limit_per_second` and holding one second's worth (at least one).

use super::error::AppError;
use super::AppState;
use crate::secret::hash_secret;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before idle (full) ones are dropped, so random keys cannot
/// grow the map without bound.
const MAX_BUCKETS: usize = 10_000;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `None` when `per_second` is 0 (off).
    pub fn new(per_second: f64) -> Option<Self> {
        (per_second > 0.0).then(|| RateLimiter {
            per_second,
            burst: per_second.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token for `key`, or answers how many seconds until one is there.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
            if buckets.len() >= MAX_BUCKETS {
                // Still full of busy keys: refuse newcomers rather than grow.
                return Err(1);
            }
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// The middleware: requests are counted per `Authorization` value (hashed,
/// so no key is kept in memory in the clear). Requests without one (health
/// checks, receivers' token call-backs) are not limited here.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(AUTHORIZATION);
    if let (Some(limiter), Some(value)) = (state.rate_limiter(), presented) {
        let key = hash_secret(&String::from_utf8_lossy(value.as_bytes()));
        if let Err(secs) = limiter.check(&key, Instant::now()) {
            return AppError::RateLimited(secs).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_refill_at_the_rate() {
        assert!(RateLimiter::new(0.0).is_none());
        let l = RateLimiter::new(2.0).unwrap();
        let t = Instant::now();
        assert_eq!(l.check("a", t), Ok(()));
        assert_eq!(l.check("a", t), Ok(()));
        assert_eq!(l.check("a", t), Err(1));
        assert_eq!(l.check("b", t), Ok(()), "keys are counted apart");
        assert_eq!(l.check("a", t + Duration::from_millis(500)), Ok(()));
        assert!(l.check("a", t + Duration::from_millis(500)).is_err());
        let slow = RateLimiter::new(0.1).unwrap();
        assert_eq!(slow.check("a", t), Ok(()));
        assert_eq!(slow.check("a", t), Err(10));
    }
}
