--[[
  After a ticker promoted a partition's due messages: sets the partition's registry entry to
  its next due time, or removes it when none is left, but only if no message was registered
  since the ticker read the generation. Otherwise the entry keeps its (past) due time, so a
  ticker looks at the partition again at once. Deleting the generation with the entry is safe
  because a registration never reuses one (registerDelayed.lua), so a ticker that read it
  before cannot match a later registration's.

  KEYS[1] registry (sorted set: partition -> earliest due time ms)
  KEYS[2] generations (hash: partition -> counter)
  ARGV[1] partition (member)
  ARGV[2] generation the ticker read before promoting ('' when there was none)
  ARGV[3] next due time (ms), or -1 when the partition has no delayed message left

  Returns: 1 when the entry was settled, 0 when a newer registration kept it.
]]
local rcall = redis.call
local generation = rcall('HGET', KEYS[2], ARGV[1]) or ''
if generation ~= ARGV[2] then return 0 end
if tonumber(ARGV[3]) < 0 then
  rcall('ZREM', KEYS[1], ARGV[1])
  rcall('HDEL', KEYS[2], ARGV[1])
else
  rcall('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
