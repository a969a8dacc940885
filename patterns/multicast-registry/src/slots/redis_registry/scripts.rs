//! The registry's writes as Lua scripts, so an identity's record, the id
//! set and the expiry index change together: Redis runs a script whole,
//! with nothing of another client's in between.
//!
//! Keys (under the namespace prefix): `id:<identity>` holds the record as
//! JSON with a Redis TTL at its expiry (PXAT), so an expired record vanishes
//! by itself; `ids` (sorted set, every score 0, so members are in byte
//! order for ZRANGEBYLEX) lists identities until they are unregistered or
//! swept; `expiry` (sorted set, score = expires_at_ms) holds the identities
//! that expire, for the sweep. An identity counts as registered when its
//! record exists and its expiry is after the caller's clock. Every change
//! of an identity also bumps `seq` and appends `{seq, id}` to the `changes`
//! stream (capped), which keeps each process's copy current (see `cache`).

/// KEYS: record, ids, expiry, seq, changes. ARGV: identity, record JSON,
/// expires_at_ms (empty: never), max_identities, now_ms, change log length.
/// Returns 1 (created), 0
/// (refreshed) or -1 (a new identity past max_identities; nothing written).
/// An expired identity not yet swept still holds its place in `ids`, so it
/// may come back even at the limit.
pub(super) const REGISTER: &str = r"
local now = tonumber(ARGV[5])
local live = redis.call('EXISTS', KEYS[1]) == 1
if live then
  local at = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if at and tonumber(at) <= now then live = false end
end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return -1 end
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[6], '*', 'seq', redis.call('INCR', KEYS[4]), 'id', ARGV[1])
if live then return 0 end
return 1
";

/// KEYS: record, ids, expiry, seq, changes. ARGV: identity, now_ms, change
/// log length. Removes the
/// identity; returns 1 when it was registered and unexpired, else 0.
pub(super) const UNREGISTER: &str = r"
local live = redis.call('EXISTS', KEYS[1]) == 1
if live then
  local at = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if at and tonumber(at) <= tonumber(ARGV[2]) then live = false end
end
local removed = redis.call('DEL', KEYS[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if removed > 0 then
  redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[3], '*', 'seq', redis.call('INCR', KEYS[4]), 'id', ARGV[1])
end
if live then return 1 end
return 0
";

/// KEYS: ids, expiry, seq, changes. ARGV: now_ms, most to remove, record
/// key prefix, change log length.
/// Removes up to that many identities expired at now_ms and returns them;
/// two processes sweeping at once each get their own. The record is
/// deleted too: its TTL has normally removed it already, but not when the
/// server's clock runs behind the caller's. (The record keys are not
/// declared in KEYS; they share the namespace's hash tag.)
pub(super) const SWEEP: &str = r"
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(gone) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', ARGV[3] .. id)
  redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[4], '*', 'seq', redis.call('INCR', KEYS[3]), 'id', id)
end
return gone
";

/// KEYS: seq, changes. Returns the change counter (0 before any change)
/// and the stream's last id (`0-0` when empty), read at one instant.
pub(super) const POSITION: &str = r"
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if last[1] then return {seq, last[1][1]} end
return {seq, '0-0'}
";
