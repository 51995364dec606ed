-- XINFO replies are flat lists of alternating names and values; this makes one a table
-- (`record.name`, `record['last-delivered-id']`).
local function xinfoRecord(flat)
  local record = {}
  for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
  return record
end
