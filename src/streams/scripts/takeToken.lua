--[[
  Takes one token from a tenant's request token bucket (API.md "Limits per tenant"). The
  bucket holds at most `burst` tokens and gains `rate` a second; a request that finds less
  than one token is refused and takes nothing. Time is Redis's own clock (TIME), so api
  instances whose clocks disagree still share one bucket fairly; Redis 7 replicates scripts
  by their effects, so reading the clock before writing is allowed.

  The key expires once the bucket would be full again: a missing bucket is a full one, so
  idle tenants cost no memory.

  KEYS[1] bucket (hash: tokens, ts = last update in ms)
  ARGV[1] rate (tokens per second, > 0)
  ARGV[2] burst (capacity in tokens, >= 1)

  Returns: { allowed (1 or 0), remaining whole tokens, ms until the next token (0 when
  allowed), ms until the bucket is full }
]]
local rcall = redis.call
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])

local clock = rcall('TIME')
-- Milliseconds keep the timestamp at 13 digits, exact in the 14 that Lua numbers are
-- written with when passed to Redis.
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local state = rcall('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)

local allowed = 0
local waitMs = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  waitMs = math.ceil((1 - tokens) * 1000 / rate)
end

local fullMs = math.ceil((burst - tokens) * 1000 / rate)
rcall('HSET', key, 'tokens', tokens, 'ts', now)
rcall('PEXPIRE', key, fullMs + 1000)
return { allowed, math.floor(tokens), waitMs, fullMs }
