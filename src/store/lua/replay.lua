-- Put a dead-lettered delivery back into the outbox, once: the dead entry goes in the same step,
-- so a second replay (or two admins at once) finds nothing and queues nothing.
-- KEYS: 1 dead-letter stream, 2 outbox stream
-- ARGV: 1 dead entry id
-- Returns the new outbox entry id, or false when there is no such dead entry.
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then
  return false
end
local fields = found[1][2]
local id, payload, origin = '', nil, nil
for i = 1, #fields, 2 do
  if fields[i] == 'id' then
    id = fields[i + 1]
  elseif fields[i] == 'p' then
    payload = fields[i + 1]
  elseif fields[i] == 'origin' then
    origin = fields[i + 1]
  end
end
if not payload then
  return redis.error_reply('dead entry ' .. ARGV[1] .. ' has no payload')
end
-- Marked, so the sender first checks the delivery receipts, as for an entry taken over from a
-- dead instance: what already reached the customer is not sent again.
local entry = {'id', id, 'p', payload, 'replayed', '1'}
if origin then
  -- Its first outbox id puts it back in its place in line: ahead of what was queued after it
  -- (a replayed briefing goes before the thread's replies that wait for it).
  entry[#entry + 1] = 'origin'
  entry[#entry + 1] = origin
end
local queued = redis.call('XADD', KEYS[2], '*', unpack(entry))
redis.call('XDEL', KEYS[1], ARGV[1])
return queued
