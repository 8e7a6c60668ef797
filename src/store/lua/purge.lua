-- Remove one conversation from its partition in one step: its keys, its index entries and its
-- escalation log entries. Everything here shares the partition's hash tag.
-- KEYS: 1 conversation hash, 2 the partition's conversation index, 3 desk watch sorted set,
--       4 escalation log stream, 5 transcript stream, 6.. the conversation's other keys
-- ARGV: 1 '1' to remove only what is unchanged since it was read, '' to remove whatever it
--       holds now, 2 the record's updated_ms as read, 3 the last transcript entry id as read
--       ('' = none), 4 conversation id, 5 number of escalation log ids, then those ids
-- Returns -1 when it changed since it was read (a customer wrote again: nothing is removed),
-- else how many keys were deleted.
if ARGV[1] == '1' then
  -- The last entry id tells a message written within the same millisecond apart.
  local last = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
  local last_id = ''
  if last[1] then
    last_id = last[1][1]
  end
  if redis.call('HGET', KEYS[1], 'updated_ms') ~= ARGV[2] or last_id ~= ARGV[3] then
    return -1
  end
end
local removed = redis.call('DEL', unpack(KEYS, 5))
removed = removed + redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[3], KEYS[1])
local count = tonumber(ARGV[5])
if count > 0 then
  redis.call('XDEL', KEYS[4], unpack(ARGV, 6, 5 + count))
end
return removed
