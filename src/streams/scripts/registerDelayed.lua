--[[
  Notes in the global registry that a queue partition has delayed messages due at `due`, so
  tickers find it without scanning every queue. Called after the message is stored; the
  partition's generation tells a ticker that settles the entry concurrently that it raced
  with a new message (see settleDelayed.lua). Generations come from one counter that only
  grows, so a partition's generation never takes a value it had before, even after its entry
  was settled away and its generation deleted.

  KEYS[1] registry (sorted set: partition -> earliest due time ms)
  KEYS[2] generations (hash: partition -> generation)
  KEYS[3] clock (counter the generations are drawn from)
  ARGV[1] partition (member)
  ARGV[2] due time (ms)

  Returns: 1
]]
local rcall = redis.call
rcall('ZADD', KEYS[1], 'LT', ARGV[2], ARGV[1])
rcall('HSET', KEYS[2], ARGV[1], rcall('INCR', KEYS[3]))
return 1
