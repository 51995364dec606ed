--[[
  Deletes one message of a partition unless a consumer group has it out, in one step, so a
  concurrent pull either hands it out first (and the delete is refused) or never sees it.
  A still-scheduled message is cancelled; a message in the stream is deleted when no group
  (the service's own `__` groups aside) holds it pending.

  KEYS[1] stream
  KEYS[2] message index (hash: message id -> stream id)
  KEYS[3] delayed (sorted set: message id -> due time ms)
  KEYS[4] delayed bodies (hash)
  ARGV[1] message id

  Returns { outcome, stream id, fields }: outcome 1 deleted from the stream (with the entry's
    id and fields, for the ledger), 2 cancelled while scheduled, 0 not in this partition, -1 in
    flight (pending in a group; nothing changed); the last two only when 1.
]]
local rcall = redis.call
local streamKey = KEYS[1]
local indexKey = KEYS[2]
local delayedKey = KEYS[3]
local delayedBodiesKey = KEYS[4]
local messageId = ARGV[1]

-- @include xinfo

if rcall('ZREM', delayedKey, messageId) == 1 then
  rcall('HDEL', delayedBodiesKey, messageId)
  return { 2 }
end

local streamId = rcall('HGET', indexKey, messageId)
local entry = streamId and rcall('XRANGE', streamKey, streamId, streamId)[1]
if not entry then
  return { 0 }
end

for _, flat in ipairs(rcall('XINFO', 'GROUPS', streamKey)) do
  local name = xinfoRecord(flat).name
  -- The ledger writer's group holds entries only while it copies them: not a delivery.
  if string.sub(name, 1, 2) ~= '__' then
    if #rcall('XPENDING', streamKey, name, streamId, streamId, 1) > 0 then
      return { -1 }
    end
  end
end

rcall('XDEL', streamKey, streamId)
rcall('HDEL', indexKey, messageId)
return { 1, streamId, entry[2] }
