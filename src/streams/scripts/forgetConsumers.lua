--[[
  Deletes the consumers of one group that hold nothing and have been idle for a while: those
  of processes that stopped or crashed (what they held was claimed by others first). Every
  process reads under a name of its own, so without this each restart would leave one more
  consumer behind on every stream it read. Checking and deleting in one step matters:
  DELCONSUMER drops a consumer's pending entries, and a consumer that read something between
  a separate check and the delete would lose it.

  KEYS[1] stream

  ARGV[1] group
  ARGV[2] minimum idle time (ms)

  Returns: how many consumers were deleted (0 when the stream or group does not exist).
]]
local rcall = redis.call
local streamKey = KEYS[1]
local group = ARGV[1]
local minIdle = tonumber(ARGV[2])

if rcall('EXISTS', streamKey) == 0 then return 0 end
local ok, consumers = pcall(rcall, 'XINFO', 'CONSUMERS', streamKey, group)
if not ok then return 0 end

-- @include xinfo

local deleted = 0
for _, entry in ipairs(consumers) do
  local consumer = xinfoRecord(entry)
  if consumer.pending == 0 and consumer.idle >= minIdle then
    rcall('XGROUP', 'DELCONSUMER', streamKey, group, consumer.name)
    deleted = deleted + 1
  end
end
return deleted
