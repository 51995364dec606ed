--[[
  Takes the part of a partition's ledger gap not yet warned about, so that each gap gets one
  warning line however many ledger writers look: the entries trimmed before the ledger read
  them (`n`, counted by trimming.lua) less those already taken (`logged`).

  KEYS[1] ledger gap (hash: `n`, `logged`)

  Returns: how many entries went unrecorded since the last call; 0 when none.
]]
local gap = redis.call('HMGET', KEYS[1], 'n', 'logged')
local n, logged = tonumber(gap[1]) or 0, tonumber(gap[2]) or 0
if n <= logged then return 0 end
redis.call('HSET', KEYS[1], 'logged', n)
return n - logged
