--[[
  Notes in the global registry that a queue partition has delayed messages due at `due`, so
  tickers find it without scanning every queue. Called after the message is stored; the
  generation counter tells a ticker that settles the entry concurrently that it raced with
  a new message (see settleDelayed.lua).

  KEYS[1] registry (sorted set: partition -> earliest due time ms)
  KEYS[2] generations (hash: partition -> counter)
  ARGV[1] partition (member)
  ARGV[2] due time (ms)

  Returns: 1
]]
local rcall = redis.call
rcall('ZADD', KEYS[1], 'LT', ARGV[2], ARGV[1])
rcall('HINCRBY', KEYS[2], ARGV[1], 1)
return 1
