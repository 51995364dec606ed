--[[
  Acknowledges or requeues deliveries of one queue partition for one group, but only those
  whose receipt is current: the delivery count in the receipt must equal the pending entry's.
  A stale receipt (the message timed out and went to someone else since) changes nothing,
  because XACK alone does not check who holds a message. A receipt given twice settles once.

  The pending entries, and the stream entries when they are wanted, are read by id range
  (see byId); the writes go out together at the end (see inflightWrites).

  KEYS[1] stream
  KEYS[2] in-flight set of the group
  KEYS[3] heads of the group's message keys (hash; ordered groups only, see ordering)
  KEYS[4] parked entries of the group (sorted set; ordered groups only, see ordering)

  ARGV[1] group
  ARGV[2] now (ms)
  ARGV[3] mode: 'ack' or 'nack'
  ARGV[4] max deliveries (nack: a delivery this often failed is returned as dead)
  ARGV[5] how long a dead message stays hidden while the caller moves it (ms)
  ARGV[6] details of settled entries to return, for the ledger: '' none, 'idle' only which
          and their idle times (the caller knows the message ids), 'ids' message ids too,
          'messages' whole entries
  ARGV[7] '1': the group delivers in key order: an acknowledged head releases its key (a nack
          keeps the key held by the same entry), else '0'
  then triples: stream id, delivery count from the receipt, delay before redelivery (ms; nack);
          at most 1000 of them, as the API allows: Lua's unpack stops at a few thousand

  Returns { settled, dead, idle, done }:
    settled: ack: how many were acknowledged; nack: how many will be delivered again
    dead: nack only: list of { stream id, delivery count, fields, held count } to move to the
          dead-letter queue (they stay pending and hidden until the caller acknowledges them
          with the held count)
    idle: ack only: summed ms since each acknowledged entry was last handed out (XPENDING's
          idle time; XREADGROUP and XCLAIM reset it), i.e. how long consumers took
    done: with details, per settled entry { stream id, idle ms, message id or fields }; the
          message id is '' (the fields empty) when the entry is gone from the stream, or with
          'idle'
]]
local rcall = redis.call
local streamKey = KEYS[1]
local inflightKey = KEYS[2]
local group = ARGV[1]
local now = tonumber(ARGV[2])
local mode = ARGV[3]
local maxDeliveries = tonumber(ARGV[4])
local deadHold = tonumber(ARGV[5])
local details = ARGV[6]
local ordered = ARGV[7] == '1'
local headsKey = KEYS[3]
local parkedKey = KEYS[4]

-- @include byId
-- @include inflightWrites
-- @include ordering

local ids, counts, delays = {}, {}, {}
for i = 8, #ARGV, 3 do
  ids[#ids + 1] = ARGV[i]
  counts[#counts + 1] = tonumber(ARGV[i + 1])
  delays[#delays + 1] = tonumber(ARGV[i + 2])
end

local pending = byId(ids, function(first, last, count)
  return rcall('XPENDING', streamKey, group, first, last, count)
end)

local settled, idle = 0, 0
-- Settled entries with their idle times; entries out of attempts with their counts.
local done, idleOf, doomed, doomedCount, doomedOwner = {}, {}, {}, {}, {}

for k, id in ipairs(ids) do
  local info = pending[id]
  if info and info[4] == counts[k] then
    pending[id] = nil
    if mode == 'nack' and counts[k] >= maxDeliveries then
      doomed[#doomed + 1] = id
      doomedCount[id] = counts[k]
      doomedOwner[id] = info[2]
    else
      if mode == 'ack' then
        drop(id)
        idle = idle + info[3]
      else
        hold(id, now + delays[k])
      end
      settled = settled + 1
      done[#done + 1] = id
      idleOf[id] = info[3]
    end
  end
end

local reads = details == 'ids' or details == 'messages'
local wanted = doomed
if reads then
  wanted = { unpack(doomed) }
  for _, id in ipairs(done) do wanted[#wanted + 1] = id end
end
local entries = byId(wanted, function(first, last, count)
  return rcall('XRANGE', streamKey, first, last, 'COUNT', count)
end)

local dead = {}
for _, id in ipairs(doomed) do
  local entry = entries[id]
  if entry then
    hold(id, now + deadHold)
    -- One past the receipt's count, as pull.lua does: a late ack of the same receipt must not
    -- settle an entry whose copy is on its way to the dead-letter queue.
    local held = doomedCount[id] + 1
    rcall('XCLAIM', streamKey, group, doomedOwner[id], 0, id, 'RETRYCOUNT', held, 'JUSTID')
    dead[#dead + 1] = { id, doomedCount[id], entry[2], held }
  else
    drop(id)
  end
end

local described = {}
if details ~= '' then
  for _, id in ipairs(done) do
    local fields = entries[id] and entries[id][2] or {}
    local about = ''
    if details == 'messages' then
      about = fields
    elseif details == 'ids' then
      for f = 1, #fields, 2 do
        if fields[f] == 'i' then about = fields[f + 1] end
      end
    end
    described[#described + 1] = { id, idleOf[id], about }
  end
end

if ordered then releaseHeads(forget) end
writeInflight()
return { settled, dead, idle, described }
