--[[
  Reads new entries of one message stream for the ledger writer, as the ledger's rows: one
  JSON array, each element the entry's own fields (codec.ts names) plus `s` (the stream id)
  and the row's tenant, queue and partition. PostgreSQL unpacks that array with
  json_to_recordset (ledger-repository.ts), so the writer passes it on without parsing it:
  decoding every entry into JavaScript objects and encoding them again was most of the
  ledger's cost. The entries stay pending for the consumer until acknowledged, as with a
  plain XREADGROUP.

  KEYS[1] stream

  ARGV[1] group
  ARGV[2] consumer
  ARGV[3] count
  ARGV[4] tenant id
  ARGV[5] queue id
  ARGV[6] partition

  Returns: the stream ids read, then the JSON array as the last item; empty when nothing was
  new. Raises the server's NOGROUP error when the stream or its group is gone.
]]
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
  'STREAMS', KEYS[1], '>')
if not reply then return {} end

local partition = tonumber(ARGV[6])
local out, rows = {}, {}
for n, entry in ipairs(reply[1][2]) do
  local row = { s = entry[1], tenant_id = ARGV[4], topic_id = ARGV[5], partition_id = partition }
  local fields = entry[2]
  for i = 1, #fields, 2 do row[fields[i]] = fields[i + 1] end
  rows[n] = row
  out[n] = entry[1]
end
if #rows == 0 then return {} end
out[#out + 1] = cjson.encode(rows)
return out
