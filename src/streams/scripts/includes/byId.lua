-- Looks `ids` up with one range read from the lowest to the highest of them, instead of one
-- read per id: what one pull handed out is contiguous in the stream and in the pending list,
-- so the range holds little else. The read stops at twice as many items as ids (ids far
-- apart must not make it walk a long pending list); when it is cut short, the ids not in it
-- are read one by one. `read(first, last, count)` is an XRANGE or XPENDING over the range,
-- whose items start with their id.
-- Returns a table: id -> item, for the ids found.
local function byId(ids, read)
  local found = {}
  if #ids == 0 then return found end
  -- Each id is parsed once: string.match is the costly part, not the comparisons.
  local first, firstMs, firstSeq, last, lastMs, lastSeq
  for _, id in ipairs(ids) do
    local msText, seqText = string.match(id, '(%d+)-(%d+)')
    local ms, seq = tonumber(msText), tonumber(seqText)
    if not first or ms < firstMs or (ms == firstMs and seq < firstSeq) then
      first, firstMs, firstSeq = id, ms, seq
    end
    if not last or ms > lastMs or (ms == lastMs and seq > lastSeq) then
      last, lastMs, lastSeq = id, ms, seq
    end
  end
  local cap = 2 * #ids
  local page = read(first, last, cap)
  for _, item in ipairs(page) do found[item[1]] = item end
  if #page == cap then
    for _, id in ipairs(ids) do
      if not found[id] then found[id] = read(id, id, 1)[1] end
    end
  end
  return found
end

