--[[
  Hands out messages of one queue partition to one consumer of a group, in one atomic step:
  first deliveries whose visibility timeout ran out (claimed, so their delivery count goes
  up), then new ones. Every delivery gets a visibility deadline in the in-flight set; nothing
  is read with NOACK, so a consumer that dies leaves its deliveries to come back.

  Timed-out deliveries are looked up by id range (see byId) and claimed with one XCLAIM; the
  writes go out together at the end (see inflightWrites).

  KEYS[1] stream
  KEYS[2] in-flight set of the group (sorted set: stream id -> visibility deadline ms)
  KEYS[3] heads of the group's message keys (hash; ordered groups only, see ordering)
  KEYS[4] parked entries of the group (sorted set; ordered groups only, see ordering)

  ARGV[1] group
  ARGV[2] consumer
  ARGV[3] max messages (at most 1000, as the API allows: every deadline is one argument pair
          of the ZADD, and Lua's unpack stops at a few thousand)
  ARGV[4] now (ms)
  ARGV[5] visibility timeout (ms)
  ARGV[6] max deliveries: a timed-out delivery already delivered this often is not delivered
          again but returned as dead, for the caller to move to the dead-letter queue
  ARGV[7] how long a dead message stays hidden while the caller moves it (ms)
  ARGV[8] '1': the group delivers in key order (one entry per message key out at a time;
          entries of a held key are parked as they are read), else '0'

  Returns { delivered, dead, gone, expired, nextDeadline, passed }:
    delivered / dead: lists of { stream id, delivery count, fields }; dead ones also carry
          the count their pending entry now has (see the hold below)
    gone: entries deleted or trimmed while pending (acknowledged here, counted by the caller)
    expired: entries past their `x` (expiry ms) field (acknowledged here, never delivered)
    nextDeadline: the earliest visibility deadline still in the set, or -1
    passed: entries read past because they were still out after a seek back (see readNew),
          or parked behind their key's head
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
local ordered = ARGV[8] == '1'
local headsKey = KEYS[3]
local parkedKey = KEYS[4]

-- @include byId
-- @include inflightWrites
-- @include xinfo
-- @include ordering

local delivered, dead = {}, {}
local gone, expired = 0, 0

local function isExpired(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'x' then return tonumber(fields[i + 1]) <= now end
  end
  return false
end

local function hand(id, fields, count)
  if isExpired(fields) then
    drop(id)
    expired = expired + 1
  else
    hold(id, now + visibility)
    delivered[#delivered + 1] = { id, count, fields }
  end
end

-- Ordered groups: what the stream's read found of each key's head (false: none), this pull's
-- new heads included, and the entries parked behind them.
local headOf, heads, parking, parkedIds = {}, {}, {}, {}

-- Hands out a new entry unless its key's head is out; then parks it. Returns true if handed.
local function handInOrder(id, fields)
  local key = keyOf(fields)
  if key == nil or isExpired(fields) then
    hand(id, fields, 1)
    return true
  end
  if headOf[key] == nil then headOf[key] = rcall('HGET', headsKey, 'k:' .. key) end
  if headOf[key] then
    parking[#parking + 1] = 0
    parking[#parking + 1] = parkedMember(key, id)
    parkedIds[#parkedIds + 1] = id
    return false
  end
  headOf[key] = id
  heads[#heads + 1] = 'k:' .. key
  heads[#heads + 1] = id
  heads[#heads + 1] = 'i:' .. id
  heads[#heads + 1] = key
  hand(id, fields, 1)
  return true
end

-- The new heads in one HSET. Count 0 marks a parked entry (a delivery has at least 1): no
-- receipt matches it, and removeConsumer.lua leaves it without a visibility deadline.
local function writeParked()
  if #heads > 0 then
    rcall('HSET', headsKey, unpack(heads))
    heads = {}
  end
  if #parkedIds == 0 then return end
  rcall('ZADD', parkedKey, unpack(parking))
  local claim = { 'XCLAIM', streamKey, group, consumer, 0 }
  for _, id in ipairs(parkedIds) do claim[#claim + 1] = id end
  claim[#claim + 1] = 'RETRYCOUNT'
  claim[#claim + 1] = 0
  claim[#claim + 1] = 'JUSTID'
  rcall(unpack(claim))
  parking, parkedIds = {}, {}
end

local due = rcall('ZRANGEBYSCORE', inflightKey, '-inf', now, 'LIMIT', 0, max)
local pending = byId(due, function(first, last, count)
  return rcall('XPENDING', streamKey, group, first, last, count)
end)
local retry, doomed = {}, {}
for _, id in ipairs(due) do
  local info = pending[id]
  if not info then
    -- Acknowledged (or the group was reset) after the deadline was set.
    drop(id)
  elseif info[4] >= maxDeliveries then
    doomed[#doomed + 1] = id
  else
    retry[#retry + 1] = id
  end
end

local entries = byId(doomed, function(first, last, count)
  return rcall('XRANGE', streamKey, first, last, 'COUNT', count)
end)
for _, id in ipairs(doomed) do
  local entry = entries[id]
  if entry then
    hold(id, now + deadHold)
    -- One past the last delivery's count: its receipt, acknowledged late, must not settle an
    -- entry whose copy is on its way to the dead-letter queue.
    local held = pending[id][4] + 1
    rcall('XCLAIM', streamKey, group, consumer, 0, id, 'RETRYCOUNT', held, 'JUSTID')
    dead[#dead + 1] = { id, pending[id][4], entry[2], held }
  else
    drop(id)
    gone = gone + 1
  end
end

if #retry > 0 then
  -- Entries deleted meanwhile are left out of the reply (and, since Redis 7, of the pending
  -- list); their ids are acknowledged below all the same.
  local claimed = {}
  for _, entry in ipairs(rcall('XCLAIM', streamKey, group, consumer, 0, unpack(retry))) do
    claimed[entry[1]] = entry[2]
  end
  for _, id in ipairs(retry) do
    if claimed[id] then
      hand(id, claimed[id], pending[id][4] + 1)
    else
      drop(id)
      gone = gone + 1
    end
  end
end

-- The group's read position: XREADGROUP '>' reads the entries after it.
local function lastDelivered()
  -- No stream (its queue deleted meanwhile): XPENDING below then answers NOGROUP.
  local ok, groups = pcall(rcall, 'XINFO', 'GROUPS', streamKey)
  if not ok then return '0-0' end
  for _, g in ipairs(groups) do
    local info = xinfoRecord(g)
    if info.name == group then return info['last-delivered-id'] end
  end
  return '0-0'
end

-- After a seek back (XGROUP SETID), the entries ahead of the position may still be pending,
-- and XREADGROUP reads those again as if new: it resets their delivery count to 1, which made
-- an old receipt acknowledge again and reset the retry budget, and it returned an entry this
-- pull had just redelivered a second time. Their pending records are read first and put back
-- after the read (owner, count and idle time), and they are not handed out: they are still out,
-- and come back by their visibility deadline like any other delivery.
local function readNew(room)
  local position = '(' .. lastDelivered()
  local prior = {}
  if #rcall('XPENDING', streamKey, group, position, '+', 1) > 0 then
    local ids = {}
    for _, entry in ipairs(rcall('XRANGE', streamKey, position, '+', 'COUNT', room)) do
      ids[#ids + 1] = entry[1]
    end
    prior = byId(ids, function(first, last, count)
      return rcall('XPENDING', streamKey, group, first, last, count)
    end)
  end
  local read = rcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', room, 'STREAMS', streamKey, '>')
  if not read then return 0, 0 end
  local handed = 0
  for _, entry in ipairs(read[1][2]) do
    local was = prior[entry[1]]
    if was then
      rcall('XCLAIM', streamKey, group, was[2], 0, entry[1], 'IDLE', was[3], 'RETRYCOUNT', was[4], 'JUSTID')
    elseif not ordered then
      hand(entry[1], entry[2], 1)
      handed = handed + 1
    elseif handInOrder(entry[1], entry[2]) then
      handed = handed + 1
    end
  end
  writeParked()
  return #read[1][2], handed
end

-- Read on past entries put back, or a pull would answer empty with new ones behind them; but
-- past at most PASS_MAX of them per call, so a seek back over a long pending list does not hold
-- Redis up: the caller hears how many it passed and pulls again.
local PASS_MAX = 1000
local passed = 0
local room = max - #delivered - #dead
while room > 0 and passed < PASS_MAX do
  local read, handed = readNew(room)
  passed = passed + read - handed
  if read < room then break end
  room = room - handed
end

if ordered then releaseHeads(forget) end
writeInflight()

local earliest = rcall('ZRANGE', inflightKey, 0, 0, 'WITHSCORES')
return { delivered, dead, gone, expired, earliest[2] and tonumber(earliest[2]) or -1, passed }
