--[[
  Gives permits of one webhook subscription back (takePermits.lua): their leases end, the
  tokens of permits that were never used go back into the bucket, and a pause asked for by a
  receiver (Retry-After) starts, unless a longer one runs already.

  KEYS[1] leases (sorted set: lease id -> deadline)
  KEYS[2] bucket (hash: tokens, ts)
  KEYS[3] pause (string; it expires when the pause ends)
  KEYS[4] counters (hash: a pause counts one wait in `throttled`, the one of the process that
          got the 429, which holds itself without asking takePermits.lua)
  ARGV[1] rate (permits per second; 0: unbounded, no tokens to give back)
  ARGV[2] burst
  ARGV[3] unused tokens to give back
  ARGV[4] pause ms (0: none)
  ARGV[5..] lease ids

  Returns: the number of leases that were still held
]]
-- @include tokenBucket
local leases, bucket, pause, counters = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local unused = tonumber(ARGV[3])
local pauseMs = tonumber(ARGV[4])

local ended = 0
if #ARGV > 4 then ended = redis.call('ZREM', leases, unpack(ARGV, 5)) end

if rate > 0 and unused > 0 then
  local now = redisNowMs()
  saveBucket(bucket, math.min(burst, bucketTokens(bucket, rate, burst, now) + unused), rate, burst, now)
end

if pauseMs > 0 then
  redis.call('HINCRBY', counters, 'throttled', 1)
  if redis.call('PTTL', pause) < pauseMs then redis.call('SET', pause, '1', 'PX', pauseMs) end
end
return ended
