-- A lease held by one instance: take it when free or already ours, extend, or give it up.
-- KEYS: 1 lease key
-- ARGV: 1 holder, 2 ttl ms, 3 mode ("acquire" | "renew" | "release")
local holder = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if holder == ARGV[1] then
    redis.call('DEL', KEYS[1])
  end
  return 1
end
if not holder and ARGV[3] == 'acquire' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
