-- Ordered delivery per key (a group whose subscriptions have `ordering: "key"`; DECISIONS.md
-- "Ordered delivery per key (issue 25)"). Per group and partition, `headsKey` (hash) names
-- each message key's head, its one entry that is out: `k:<key>` -> stream id, and back,
-- `i:<stream id>` -> key. Entries of a held key that a pull reads meanwhile are parked in
-- `parkedKey` (sorted set, every score 0, members `<key length>:<key><padded stream id>`, so
-- one ZRANGEBYLEX finds a key's oldest). A parked entry stays in the group's pending list with
-- delivery count 0 and no visibility deadline: no pull hands it out, no receipt can settle it,
-- and trimming, which keeps the oldest pending entry, keeps it. Releasing a key makes its
-- oldest parked entry the head, due at once in the in-flight set, so the next pull of any
-- consumer claims it (count 1). Expects the locals `rcall`, `headsKey`, `parkedKey`, `now`
-- and `hold` (inflightWrites).

local function keyOf(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'k' then return fields[i + 1] end
  end
  return nil
end

local function keyPrefix(key)
  return #key .. ':' .. key
end

-- Both halves of a stream id are at most 20 digits: padded, members sort by id within a key.
local function pad20(digits)
  return string.rep('0', 20 - #digits) .. digits
end

local function parkedMember(key, id)
  local ms, seq = string.match(id, '(%d+)-(%d+)')
  return keyPrefix(key) .. pad20(ms) .. '-' .. pad20(seq)
end

local function idOfMember(member)
  local ms, seq = string.match(string.sub(member, -41), '(%d+)-(%d+)')
  return (string.gsub(ms, '^0+(%d)', '%1')) .. '-' .. (string.gsub(seq, '^0+(%d)', '%1'))
end

-- Releases the keys whose head is among `ids` (acknowledged, dropped, or moved to the
-- dead-letter queue): each such key's oldest parked entry becomes its head, or the key is free.
local function releaseHeads(ids)
  if #ids == 0 then return end
  local names = {}
  for i, id in ipairs(ids) do names[i] = 'i:' .. id end
  local keys = rcall('HMGET', headsKey, unpack(names))
  local cleared = {}
  for i = 1, #ids do
    local key = keys[i]
    if key then
      cleared[#cleared + 1] = names[i]
      local prefix = keyPrefix(key)
      -- Members of this key continue with a digit; ';' sorts after every digit.
      local nextMember =
        rcall('ZRANGEBYLEX', parkedKey, '[' .. prefix, '(' .. prefix .. ';', 'LIMIT', 0, 1)[1]
      if nextMember then
        rcall('ZREM', parkedKey, nextMember)
        local id = idOfMember(nextMember)
        rcall('HSET', headsKey, 'k:' .. key, id, 'i:' .. id, key)
        hold(id, now)
      else
        cleared[#cleared + 1] = 'k:' .. key
      end
    end
  end
  if #cleared > 0 then rcall('HDEL', headsKey, unpack(cleared)) end
end
