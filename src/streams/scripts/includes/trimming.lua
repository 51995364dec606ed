--[[
  Trimming helpers shared by scripts that touch one partition. They expect the locals
  `rcall`, `streamKey` (the stream), `indexKey` (message id -> stream id hash) and
  `ledgerGapKey` (hash: `n`, entries trimmed before the ledger read them).
]]

-- Counts, in `ledgerGapKey`, the entries about to be trimmed that the ledger's group (`__ledger`)
-- has not read yet: trimming never waits for the ledger, which records the gap instead.
local function countLedgerGap(entries)
  for _, group in ipairs(rcall('XINFO', 'GROUPS', streamKey)) do
    local name, lastDelivered
    for i = 1, #group, 2 do
      if group[i] == 'name' then name = group[i + 1] end
      if group[i] == 'last-delivered-id' then lastDelivered = group[i + 1] end
    end
    if name == '__ledger' then
      local lm, ls = string.match(lastDelivered, '(%d+)-(%d+)')
      lm, ls = tonumber(lm), tonumber(ls)
      local unread = 0
      for n = #entries, 1, -1 do
        local em, es = string.match(entries[n][1], '(%d+)-(%d+)')
        em, es = tonumber(em), tonumber(es)
        if em < lm or (em == lm and es <= ls) then break end
        unread = unread + 1
      end
      if unread > 0 then rcall('HINCRBY', ledgerGapKey, 'n', unread) end
      return
    end
  end
end

-- Deletes up to `limit` entries below `bound` (exclusive), with their index entries.
-- Returns how many entries were trimmed.
local function trimBelow(bound, limit)
  local entries = rcall('XRANGE', streamKey, '-', '(' .. bound, 'COUNT', limit)
  if #entries == 0 then return 0 end
  countLedgerGap(entries)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'i' then rcall('HDEL', indexKey, fields[i + 1]) end
    end
  end
  local last = entries[#entries][1]
  local ms, seq = string.match(last, '(%d+)-(%d+)')
  return rcall('XTRIM', streamKey, 'MINID', ms .. '-' .. (tonumber(seq) + 1))
end

local function idLess(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  if am ~= bm then return am < bm end
  return as < bs
end

-- The lowest id some consumer group still needs: its oldest pending entry, or the one after
-- its last delivered. Entries below it have been acknowledged by every group. No groups: nil,
-- since nobody has consumed anything yet. The service's own groups (named `__…`, e.g. the
-- ledger's) do not count as consumers: with only them, nil too. They hold nothing back, but
-- for `ledgerFloor` (an id, or nil): the ledger's group, or the group the ledger writer has not
-- made yet, holds back entries down to it, a grace so that the ledger, a moment behind the
-- consumers, misses nothing; never older ones.
local function safeTrimBound(ledgerFloor)
  if rcall('EXISTS', streamKey) == 0 then return nil end
  local safe, consumed, sawLedger = nil, false, false
  for _, group in ipairs(rcall('XINFO', 'GROUPS', streamKey)) do
    local name, lastDelivered, pending
    for i = 1, #group, 2 do
      if group[i] == 'name' then name = group[i + 1] end
      if group[i] == 'last-delivered-id' then lastDelivered = group[i + 1] end
      if group[i] == 'pending' then pending = group[i + 1] end
    end
    local internal = string.sub(name, 1, 2) == '__'
    if not internal then consumed = true end
    local bound
    if pending > 0 then
      bound = rcall('XPENDING', streamKey, name, '-', '+', 1)[1][1]
    else
      local ms, seq = string.match(lastDelivered, '(%d+)-(%d+)')
      bound = ms .. '-' .. (tonumber(seq) + 1)
    end
    local holds = not internal
    if name == '__ledger' and ledgerFloor then
      holds, sawLedger = true, true
      if idLess(bound, ledgerFloor) then bound = ledgerFloor end
    end
    if holds and (safe == nil or idLess(bound, safe)) then safe = bound end
  end
  if not consumed then return nil end
  if ledgerFloor and not sawLedger and idLess(ledgerFloor, safe) then safe = ledgerFloor end
  return safe
end

