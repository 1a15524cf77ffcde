//! The Lua scripts of the Redis broker. Each runs atomically in Redis, which is what makes
//! "assign an offset, append to the history, publish" one step, and keeps a room's offsets in
//! publish order on every subscriber.
//!
//! Keys per room (`<prefix>room:<room>:…`): `offset` (counter), `epoch` (random id), `history`
//! (list of event texts, capped by count, bytes and age), `bytes` (the history's size), `ids`
//! (the ids of recent events, scored by offset). All expire
//! together after `room_state_ttl` of quiet; if the counter or epoch is missing they are
//! re-created with a new epoch, so a client can never mistake a reset counter for the old one.
//!
//! Publishing is idempotent by event id: an id already in `ids` is not published again (a retry
//! after a timeout whose first attempt did reach Redis, or an outbox relay that died between
//! publishing and recording it); the script answers the offset it got the first time.

/// Shared prologue: KEYS[1..3] = offset, epoch, history; `candidate` and `ttl` from ARGV.
const ENSURE: &str = r#"
local function ensure(candidate, ttl)
  if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('SET', KEYS[1], 0, 'PX', ttl)
    redis.call('SET', KEYS[2], candidate, 'PX', ttl)
    redis.call('DEL', KEYS[3])
  end
end
"#;

/// KEYS[4] = ids, KEYS[5] = bytes. ARGV: head, tail, candidate epoch, max events, ttl ms,
/// channel, event id, max bytes, now ms, max age ms. Returns {offset, epoch}.
const PUBLISH_BODY: &str = r#"
ensure(ARGV[3], ARGV[5])
local epoch = redis.call('GET', KEYS[2])
if redis.call('GET', KEYS[1]) == '0' then redis.call('DEL', KEYS[4], KEYS[5]) end
local seen = redis.call('ZSCORE', KEYS[4], ARGV[7])
if seen then return {tonumber(seen), epoch} end
local offset = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[4], offset, ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', offset - 4 * tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[4], ARGV[5])
local msg = ARGV[1] .. offset .. ',"epoch":"' .. epoch .. '",' .. ARGV[2]
redis.call('RPUSH', KEYS[3], msg)
local bytes = redis.call('INCRBY', KEYS[5], #msg)
local max_events = tonumber(ARGV[4])
local max_bytes = tonumber(ARGV[8])
local oldest = tonumber(ARGV[9]) - tonumber(ARGV[10])
while true do
  local len = redis.call('LLEN', KEYS[3])
  if len <= 1 then break end
  local first = redis.call('LINDEX', KEYS[3], 0)
  local ts = tonumber(string.match(first, '"timestamp":(%d+)'))
  if len > max_events or bytes > max_bytes or (ts and ts < oldest) then
    redis.call('LPOP', KEYS[3])
    bytes = redis.call('DECRBY', KEYS[5], #first)
  else
    break
  end
end
redis.call('PEXPIRE', KEYS[5], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('PUBLISH', ARGV[6], msg)
return {offset, epoch}
"#;

/// ARGV: after, candidate epoch, ttl ms. Returns {offset, epoch, {events after `after`}}.
const HISTORY_BODY: &str = r#"
ensure(ARGV[2], ARGV[3])
local offset = tonumber(redis.call('GET', KEYS[1]))
local epoch = redis.call('GET', KEYS[2])
local after = tonumber(ARGV[1])
if after >= offset then return {offset, epoch, {}} end
local first = redis.call('LINDEX', KEYS[3], 0)
if not first then return {offset, epoch, {}} end
local first_offset = tonumber(string.match(first, '"offset":(%d+)'))
local start = after + 1 - first_offset
if start < 0 then start = 0 end
return {offset, epoch, redis.call('LRANGE', KEYS[3], start, -1)}
"#;

/// ARGV: candidate epoch, ttl ms. Returns {offset, epoch} after consuming one offset.
const SKIP_BODY: &str = r#"
ensure(ARGV[1], ARGV[2])
local epoch = redis.call('GET', KEYS[2])
local offset = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {offset, epoch}
"#;

pub fn skip() -> redis::Script {
    redis::Script::new(&format!("{ENSURE}{SKIP_BODY}"))
}

pub fn publish() -> redis::Script {
    redis::Script::new(&format!("{ENSURE}{PUBLISH_BODY}"))
}

pub fn history() -> redis::Script {
    redis::Script::new(&format!("{ENSURE}{HISTORY_BODY}"))
}
