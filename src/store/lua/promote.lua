-- Move parked deliveries whose retry time has come back into the outbox stream.
-- KEYS: 1 delayed zset, 2 outbox stream
-- ARGV: 1 now ms, 2 max entries
-- Returns {moved, still parked}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local entry = cjson.decode(member)
  redis.call('XADD', KEYS[2], '*', 'id', entry.id, 'p', entry.p, 'attempt', tostring(entry.attempt))
  redis.call('ZREM', KEYS[1], member)
end
return {#due, redis.call('ZCARD', KEYS[1])}
