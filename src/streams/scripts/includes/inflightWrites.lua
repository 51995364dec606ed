-- Writes of the consume scripts, collected and sent at the end as one variadic ZADD, XACK and
-- ZREM: each redis.call costs microseconds of its own, more than its work on one entry. They
-- expect the locals `rcall`, `streamKey`, `inflightKey` and `group`.
local deadlines, forget = {}, {}

-- Hides `id` until `untilMs`: its visibility deadline in the in-flight set.
local function hold(id, untilMs)
  deadlines[#deadlines + 1] = untilMs
  deadlines[#deadlines + 1] = id
end

-- Acknowledges `id` and drops it from the in-flight set.
local function drop(id)
  forget[#forget + 1] = id
end

local function writeInflight()
  if #deadlines > 0 then rcall('ZADD', inflightKey, unpack(deadlines)) end
  if #forget > 0 then
    rcall('XACK', streamKey, group, unpack(forget))
    rcall('ZREM', inflightKey, unpack(forget))
  end
end
