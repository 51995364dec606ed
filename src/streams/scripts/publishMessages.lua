--[[
  Publishes messages to one queue partition: dedup check, capacity check and XADD (or, for a
  delayed message, ZADD to the delayed set) in one atomic step, so a retried publish after a
  lost reply, or a crash between steps, never stores a message twice.

  KEYS[1]      stream
  KEYS[2]      delayed (sorted set: message id -> due time ms)
  KEYS[3]      delayed bodies (hash: message id -> JSON array of stream fields)
  KEYS[4]      message index (hash: message id -> stream id)
  KEYS[5]      ledger gap (hash: `n`, entries trimmed before the ledger read them)
  KEYS[6..]    dedup markers of the messages that carry a client id

  ARGV[1]      now (ms)
  ARGV[2]      maxLength of this partition
  ARGV[3]      overflow: 'reject' or 'drop_oldest'
  ARGV[4]      dedup window (ms)
  ARGV[5]      number of messages
  then for each message:
    dedup key index into KEYS (0 = no dedup)
    deliverAt (ms; 0 = now)
    message id
    number of field/value pairs, then the pairs

  Returns a flat list, four items per message, in order:
    status: 1 published, 2 scheduled, -1 queue full (nothing stored for it); for a duplicate,
      the first publish's status
    the stream id (published; '' when scheduled or full)
    publishedAt (ms); for a duplicate, the first one's
    duplicate: 1 when nothing was stored because the id was seen within the window, else 0
]]
local rcall = redis.call
local streamKey = KEYS[1]
local delayedKey = KEYS[2]
local delayedBodiesKey = KEYS[3]
local indexKey = KEYS[4]
local ledgerGapKey = KEYS[5]
local now = tonumber(ARGV[1])
local maxLength = tonumber(ARGV[2])
local overflow = ARGV[3]
local dedupTtl = ARGV[4]
local count = tonumber(ARGV[5])

-- @include xinfo
-- @include trimming

local function backlog()
  return rcall('XLEN', streamKey) + rcall('ZCARD', delayedKey)
end

local out = {}
local length = nil
local argi = 6
for _ = 1, count do
  local dedupIndex = tonumber(ARGV[argi])
  local deliverAt = tonumber(ARGV[argi + 1])
  local messageId = ARGV[argi + 2]
  local nFields = tonumber(ARGV[argi + 3])
  local fields = {}
  for f = 1, nFields * 2 do fields[f] = ARGV[argi + 3 + f] end
  argi = argi + 4 + nFields * 2

  local dedupKey = dedupIndex > 0 and KEYS[dedupIndex] or nil
  local first = dedupKey and rcall('GET', dedupKey)
  if first then
    local status, id, at = string.match(first, '(%-?%d)|([^|]*)|(%d+)')
    out[#out + 1] = tonumber(status)
    out[#out + 1] = id
    out[#out + 1] = tonumber(at)
    out[#out + 1] = 1
  else
    length = length or backlog()
    if length >= maxLength then
      if overflow == 'reject' then
        -- Only acknowledged entries make room; the 1000 bounds how long Redis is busy.
        local bound = safeTrimBound()
        if bound then trimBelow(bound, 1000) end
      else
        -- drop_oldest: lossy by contract, oldest first, whoever still needed them. Delayed
        -- messages are never dropped, so when the stream alone cannot make room nothing is
        -- dropped and the message is refused: a publish either drops or is refused, not both.
        local excess = length - maxLength + 1
        if rcall('XLEN', streamKey) >= excess then
          local entry = rcall('XRANGE', streamKey, '-', '+', 'COUNT', excess)
          trimBelow(nextId(entry[#entry][1]), excess)
        end
      end
      length = backlog()
    end
    if length >= maxLength then
      out[#out + 1] = -1
      out[#out + 1] = ''
      out[#out + 1] = 0
      out[#out + 1] = 0
    else
      local status, id = 1, ''
      if deliverAt > now then
        status = 2
        rcall('ZADD', delayedKey, deliverAt, messageId)
        rcall('HSET', delayedBodiesKey, messageId, cjson.encode(fields))
      else
        id = rcall('XADD', streamKey, '*', unpack(fields))
        rcall('HSET', indexKey, messageId, id)
      end
      length = length + 1
      if dedupKey then
        rcall('SET', dedupKey, status .. '|' .. id .. '|' .. now, 'PX', dedupTtl)
      end
      out[#out + 1] = status
      out[#out + 1] = id
      out[#out + 1] = now
      out[#out + 1] = 0
    end
  end
end
return out
