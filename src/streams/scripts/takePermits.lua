--[[
  Takes up to `want` delivery permits of one webhook subscription, shared by every worker
  process (DECISIONS.md "Webhook flow control (issue 25)"). Under `parallelism` a permit is a
  lease in a sorted set, by its deadline: the unexpired leases are bounded, and a lease a
  process never gives back (it was killed) stops counting at its deadline. Under `rate`, each
  permit also takes a token of the subscription's bucket (includes/tokenBucket.lua). While the
  pause key lives (a receiver answered 429 or 503 with Retry-After), nothing is granted.

  KEYS[1] leases (sorted set: lease id -> deadline, ms on Redis's clock)
  KEYS[2] bucket (hash: tokens, ts)
  KEYS[3] pause (string; it expires when the pause ends)
  KEYS[4] counters (hash: `throttled` counts the waits)
  ARGV[1] want (>= 1)
  ARGV[2] parallelism (0: unbounded)
  ARGV[3] rate (permits per second; 0: unbounded)
  ARGV[4] burst (tokens the bucket holds, >= 1)
  ARGV[5] lease ms (how long a permit holds without being given back)
  ARGV[6] lease id prefix (unique to the caller)
  ARGV[7] first lease number: the leases granted (under `parallelism` only) are
          `<prefix>:<first>`, `<prefix>:<first+1>`, …
  ARGV[8] 1 to count a wait in `throttled` when nothing is granted (the caller's first wait)

  Returns: { granted, ms to wait before asking again when none was granted (0 otherwise),
  why none was granted (0 granted, 1 paused, 2 parallelism, 3 rate) }
]]
-- @include tokenBucket
local leases, bucket, pause, counters = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local want = tonumber(ARGV[1])
local parallelism = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local leaseMs = tonumber(ARGV[5])
local prefix = ARGV[6]
local first = tonumber(ARGV[7])

local function refuse(waitMs, why)
  if ARGV[8] == '1' then redis.call('HINCRBY', counters, 'throttled', 1) end
  return { 0, math.max(1, waitMs), why }
end

local pausedMs = redis.call('PTTL', pause)
if pausedMs > 0 then return refuse(pausedMs, 1) end

local now = redisNowMs()
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
local granted = want
if parallelism > 0 then
  granted = math.min(granted, parallelism - redis.call('ZCARD', leases))
  if granted <= 0 then
    local earliest = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
    return refuse(tonumber(earliest[2]) - now, 2)
  end
end

if rate > 0 then
  local tokens = bucketTokens(bucket, rate, burst, now)
  granted = math.min(granted, math.floor(tokens))
  if granted <= 0 then return refuse(math.ceil((1 - tokens) * 1000 / rate), 3) end
  saveBucket(bucket, tokens - granted, rate, burst, now)
end

if parallelism == 0 then return { granted, 0, 0 } end
local deadline = now + leaseMs
for i = 0, granted - 1 do
  redis.call('ZADD', leases, deadline, prefix .. ':' .. (first + i))
end
-- The set outlives its latest lease by a little, so an idle subscription leaves no key.
if redis.call('PTTL', leases) < leaseMs + 1000 then
  redis.call('PEXPIRE', leases, leaseMs + 1000)
end
return { granted, 0, 0 }
