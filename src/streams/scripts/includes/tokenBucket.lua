-- A token bucket in a hash (tokens, ts = last update in ms): at most `burst` tokens, gaining
-- `rate` a second. Time is Redis's own clock (TIME), so processes whose clocks disagree still
-- share one bucket fairly; Redis 7 replicates scripts by their effects, so reading the clock
-- before writing is allowed. Milliseconds keep the timestamp at 13 digits, exact in the 14
-- that Lua numbers are written with when passed to Redis.
local function redisNowMs()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

-- The tokens in the bucket at `now`; a missing bucket is a full one.
local function bucketTokens(key, rate, burst, now)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  return math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
end

-- Stores what is left at `now`. The key expires once the bucket would be full again, so idle
-- buckets cost no memory. Returns the ms until it is full.
local function saveBucket(key, tokens, rate, burst, now)
  local fullMs = math.ceil((burst - tokens) * 1000 / rate)
  redis.call('HSET', key, 'tokens', tokens, 'ts', now)
  redis.call('PEXPIRE', key, fullMs + 1000)
  return fullMs
end
