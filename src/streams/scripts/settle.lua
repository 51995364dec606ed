--[[
  Acknowledges or requeues deliveries of one queue partition for one group, but only those
  whose receipt is current: the delivery count in the receipt must equal the pending entry's.
  A stale receipt (the message timed out and went to someone else since) changes nothing,
  because XACK alone does not check who holds a message.

  KEYS[1] stream
  KEYS[2] in-flight set of the group

  ARGV[1] group
  ARGV[2] now (ms)
  ARGV[3] mode: 'ack' or 'nack'
  ARGV[4] max deliveries (nack: a delivery this often failed is returned as dead)
  ARGV[5] how long a dead message stays hidden while the caller moves it (ms)
  ARGV[6] details of settled entries to return, for the ledger: '' none, 'ids' message ids,
          'messages' whole entries
  then triples: stream id, delivery count from the receipt, delay before redelivery (ms; nack)

  Returns { settled, dead, idle, done }:
    settled: ack: how many were acknowledged; nack: how many will be delivered again
    dead: nack only: list of { stream id, delivery count, fields } to move to the dead-letter
          queue (they stay pending and hidden until the caller acknowledges them there)
    idle: ack only: summed ms since each acknowledged entry was last handed out (XPENDING's
          idle time; XREADGROUP and XCLAIM reset it), i.e. how long consumers took
    done: with details, per settled entry { stream id, idle ms, message id or fields }; the
          message id is '' (the fields empty) when the entry is gone from the stream
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

local function describe(id, idleMs)
  local entry = rcall('XRANGE', streamKey, id, id)[1]
  local fields = entry and entry[2] or {}
  if details == 'messages' then return { id, idleMs, fields } end
  for f = 1, #fields, 2 do
    if fields[f] == 'i' then return { id, idleMs, fields[f + 1] } end
  end
  return { id, idleMs, '' }
end

local settled, dead, idle, done = 0, {}, 0, {}
for i = 7, #ARGV, 3 do
  local id = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  local delay = tonumber(ARGV[i + 2])
  local info = rcall('XPENDING', streamKey, group, id, id, 1)[1]
  if info and info[4] == count then
    if mode == 'ack' then
      rcall('XACK', streamKey, group, id)
      rcall('ZREM', inflightKey, id)
      settled = settled + 1
      idle = idle + info[3]
      if details ~= '' then done[#done + 1] = describe(id, info[3]) end
    elseif count >= maxDeliveries then
      local entry = rcall('XRANGE', streamKey, id, id)[1]
      if entry then
        rcall('ZADD', inflightKey, now + deadHold, id)
        dead[#dead + 1] = { id, count, entry[2] }
      else
        rcall('XACK', streamKey, group, id)
        rcall('ZREM', inflightKey, id)
      end
    else
      rcall('ZADD', inflightKey, now + delay, id)
      settled = settled + 1
      if details ~= '' then done[#done + 1] = describe(id, info[3]) end
    end
  end
end
return { settled, dead, idle, done }
