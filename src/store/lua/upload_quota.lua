-- Count one web chat upload's bytes against its quotas, or refuse it. One script, so two
-- gateway instances can never both take the last bytes of a quota. Nothing is counted on
-- refusal. Every key carries the `{uq}` hash tag (one slot on a cluster).
-- KEYS: 1 the conversation's counter, 2 the client address's counter for today,
--       3.. the total's buckets, the current one first (the sum is what is still stored)
-- ARGV: 1 bytes, 2 conversation limit, 3 address limit (0: no address known, not counted),
--       4 total limit, 5 conversation TTL, 6 address TTL, 7 bucket TTL (all seconds)
-- Returns 0 when counted, 1 over the conversation's limit, 2 over the address's, 3 over the total.
local bytes = tonumber(ARGV[1])
local function held(key)
  return tonumber(redis.call('GET', key) or '0')
end
if held(KEYS[1]) + bytes > tonumber(ARGV[2]) then
  return 1
end
local by_address = ARGV[3] ~= '0'
if by_address and held(KEYS[2]) + bytes > tonumber(ARGV[3]) then
  return 2
end
local total = 0
for i = 3, #KEYS do
  total = total + held(KEYS[i])
end
if total + bytes > tonumber(ARGV[4]) then
  return 3
end
redis.call('INCRBY', KEYS[1], bytes)
redis.call('EXPIRE', KEYS[1], ARGV[5])
if by_address then
  redis.call('INCRBY', KEYS[2], bytes)
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
redis.call('INCRBY', KEYS[3], bytes)
redis.call('EXPIRE', KEYS[3], ARGV[7])
return 0
