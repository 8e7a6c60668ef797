-- Take a failed delivery out of the outbox stream and park it until its retry time.
-- KEYS: 1 outbox stream, 2 delayed zset
-- ARGV: 1 group, 2 entry id, 3 due ms, 4 member (json with attempt count)
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
