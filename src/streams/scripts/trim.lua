--[[
  Trims one queue partition: entries every consumer group has acknowledged, and entries older
  than the queue's retention whoever still needed them (retention is a promise to keep a
  message that long, no longer). At most `limit` entries per call, so Redis is never busy
  for long; the caller repeats while it trims a full batch.

  KEYS[1] stream
  KEYS[2] message index (hash: message id -> stream id)
  KEYS[3] ledger gap (hash: `n`, entries trimmed before the ledger read them)

  ARGV[1] retention bound (ms): entries published before it are past retention
  ARGV[2] limit
  ARGV[3] ledger floor (ms): the ledger holds back entries published after it; 0 for none

  Returns: how many entries were trimmed.
]]
local rcall = redis.call
local streamKey = KEYS[1]
local indexKey = KEYS[2]
local ledgerGapKey = KEYS[3]
local retentionBound = ARGV[1] .. '-0'
local limit = tonumber(ARGV[2])
local ledgerFloor = ARGV[3] ~= '0' and (ARGV[3] .. '-0') or nil

-- @include xinfo
-- @include trimming

if rcall('EXISTS', streamKey) == 0 then return 0 end
local bound = safeTrimBound(ledgerFloor)
if bound == nil or idLess(bound, retentionBound) then bound = retentionBound end
return trimBelow(bound, limit)
