--[[
  Cancels a delayed message that has not been promoted yet.

  KEYS[1] delayed (sorted set: message id -> due time ms)
  KEYS[2] delayed bodies (hash)
  ARGV[1] message id

  Returns: 1 when it was still scheduled and is now gone, 0 when it was not scheduled.
]]
local rcall = redis.call
local removed = rcall('ZREM', KEYS[1], ARGV[1])
rcall('HDEL', KEYS[2], ARGV[1])
return removed
