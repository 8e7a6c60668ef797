-- Ingest one customer message atomically: dedupe, find-or-create, append, enqueue.
-- KEYS: 1 conversation hash, 2 message stream, 3 seen-ids hash, 4 inbound work stream,
--       5 the partition's conversation index (sorted set by creation time)
-- ARGV: 1 channel message id, 2 channel, 3 channel conversation key, 4 conversation id,
--       5 now ms, 6 message kind, 7 text, 8 contact json, 9 context json ("" keeps the old one),
--       10 file refs json ("" = no files; the bytes were stored before this script)
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then
  return {0, existing, redis.call('HGET', KEYS[1], 'status') or 'bot', 0}
end
local status = redis.call('HGET', KEYS[1], 'status')
local created = 0
-- Replies go where the customer wrote last: a linked contact may switch channels.
-- One HSET for all fields: this script runs for every message, so each call counts.
local fields = {'updated_ms', ARGV[5], 'channel', ARGV[2], 'key', ARGV[3]}
if not status then
  status = 'bot'
  created = 1
  for _, field in ipairs({'status', status, 'created_ms', ARGV[5], 'contact', ARGV[8]}) do
    fields[#fields + 1] = field
  end
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[4])
end
if ARGV[9] ~= '' then
  fields[#fields + 1] = 'context'
  fields[#fields + 1] = ARGV[9]
end
redis.call('HSET', KEYS[1], unpack(fields))
local id
if ARGV[10] and ARGV[10] ~= '' then
  id = redis.call('XADD', KEYS[2], '*', 'role', 'customer', 'kind', ARGV[6],
    'text', ARGV[7], 'cmid', ARGV[1], 'files', ARGV[10])
else
  id = redis.call('XADD', KEYS[2], '*', 'role', 'customer', 'kind', ARGV[6],
    'text', ARGV[7], 'cmid', ARGV[1])
end
redis.call('HSET', KEYS[3], ARGV[1], id)
redis.call('XADD', KEYS[4], '*', 'conv', ARGV[4], 'msg', id)
return {1, id, status, created}
