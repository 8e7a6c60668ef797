-- Move a knowledge-base candidate from one status to another, once.
-- Concurrent approvals race here; exactly one sees the expected status and wins.
-- KEYS: 1 candidates hash
-- ARGV: 1 candidate id, 2 expected status, 3 new status, 4 decided ms, 5 error text ("" = clear)
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then
  return {'missing', ''}
end
local candidate = cjson.decode(json)
if candidate.status ~= ARGV[2] then
  return {'conflict', json}
end
candidate.status = ARGV[3]
candidate.decided_ms = tonumber(ARGV[4])
if ARGV[5] ~= '' then
  candidate.error = ARGV[5]
else
  candidate.error = nil
end
local updated = cjson.encode(candidate)
redis.call('HSET', KEYS[1], ARGV[1], updated)
return {'ok', updated}
