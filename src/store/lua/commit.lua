-- Commit a decision atomically: dedupe, change status and fields, append the gateway's or an
-- agent's reply to the transcript, queue it for the customer and/or the desk, ack the work item.
-- A crash before this script leaves the work item pending (it is redone); after it, every
-- delivery is durable in the outbox. Either way nothing is lost or doubled.
-- KEYS: 1 conversation hash, 2 message stream, 3 outbox stream, 4 work stream (ack),
--       5 escalation log stream, 6 seen-ids hash, 7 desk watch sorted set
-- ARGV: 1 work group, 2 work entry id ("" = none), 3 role, 4 author name, 5 text ("" = no entry),
--       6 customer outbox payload ("" = not for the customer), 7 escalation log json ("" = none),
--       8 desk outbox payload ("" = none), 9 dedupe id ("" = none), 10 entry kind,
--       11 number of hash field pairs, then the pairs, then the entry's file refs json
--       ("" or absent = none; the bytes were stored before this script), then the desk watch
--       time in ms ("" or absent = none; NX, so the earliest wait stays), then the entry's
--       case number ("" or absent = the record's)
if ARGV[9] ~= '' then
  local seen = redis.call('HGET', KEYS[6], ARGV[9])
  if seen then
    return {0, seen}
  end
end
local pairs_count = tonumber(ARGV[11])
if pairs_count > 0 then
  local fields = {}
  for i = 12, 11 + pairs_count * 2 do
    fields[#fields + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
local files = ARGV[12 + pairs_count * 2] or ''
local id = ''
if ARGV[5] ~= '' or files ~= '' then
  local entry = {'role', ARGV[3], 'author', ARGV[4], 'text', ARGV[5], 'kind', ARGV[10]}
  -- The entry belongs to the case the committer read, or else the conversation's current
  -- one (src/cases.rs).
  local case_number = ARGV[14 + pairs_count * 2] or ''
  if case_number == '' then
    case_number = redis.call('HGET', KEYS[1], 'case')
  end
  if case_number then
    entry[#entry + 1] = 'case'
    entry[#entry + 1] = case_number
  end
  if files ~= '' then
    entry[#entry + 1] = 'files'
    entry[#entry + 1] = files
  end
  id = redis.call('XADD', KEYS[2], '*', unpack(entry))
  if ARGV[6] ~= '' then
    redis.call('XADD', KEYS[3], '*', 'id', id, 'p', ARGV[6])
  end
end
if ARGV[8] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'id', id, 'p', ARGV[8])
end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[5], '*', 'e', ARGV[7])
end
local watch_from = ARGV[13 + pairs_count * 2] or ''
if watch_from ~= '' then
  redis.call('ZADD', KEYS[7], 'NX', watch_from, KEYS[1])
end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[9], id)
end
if ARGV[2] ~= '' then
  -- Acked entries are trimmed in bulk later (trim.lua): deleting each one here would scan
  -- its stream node past every entry deleted before it.
  redis.call('XACK', KEYS[4], ARGV[1], ARGV[2])
end
return {1, id}
