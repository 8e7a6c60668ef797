-- Move parked deliveries whose retry time has come back into the outbox stream.
-- KEYS: 1 delayed zset, 2 outbox stream
-- ARGV: 1 now ms, 2 max entries
-- Returns {moved, still parked}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local entry = cjson.decode(member)
  local fields = {'id', entry.id, 'p', entry.p, 'attempt', tostring(entry.attempt)}
  -- Members parked by a build before give-up by time carry none of these.
  if entry.first_failure then
    fields[#fields + 1] = 'first_failure'
    fields[#fields + 1] = entry.first_failure
  end
  if entry.origin then
    fields[#fields + 1] = 'origin'
    fields[#fields + 1] = entry.origin
  end
  if entry.replayed then
    fields[#fields + 1] = 'replayed'
    fields[#fields + 1] = '1'
  end
  redis.call('XADD', KEYS[2], '*', unpack(fields))
  redis.call('ZREM', KEYS[1], member)
end
return {#due, redis.call('ZCARD', KEYS[1])}
