-- Moves a partition's case-log cursor (how far the sweeper has given opened cases their first
-- close check) forward to ARGV[1], never back: two instances' sweeps may finish out of order.
-- KEYS: 1 the cursor. ARGV: 1 a case log entry id. Returns 1 when it moved.
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local current = redis.call('GET', KEYS[1])
if current then
  local current_ms, current_seq = parse(current)
  local next_ms, next_seq = parse(ARGV[1])
  if current_ms > next_ms or (current_ms == next_ms and current_seq >= next_seq) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
