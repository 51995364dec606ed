--[[
  Deletes one consumer of a group, handing what it holds back to the group in the same step:
  its pending entries pass to `heir` with their delivery counts kept, due at once, so the next
  pull of any consumer of the group delivers them again. Checking the consumer's pending list
  and deleting it in two steps lost messages: a pull in between (a long poll still running for
  a deleted subscription) read entries that DELCONSUMER then dropped from the pending list,
  while the in-flight set still held them, so the group's later pulls acknowledged them unseen.

  KEYS[1] stream
  KEYS[2] in-flight set of the group

  ARGV[1] group
  ARGV[2] consumer to delete
  ARGV[3] heir: a consumer of the group that stays
  ARGV[4] now (ms): the visibility deadline of what is handed back

  Returns: how many pending entries were handed back (0 also when there was no such consumer).
]]
local rcall = redis.call
local streamKey = KEYS[1]
local inflightKey = KEYS[2]
local group = ARGV[1]
local consumer = ARGV[2]
local heir = ARGV[3]
local now = tonumber(ARGV[4])

-- XPENDING and XCLAIM in pages: Lua's unpack stops at a few thousand arguments.
local PAGE = 500

if rcall('EXISTS', streamKey) == 0 then return 0 end
local ok, consumers = pcall(rcall, 'XINFO', 'CONSUMERS', streamKey, group)
if not ok then return 0 end
local known = false
for _, c in ipairs(consumers) do
  for i = 1, #c, 2 do
    if c[i] == 'name' and c[i + 1] == consumer then known = true end
  end
end
if not known then return 0 end

local handed = 0
while true do
  local page = rcall('XPENDING', streamKey, group, '-', '+', PAGE, consumer)
  if #page == 0 then break end
  local ids, deadlines = {}, {}
  for _, p in ipairs(page) do
    ids[#ids + 1] = p[1]
    -- RETRYCOUNT keeps the count, so the receipt the deleted consumer got stays the latest
    -- until the entry is delivered again, and the retry budget is not reset.
    rcall('XCLAIM', streamKey, group, heir, 0, p[1], 'RETRYCOUNT', p[4], 'JUSTID')
    -- Count 0: parked behind its key's head (ordered groups, see pull.lua), or released and
    -- already due; either way it keeps its place, and a deadline now would hand it out early.
    if p[4] > 0 then
      deadlines[#deadlines + 1] = now
      deadlines[#deadlines + 1] = p[1]
    end
  end
  if #deadlines > 0 then rcall('ZADD', inflightKey, unpack(deadlines)) end
  handed = handed + #ids
  if #page < PAGE then break end
end
rcall('XGROUP', 'DELCONSUMER', streamKey, group, consumer)
return handed
