//! The per-account request limit of SPEC §1: a token bucket holding one
//! second's worth of requests, refilled continuously.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::store::AccountId;

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    Account(AccountId),
    /// Requests without a valid key are limited per client address, which
    /// also slows down guessing keys.
    Client(IpAddr),
}

/// The outcome of one check, with what the `X-RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// When refused: whole seconds until a request will be accepted.
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Limits requests in this process.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: u32,
    buckets: Mutex<HashMap<RateKey, Bucket>>,
}

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    /// `per_second == 0` disables limiting.
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `None` when limiting is off.
    pub fn check(&self, key: RateKey) -> Option<Decision> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: RateKey, now: Instant) -> Option<Decision> {
        if self.per_second == 0 {
            return None;
        }
        let rate = f64::from(self.per_second);
        // A poisoned lock only means another request panicked mid-update;
        // the counts are still usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate < rate
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.updated = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let retry_after_secs = if allowed {
            0
        } else {
            ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64
        };
        Some(Decision {
            allowed,
            limit: self.per_second,
            remaining: bucket.tokens.floor() as u32,
            retry_after_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn account(id: i64) -> RateKey {
        RateKey::Account(AccountId(id))
    }

    #[test]
    fn allows_a_second_of_requests_then_refuses() {
        let limiter = RateLimiter::new(3);
        let now = Instant::now();
        let remaining: Vec<_> = (0..3)
            .map(|_| limiter.check_at(account(1), now).expect("on"))
            .collect();
        assert!(remaining.iter().all(|d| d.allowed));
        assert_eq!(
            remaining.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            [2, 1, 0]
        );
        let refused = limiter.check_at(account(1), now).expect("on");
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.limit, 3);
    }

    #[test]
    fn accounts_have_separate_buckets_that_refill() {
        let limiter = RateLimiter::new(1);
        let now = Instant::now();
        assert!(limiter.check_at(account(1), now).expect("on").allowed);
        assert!(!limiter.check_at(account(1), now).expect("on").allowed);
        assert!(limiter.check_at(account(2), now).expect("on").allowed);
        assert!(
            limiter
                .check_at(account(1), now + Duration::from_secs(1))
                .expect("on")
                .allowed
        );
    }

    #[test]
    fn zero_disables() {
        assert_eq!(RateLimiter::new(0).check(account(1)), None);
    }
}
