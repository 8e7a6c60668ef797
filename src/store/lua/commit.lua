-- Commit a triage or desk decision atomically: optionally change status and fields, append
-- the gateway's reply to the transcript, queue it in the outbox, and ack the work item.
-- A crash before this script leaves the work item pending (it is redone); after it,
-- the reply is durable in the outbox. Either way nothing is lost or doubled.
-- KEYS: 1 conversation hash, 2 message stream, 3 outbox stream, 4 work stream (ack), 5 extra stream (escalation log)
-- ARGV: 1 work group, 2 work entry id ("" = none), 3 role, 4 author name, 5 text ("" = no reply),
--       6 outbox payload json, 7 extra stream entry json ("" = none), 8 number of hash field pairs, then pairs
local pairs_count = tonumber(ARGV[8])
if pairs_count > 0 then
  local fields = {}
  for i = 9, 8 + pairs_count * 2 do
    fields[#fields + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
local id = ''
if ARGV[5] ~= '' then
  id = redis.call('XADD', KEYS[2], '*', 'role', ARGV[3], 'author', ARGV[4], 'text', ARGV[5])
  redis.call('XADD', KEYS[3], '*', 'id', id, 'p', ARGV[6])
end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[5], '*', 'e', ARGV[7])
end
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[4], ARGV[1], ARGV[2])
end
return id
