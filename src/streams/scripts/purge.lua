--[[
  Empties one queue partition: its stream and its delayed messages. Consumer groups stay,
  with empty pending lists, reading from the (now empty) stream's end.

  Deleting the stream and recreating each group at `$` is the only way to empty the pending
  lists in one step (XTRIM leaves pending ids pointing at deleted entries).

  KEYS[1] stream
  KEYS[2] delayed (sorted set of due times)
  KEYS[3] delayed bodies (hash)
  KEYS[4] message index (hash)
  KEYS[5..] the ordering state of each group (heads and parked, see ordering.lua): it names
          entries the purge deletes

  Returns: the number of messages removed (stream entries plus delayed messages).
]]
local rcall = redis.call
local streamKey = KEYS[1]
local delayedKey = KEYS[2]
local delayedBodiesKey = KEYS[3]
local indexKey = KEYS[4]

-- @include xinfo

local removed = rcall('ZCARD', delayedKey)
if rcall('EXISTS', streamKey) == 1 then
  removed = removed + rcall('XLEN', streamKey)
  local groups = rcall('XINFO', 'GROUPS', streamKey)
  local info = xinfoRecord(rcall('XINFO', 'STREAM', streamKey))
  local lastGenerated = info['last-generated-id'] or '0-0'
  rcall('UNLINK', streamKey)
  for _, group in ipairs(groups) do
    rcall('XGROUP', 'CREATE', streamKey, xinfoRecord(group).name, '$', 'MKSTREAM')
  end
  -- Keep ids monotonic for anyone still holding a receipt of a purged message.
  if #groups > 0 and lastGenerated ~= '0-0' then
    rcall('XSETID', streamKey, lastGenerated)
  end
end
rcall('UNLINK', delayedKey, delayedBodiesKey, indexKey)
for i = 5, #KEYS do rcall('UNLINK', KEYS[i]) end
return removed
