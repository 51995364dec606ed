--[[
  Hands out messages of one queue partition to one consumer of a group, in one atomic step:
  first deliveries whose visibility timeout ran out (claimed, so their delivery count goes
  up), then new ones. Every delivery gets a visibility deadline in the in-flight set; nothing
  is read with NOACK, so a consumer that dies leaves its deliveries to come back.

  KEYS[1] stream
  KEYS[2] in-flight set of the group (sorted set: stream id -> visibility deadline ms)

  ARGV[1] group
  ARGV[2] consumer
  ARGV[3] max messages
  ARGV[4] now (ms)
  ARGV[5] visibility timeout (ms)
  ARGV[6] max deliveries: a timed-out delivery already delivered this often is not delivered
          again but returned as dead, for the caller to move to the dead-letter queue
  ARGV[7] how long a dead message stays hidden while the caller moves it (ms)

  Returns { delivered, dead, gone, expired, nextDeadline }:
    delivered / dead: lists of { stream id, delivery count, fields }
    gone: entries deleted or trimmed while pending (acknowledged here, counted by the caller)
    expired: entries past their `x` (expiry ms) field (acknowledged here, never delivered)
    nextDeadline: the earliest visibility deadline still in the set, or -1
]]
local rcall = redis.call
local streamKey = KEYS[1]
local inflightKey = KEYS[2]
local group = ARGV[1]
local consumer = ARGV[2]
local max = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local visibility = tonumber(ARGV[5])
local maxDeliveries = tonumber(ARGV[6])
local deadHold = tonumber(ARGV[7])

local delivered, dead = {}, {}
local gone, expired = 0, 0

local function isExpired(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'x' then return tonumber(fields[i + 1]) <= now end
  end
  return false
end

local function settle(id)
  rcall('XACK', streamKey, group, id)
  rcall('ZREM', inflightKey, id)
end

local function hand(id, fields, count)
  if isExpired(fields) then
    settle(id)
    expired = expired + 1
  else
    rcall('ZADD', inflightKey, now + visibility, id)
    delivered[#delivered + 1] = { id, count, fields }
  end
end

local due = rcall('ZRANGEBYSCORE', inflightKey, '-inf', now, 'LIMIT', 0, max)
for _, id in ipairs(due) do
  local info = rcall('XPENDING', streamKey, group, id, id, 1)[1]
  if not info then
    -- Acknowledged (or the group was reset) after the deadline was set.
    rcall('ZREM', inflightKey, id)
  elseif info[4] >= maxDeliveries then
    local entry = rcall('XRANGE', streamKey, id, id)[1]
    if entry then
      rcall('ZADD', inflightKey, now + deadHold, id)
      dead[#dead + 1] = { id, info[4], entry[2] }
    else
      settle(id)
      gone = gone + 1
    end
  else
    local claimed = rcall('XCLAIM', streamKey, group, consumer, 0, id)[1]
    if claimed and claimed[2] then
      hand(id, claimed[2], info[4] + 1)
    else
      settle(id)
      gone = gone + 1
    end
  end
end

local room = max - #delivered - #dead
if room > 0 then
  local read = rcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', room, 'STREAMS', streamKey, '>')
  if read then
    for _, entry in ipairs(read[1][2]) do hand(entry[1], entry[2], 1) end
  end
end

local earliest = rcall('ZRANGE', inflightKey, 0, 0, 'WITHSCORES')
return { delivered, dead, gone, expired, earliest[2] and tonumber(earliest[2]) or -1 }
