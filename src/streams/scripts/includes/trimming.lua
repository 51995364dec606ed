--[[
  Trimming helpers shared by scripts that touch one partition. They expect the locals
  `rcall`, `streamKey` (the stream), `indexKey` (message id -> stream id hash) and
  `ledgerGapKey` (hash: `n`, entries trimmed before the ledger read them).
]]

-- Stream ids are pairs of unsigned 64-bit integers, and a seek to a time leaves a group at
-- `<ms>-18446744073709551615`: past what a Lua number holds exactly (it would become
-- `1.844674407371e+19`, which Redis refuses). So ids are compared and stepped as decimal
-- strings, which Redis always writes without leading zeros.
local MAX_SEQ = '18446744073709551615'

local function decimalLess(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

local function decimalNext(s)
  local i = #s
  while i > 0 and string.byte(s, i) == 57 do i = i - 1 end -- 57: '9'
  if i == 0 then return '1' .. string.rep('0', #s) end
  return string.sub(s, 1, i - 1) .. string.char(string.byte(s, i) + 1) .. string.rep('0', #s - i)
end

local function idLess(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  if am ~= bm then return decimalLess(am, bm) end
  return decimalLess(as, bs)
end

-- The smallest id after `id`.
local function nextId(id)
  local ms, seq = string.match(id, '(%d+)-(%d+)')
  if seq == MAX_SEQ then return decimalNext(ms) .. '-0' end
  return ms .. '-' .. decimalNext(seq)
end

-- Counts, in `ledgerGapKey`, the entries about to be trimmed that the ledger's group (`__ledger`)
-- has not read yet: trimming never waits for the ledger, which records the gap instead.
local function countLedgerGap(entries)
  for _, group in ipairs(rcall('XINFO', 'GROUPS', streamKey)) do
    local info = xinfoRecord(group)
    local lastDelivered = info['last-delivered-id']
    if info.name == '__ledger' then
      local unread = 0
      for n = #entries, 1, -1 do
        if not idLess(lastDelivered, entries[n][1]) then break end
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
  return rcall('XTRIM', streamKey, 'MINID', nextId(entries[#entries][1]))
end

-- The lowest id some consumer group still needs: the lower of its oldest pending entry and
-- the one after its last delivered (a group moved back by a seek re-reads from there, even
-- while later entries are still pending). Entries below it have been settled by every group.
-- No groups: nil, since nobody has consumed anything yet. The service's own groups (named
-- `__…`, e.g. the ledger's) do not count as consumers: with only them, nil too. They hold
-- nothing back, but for `ledgerFloor` (an id, or nil): the ledger's group, or the group the
-- ledger writer has not made yet, holds back entries down to it, a grace so that the ledger,
-- a moment behind the consumers, misses nothing; never older ones.
local function safeTrimBound(ledgerFloor)
  if rcall('EXISTS', streamKey) == 0 then return nil end
  local safe, consumed, sawLedger = nil, false, false
  for _, group in ipairs(rcall('XINFO', 'GROUPS', streamKey)) do
    local info = xinfoRecord(group)
    local name, lastDelivered, pending = info.name, info['last-delivered-id'], info.pending
    local internal = string.sub(name, 1, 2) == '__'
    if not internal then consumed = true end
    local bound = nextId(lastDelivered)
    if pending > 0 then
      local oldest = rcall('XPENDING', streamKey, name, '-', '+', 1)[1][1]
      if idLess(oldest, bound) then bound = oldest end
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
