-- Hands cases whose openings leave the case log before any sweeper read them to the case
-- deadlines, for their first close check: only cases still open (a conversation archived or
-- forgotten, or a case closed meanwhile, needs none). An earlier deadline stays.
-- KEYS: 1 the partition's case deadlines, then the conversations' hashes
-- ARGV: the first check's time (ms) for each conversation, in order
local added = 0
for i = 2, #KEYS do
  local state = redis.call('HMGET', KEYS[i], 'case', 'case_closed_ms')
  if state[1] and not state[2] then
    added = added + redis.call('ZADD', KEYS[1], 'LT', ARGV[i - 1], KEYS[i])
  end
end
return added
