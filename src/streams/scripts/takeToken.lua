--[[
  Takes one token from a tenant's request token bucket (API.md "Limits per tenant"). The
  bucket holds at most `burst` tokens and gains `rate` a second; a request that finds less
  than one token is refused and takes nothing (includes/tokenBucket.lua).

  KEYS[1] bucket (hash: tokens, ts = last update in ms)
  ARGV[1] rate (tokens per second, > 0)
  ARGV[2] burst (capacity in tokens, >= 1)

  Returns: { allowed (1 or 0), remaining whole tokens, ms until the next token (0 when
  allowed), ms until the bucket is full }
]]
-- @include tokenBucket
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])

local now = redisNowMs()
local tokens = bucketTokens(key, rate, burst, now)

local allowed = 0
local waitMs = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  waitMs = math.ceil((1 - tokens) * 1000 / rate)
end

local fullMs = saveBucket(key, tokens, rate, burst, now)
return { allowed, math.floor(tokens), waitMs, fullMs }
