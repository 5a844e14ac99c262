//! The per-account request limit of SPEC §1: a token bucket holding one
//! second's worth of requests, refilled continuously. Kept in this process,
//! or in Redis so that every process of a deployment shares one budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

impl Decision {
    fn new(per_second: u32, allowed: bool, tokens_left: f64) -> Self {
        let rate = f64::from(per_second);
        Decision {
            allowed,
            limit: per_second,
            remaining: tokens_left.max(0.0).floor() as u32,
            retry_after_secs: if allowed {
                0
            } else {
                ((1.0 - tokens_left) / rate).ceil().max(1.0) as u64
            },
        }
    }
}

/// Limits requests, in this process or shared through Redis.
pub struct RateLimiter {
    per_second: u32,
    local: LocalBuckets,
    shared: Option<SharedBuckets>,
}

impl RateLimiter {
    /// Limits each account to `per_second` requests in this process;
    /// `per_second == 0` disables limiting.
    pub fn local(per_second: u32) -> Self {
        RateLimiter {
            per_second,
            local: LocalBuckets::default(),
            shared: None,
        }
    }

    /// Limits each account to `per_second` requests across every process
    /// that uses this Redis server with the same `namespace` (the
    /// deployment: every process on one database).
    pub async fn shared(
        per_second: u32,
        redis_url: &str,
        namespace: &str,
    ) -> redis::RedisResult<Self> {
        let client = redis::Client::open(redis_url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let connection = client.get_connection_manager_with_config(config).await?;
        Ok(RateLimiter {
            per_second,
            local: LocalBuckets::default(),
            shared: Some(SharedBuckets {
                connection,
                namespace: namespace.to_owned(),
                script: redis::Script::new(TOKEN_BUCKET),
            }),
        })
    }

    /// Whether requests are limited at all.
    pub fn is_enabled(&self) -> bool {
        self.per_second > 0
    }

    /// `None` when limiting is off.
    pub async fn check(&self, key: RateKey) -> Option<Decision> {
        self.check_many(key, 1).await
    }

    /// Takes `cost` requests' worth at once, or none (a batch of contacts
    /// counts one request per item). A cost above a second's worth counts
    /// as a second's worth, so that a batch larger than the limit can
    /// still be sent at all.
    pub async fn check_many(&self, key: RateKey, cost: u32) -> Option<Decision> {
        if self.per_second == 0 {
            return None;
        }
        let cost = cost.clamp(1, self.per_second);
        if let Some(shared) = &self.shared {
            match shared.take(key, self.per_second, cost).await {
                Ok(decision) => return Some(decision),
                // Redis being away must not take the API down with it: this
                // request is limited by the process's own bucket instead.
                Err(error) => {
                    tracing::warn!(%error, "rate limit: Redis unavailable, limiting locally")
                }
            }
        }
        Some(self.local.take(key, self.per_second, cost, Instant::now()))
    }
}

/// Buckets kept in this process.
#[derive(Debug, Default)]
struct LocalBuckets {
    buckets: Mutex<HashMap<RateKey, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 10_000;

impl LocalBuckets {
    fn take(&self, key: RateKey, per_second: u32, cost: u32, now: Instant) -> Decision {
        let rate = f64::from(per_second);
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
        let cost = f64::from(cost);
        let allowed = bucket.tokens >= cost;
        if allowed {
            bucket.tokens -= cost;
        }
        Decision::new(per_second, allowed, bucket.tokens)
    }
}

/// The same bucket in Redis, updated atomically by a script that reads
/// Redis's own clock, so the processes' clocks need not agree.
const TOKEN_BUCKET: &str = r#"
local rate = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or rate
local at = tonumber(state[2]) or now
tokens = math.min(rate, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 60)
return {allowed, tostring(tokens)}
"#;

struct SharedBuckets {
    connection: redis::aio::ConnectionManager,
    namespace: String,
    script: redis::Script,
}

impl SharedBuckets {
    async fn take(&self, key: RateKey, per_second: u32, cost: u32) -> redis::RedisResult<Decision> {
        let name = match key {
            RateKey::Account(account) => {
                format!("bellbook:{}:rate:account:{}", self.namespace, account.0)
            }
            RateKey::Client(ip) => format!("bellbook:{}:rate:client:{ip}", self.namespace),
        };
        let mut connection = self.connection.clone();
        let (allowed, tokens): (i64, String) = self
            .script
            .key(name)
            .arg(per_second)
            .arg(cost)
            .invoke_async(&mut connection)
            .await?;
        Ok(Decision::new(
            per_second,
            allowed == 1,
            tokens.parse().unwrap_or(0.0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: i64) -> RateKey {
        RateKey::Account(AccountId(id))
    }

    #[test]
    fn allows_a_second_of_requests_then_refuses() {
        let buckets = LocalBuckets::default();
        let now = Instant::now();
        let decisions: Vec<_> = (0..3)
            .map(|_| buckets.take(account(1), 3, 1, now))
            .collect();
        assert!(decisions.iter().all(|d| d.allowed));
        assert_eq!(
            decisions.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            [2, 1, 0]
        );
        let refused = buckets.take(account(1), 3, 1, now);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.limit, 3);
    }

    #[test]
    fn accounts_have_separate_buckets_that_refill() {
        let buckets = LocalBuckets::default();
        let now = Instant::now();
        assert!(buckets.take(account(1), 1, 1, now).allowed);
        assert!(!buckets.take(account(1), 1, 1, now).allowed);
        assert!(buckets.take(account(2), 1, 1, now).allowed);
        assert!(
            buckets
                .take(account(1), 1, 1, now + Duration::from_secs(1))
                .allowed
        );
    }

    #[test]
    fn a_cost_takes_that_many_or_none() {
        let buckets = LocalBuckets::default();
        let now = Instant::now();
        assert!(buckets.take(account(1), 10, 7, now).allowed);
        let refused = buckets.take(account(1), 10, 4, now);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 3, "a refused cost takes nothing");
        assert!(buckets.take(account(1), 10, 3, now).allowed);
    }

    #[tokio::test]
    async fn zero_disables() {
        assert_eq!(RateLimiter::local(0).check(account(1)).await, None);
    }
}
