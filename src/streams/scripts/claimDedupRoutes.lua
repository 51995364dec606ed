--[[
  Settles which partition each client-chosen message id of one queue lives in, so the id
  deduplicates across the whole queue whatever key each copy carries (a key picks a partition).
  The first copy's partition is recorded for the dedup window; later copies go there and meet
  that partition's own dedup marker, which publishMessages.lua checks atomically with the write.
  All keys share the queue's hash tag, so this runs on a cluster too.

  KEYS[1..n]   route records, one per message id
  ARGV[1]      dedup window (ms)
  ARGV[2]      partitionCount of the queue
  ARGV[3..]    the partition each message would take by itself, in KEYS order

  Returns the partition each message must take, in KEYS order.
]]
local rcall = redis.call
local ttl = ARGV[1]
local partitionCount = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local recorded = tonumber(rcall('GET', key))
  -- A record from a deleted queue of the same name with more partitions is not this queue's.
  if recorded and recorded < partitionCount then
    out[i] = recorded
  else
    out[i] = tonumber(ARGV[i + 2])
    rcall('SET', key, out[i], 'PX', ttl)
  end
end
return out
