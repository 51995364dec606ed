--[[
  Deletes entries from one partition's stream together with their message-index entries
  (used after a redrive has copied them elsewhere).

  KEYS[1] stream
  KEYS[2] message index (hash: message id -> stream id)
  ARGV    stream ids

  Returns: how many entries were deleted.
]]
local rcall = redis.call
local streamKey = KEYS[1]
local indexKey = KEYS[2]

local deleted = 0
for _, id in ipairs(ARGV) do
  local entry = rcall('XRANGE', streamKey, id, id)[1]
  if entry then
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'i' and rcall('HGET', indexKey, fields[i + 1]) == id then
        rcall('HDEL', indexKey, fields[i + 1])
      end
    end
    deleted = deleted + rcall('XDEL', streamKey, id)
  end
end
return deleted
