//! Token-bucket rate limits, shared by every node through Redis (one Lua script, so the
//! read-refill-take happens atomically and with Redis's clock), or kept in this process in
//! single-node mode. A bucket holds `capacity` tokens and refills continuously over `period`
//! (the original's "250 per day" is capacity 250, period one day). What happens when Redis cannot
//! answer is a setting: refuse (the original's behaviour, the default) or let the request through.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::redis_client::RedisClient;

/// A limit: `capacity` requests per `period`, refilled continuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub capacity: u32,
    pub period: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused; a token is due in this many seconds.
    Limited {
        retry_after_secs: u64,
    },
    /// Redis did not answer and the limiter fails closed.
    Unavailable,
}

/// KEYS[1] bucket; ARGV capacity, period_ms. Stores {tokens, updated_ms}; returns
/// {allowed (0/1), ms until the next token}.
const TOKEN_BUCKET: &str = r#"
local capacity = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
local rate = capacity / period
tokens = math.min(capacity, tokens + (now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', now)
redis.call('PEXPIRE', KEYS[1], period)
local wait = 0
if allowed == 0 then wait = math.ceil((1 - tokens) / rate) end
return {allowed, wait}
"#;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    redis: Option<(RedisClient, redis::Script)>,
    local: Mutex<HashMap<String, Bucket>>,
    fail_open: bool,
}

impl RateLimiter {
    pub fn new(redis: Option<RedisClient>, fail_open: bool) -> Self {
        Self {
            redis: redis.map(|r| (r, redis::Script::new(TOKEN_BUCKET))),
            local: Mutex::new(HashMap::new()),
            fail_open,
        }
    }

    /// Takes one token from the bucket `key` (a name under the Redis prefix).
    pub async fn check(&self, key: &str, limit: Limit) -> Decision {
        let period_ms = limit.period.as_millis().max(1) as u64;
        match &self.redis {
            Some((redis, script)) => {
                let result: redis::RedisResult<(i64, i64)> = script
                    .key(redis.key(&format!("rate:{key}")))
                    .arg(limit.capacity)
                    .arg(period_ms)
                    .invoke_async(&mut redis.connection())
                    .await;
                match result {
                    Ok((1, _)) => Decision::Allowed,
                    Ok((_, wait_ms)) => Decision::Limited {
                        retry_after_secs: (wait_ms.max(0) as u64).div_ceil(1000).max(1),
                    },
                    Err(error) => {
                        tracing::warn!(%error, fail_open = self.fail_open, "rate limiter could not reach Redis");
                        if self.fail_open {
                            Decision::Allowed
                        } else {
                            Decision::Unavailable
                        }
                    }
                }
            }
            None => self.check_local(key, limit, period_ms),
        }
    }

    fn check_local(&self, key: &str, limit: Limit, period_ms: u64) -> Decision {
        let now = Instant::now();
        let rate = f64::from(limit.capacity) / period_ms as f64; // tokens per ms
        let mut buckets = self.local.lock().unwrap_or_else(|p| p.into_inner());
        // Keep memory bounded: drop buckets that have refilled completely.
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| now.duration_since(b.updated).as_millis() < period_ms as u128);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: f64::from(limit.capacity),
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64() * 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * rate).min(f64::from(limit.capacity));
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allowed
        } else {
            let wait_ms = ((1.0 - bucket.tokens) / rate).ceil() as u64;
            Decision::Limited {
                retry_after_secs: wait_ms.div_ceil(1000).max(1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_buckets_refuse_past_capacity_and_say_when_to_retry() {
        let limiter = RateLimiter::new(None, false);
        let limit = Limit {
            capacity: 3,
            period: Duration::from_secs(3600),
        };
        for _ in 0..3 {
            assert_eq!(
                limiter.check_local("k", limit, 3_600_000),
                Decision::Allowed
            );
        }
        match limiter.check_local("k", limit, 3_600_000) {
            Decision::Limited { retry_after_secs } => {
                assert!((1190..=1200).contains(&retry_after_secs))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            limiter.check_local("other", limit, 3_600_000),
            Decision::Allowed,
            "buckets are per key"
        );
    }
}
