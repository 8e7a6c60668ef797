-- Take a failed delivery out of the outbox stream and park it until its retry time.
-- KEYS: 1 outbox stream, 2 delayed zset, 3 (optional) the recipient's delivery hold
-- ARGV: 1 group, 2 entry id, 3 due ms, 4 member (json with attempt count), 5 hold ttl ms
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if KEYS[3] then
  -- Later messages to the same recipient wait until this one is due, so they arrive in order.
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[5])
end
return 1
