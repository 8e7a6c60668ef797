-- Ingest one customer message atomically: dedupe, find-or-create, append, enqueue.
-- KEYS: 1 conversation hash, 2 message stream, 3 seen-ids hash, 4 inbound work stream,
--       5 the partition's conversation index (sorted set by creation time),
--       6 the partition's case log (stream; the sweeper's first close checks read it too)
-- ARGV: 1 channel message id, 2 channel, 3 channel conversation key, 4 conversation id,
--       5 now ms, 6 message kind, 7 text, 8 contact json, 9 context json ("" keeps the old one),
--       10 file refs json ("" = no files; the bytes were stored before this script),
--       11 case reopen window ms, 12 repeat-contact window ms,
--       13 "1" when the message is only a 1-5 rating
-- Returns {new, entry id, status, created, case number, case event ("", opened, repeat,
-- reopened or rating)}.
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then
  return {0, existing, redis.call('HGET', KEYS[1], 'status') or 'bot', 0,
    tonumber(redis.call('HGET', KEYS[1], 'case') or '0') or 0, ''}
end
-- One read of everything the script decides on: it runs for every message.
local record = redis.call('HMGET', KEYS[1], 'status', 'case', 'case_closed_ms', 'csat_pending',
  'case_reopens', 'desk_channel', 'desk_ts', 'channel')
local status = record[1]
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
-- Cases (src/cases.rs): the first message ever, or one after the reopen window of a close,
-- opens a case; one within the window reopens it; a rating answering the closed case's
-- satisfaction question leaves it closed.
local now = tonumber(ARGV[5])
local case_number = tonumber(record[2] or '') or 0
local closed = tonumber(record[3] or '')
local rating = closed and ARGV[13] == '1' and record[4] == '1'
local case_event = ''
local reopen_window = tonumber(ARGV[11])
if case_number == 0
    or (closed and not rating and (reopen_window == 0 or now - closed > reopen_window)) then
  local is_repeat = closed ~= nil and now - closed <= tonumber(ARGV[12])
  case_number = case_number + 1
  if closed then
    -- The previous case's figures; a first case has none to clear.
    redis.call('HDEL', KEYS[1], 'case_closed_ms', 'case_close', 'case_reopens', 'case_human',
      'case_escalations', 'case_first_response_ms', 'case_first_human_ms', 'case_repeat')
  end
  fields[#fields + 1] = 'case'
  fields[#fields + 1] = case_number
  -- A conversation's first case opens with it: `created_ms` is its opening time, and a field
  -- less is ~60 B less for every open conversation.
  if case_number > 1 or created == 0 then
    fields[#fields + 1] = 'case_opened_ms'
    fields[#fields + 1] = ARGV[5]
  end
  if is_repeat then
    fields[#fields + 1] = 'case_repeat'
    fields[#fields + 1] = '1'
  end
  -- A new case gets a new desk thread, which links the previous case's. Every earlier one
  -- stays listed too, for an erasure to reach them all; a case opens rarely, so the extra
  -- read is off the path of most messages.
  if record[6] and record[7] then
    local past = redis.call('HGET', KEYS[1], 'past_desk_threads')
    local threads = past and cjson.decode(past) or {}
    threads[#threads + 1] = {record[6], record[7]}
    for _, field in ipairs({'prev_desk_channel', record[6], 'prev_desk_ts', record[7],
        'past_desk_threads', cjson.encode(threads)}) do
      fields[#fields + 1] = field
    end
    redis.call('HDEL', KEYS[1], 'desk_channel', 'desk_ts')
  end
  case_event = is_repeat and 'repeat' or 'opened'
  -- The same fields in every event of a kind, so the stream stores their names once.
  redis.call('XADD', KEYS[6], '*', 'ev', 'opened', 'case', ARGV[4] .. ':' .. case_number,
    'ch', ARGV[2], 'prev', record[8] or '', 'rep', is_repeat and '1' or '0')
elseif closed and not rating then
  redis.call('HDEL', KEYS[1], 'case_closed_ms', 'case_close')
  fields[#fields + 1] = 'case_reopens'
  fields[#fields + 1] = (tonumber(record[5] or '') or 0) + 1
  case_event = 'reopened'
  redis.call('XADD', KEYS[6], '*', 'ev', 'reopened', 'case', ARGV[4] .. ':' .. case_number,
    'ch', ARGV[2])
elseif rating then
  case_event = 'rating'
end
if ARGV[9] ~= '' then
  fields[#fields + 1] = 'context'
  fields[#fields + 1] = ARGV[9]
end
redis.call('HSET', KEYS[1], unpack(fields))
local id
if ARGV[10] and ARGV[10] ~= '' then
  id = redis.call('XADD', KEYS[2], '*', 'role', 'customer', 'kind', ARGV[6],
    'text', ARGV[7], 'cmid', ARGV[1], 'case', case_number, 'files', ARGV[10])
else
  id = redis.call('XADD', KEYS[2], '*', 'role', 'customer', 'kind', ARGV[6],
    'text', ARGV[7], 'cmid', ARGV[1], 'case', case_number)
end
redis.call('HSET', KEYS[3], ARGV[1], id)
redis.call('XADD', KEYS[4], '*', 'conv', ARGV[4], 'msg', id)
return {1, id, status, created, case_number, case_event}
