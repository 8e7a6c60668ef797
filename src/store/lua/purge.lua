-- Remove one conversation from its partition in one step: its keys, its index entries and its
-- escalation log entries. Everything here shares the partition's hash tag.
-- KEYS: 1 conversation hash, 2 the partition's conversation index, 3 desk watch sorted set,
--       4 escalation log stream, 5.. the conversation's other keys (transcript, files, ...)
-- ARGV: 1 the record's updated_ms as read before ("" = remove whatever it holds now),
--       2 conversation id, 3 number of escalation log ids, then those ids
-- Returns -1 when the record changed since it was read (a customer wrote again: nothing is
-- removed), else how many keys were deleted.
if ARGV[1] ~= '' then
  local updated = redis.call('HGET', KEYS[1], 'updated_ms')
  if updated ~= ARGV[1] then
    return -1
  end
end
local removed = redis.call('DEL', unpack(KEYS, 5))
removed = removed + redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], KEYS[1])
local count = tonumber(ARGV[3])
if count > 0 then
  redis.call('XDEL', KEYS[4], unpack(ARGV, 4, 3 + count))
end
return removed
