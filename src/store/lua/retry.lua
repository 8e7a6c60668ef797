-- Take a failed delivery out of the outbox stream and park it until its retry time.
-- KEYS: 1 outbox stream, 2 delayed zset, 3 the target's waiting set, 4 the recipient's delivery
--       line (this conversation and target), 5 the line's hold (when its front is due)
-- ARGV: 1 group, 2 entry id, 3 due ms, 4 member (json: the entry's fields, attempt count, first
--       failure, origin), 5 origin (the entry's first outbox id), 6 queued ms, 7 line ttl ms,
--       8 '1' when the entry failed (it is the front of its line), '0' when it waits behind
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
-- Waiting from the first time it is held back (NX keeps that) until delivered or given up.
redis.call('ZADD', KEYS[3], 'NX', ARGV[6], ARGV[5])
redis.call('ZADD', KEYS[4], 'NX', ARGV[6], ARGV[5])
local ttl = tonumber(ARGV[7])
if ARGV[8] == '1' then
  -- Those behind the front are looked at again when it is due.
  redis.call('SET', KEYS[5], ARGV[3], 'PX', ttl)
  -- The line lives as long as its front keeps being retried: should the front ever vanish
  -- without leaving the line (a build without lines delivered it), the rest go on after this.
  if redis.call('PTTL', KEYS[4]) < ttl then
    redis.call('PEXPIRE', KEYS[4], ttl)
  end
elseif redis.call('PTTL', KEYS[4]) < 0 then
  redis.call('PEXPIRE', KEYS[4], ttl)
end
return 1
