-- Take a conversation off the desk watch list only if nobody waits on a person any more: its
-- record is read in the same step, so a wait that began since the caller looked stays.
-- KEYS: 1 conversation hash, 2 desk watch sorted set
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'escalated' then
  return 0
end
if status == 'human' and (redis.call('HGET', KEYS[1], 'customer_waiting_ms') or '') ~= '' then
  return 0
end
redis.call('ZREM', KEYS[2], KEYS[1])
return 1
