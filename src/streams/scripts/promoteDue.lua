--[[
  Moves delayed messages of one queue partition whose time has come into its stream, in due
  order, at most `limit` per call so Redis is never busy for long. Each message is removed
  from the delayed set in the same step that adds it to the stream, so any number of tickers
  may run this at once and each message is published exactly once.

  KEYS[1] stream
  KEYS[2] delayed (sorted set: message id -> due time ms)
  KEYS[3] delayed bodies (hash: message id -> JSON array of stream fields)
  KEYS[4] message index (hash: message id -> stream id)

  ARGV[1] now (ms)
  ARGV[2] limit

  Returns { promoted, nextDue, due times of the promoted messages... }: how many were moved,
  the earliest due time still waiting (ms) or -1 when none is, then each promoted message's
  due time (for lateness figures).
]]
local rcall = redis.call
local streamKey = KEYS[1]
local delayedKey = KEYS[2]
local bodiesKey = KEYS[3]
local indexKey = KEYS[4]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])

local dueTimes = {}
local due = rcall('ZRANGEBYSCORE', delayedKey, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #due, 2 do
  local messageId = due[i]
  local body = rcall('HGET', bodiesKey, messageId)
  if body then
    local id = rcall('XADD', streamKey, '*', unpack(cjson.decode(body)))
    rcall('HSET', indexKey, messageId, id)
    dueTimes[#dueTimes + 1] = tonumber(due[i + 1])
  end
  rcall('ZREM', delayedKey, messageId)
  rcall('HDEL', bodiesKey, messageId)
end

local nextDue = rcall('ZRANGE', delayedKey, 0, 0, 'WITHSCORES')[2]
local out = { #dueTimes, nextDue and tonumber(nextDue) or -1 }
for _, t in ipairs(dueTimes) do out[#out + 1] = t end
return out
