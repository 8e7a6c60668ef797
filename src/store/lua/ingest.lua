-- Ingest one customer message atomically: dedupe, find-or-create, append, enqueue.
-- KEYS: 1 conversation hash, 2 message stream, 3 seen-ids hash, 4 inbound work stream,
--       5 the partition's conversation index (sorted set by creation time),
--       6 the partition's case deadlines (sorted set), 7 the partition's case log (stream)
-- ARGV: 1 channel message id, 2 channel, 3 channel conversation key, 4 conversation id,
--       5 now ms, 6 message kind, 7 text, 8 contact json, 9 context json ("" keeps the old one),
--       10 file refs json ("" = no files; the bytes were stored before this script),
--       11 case reopen window ms, 12 ms until the case sweeper first looks at closing it,
--       13 repeat-contact window ms, 14 "1" when the message is only a 1-5 rating
-- Returns {new, entry id, status, created, case number, case event ("", opened, repeat,
-- reopened or rating)}.
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then
  return {0, existing, redis.call('HGET', KEYS[1], 'status') or 'bot', 0,
    tonumber(redis.call('HGET', KEYS[1], 'case') or '0') or 0, ''}
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
-- Cases (src/cases.rs): the first message ever, or one after the reopen window of a close,
-- opens a case; one within the window reopens it; a rating answering the closed case's
-- satisfaction question leaves it closed.
local now = tonumber(ARGV[5])
local case = redis.call('HMGET', KEYS[1], 'case', 'case_closed_ms', 'csat_pending',
  'case_reopens', 'desk_channel', 'desk_ts', 'channel')
local case_number = tonumber(case[1] or '') or 0
local closed = tonumber(case[2] or '')
local rating = closed and ARGV[14] == '1' and case[3] == '1'
local case_event = ''
local reopen_window = tonumber(ARGV[11])
if case_number == 0
    or (closed and not rating and (reopen_window == 0 or now - closed > reopen_window)) then
  local is_repeat = closed ~= nil and now - closed <= tonumber(ARGV[13])
  case_number = case_number + 1
  redis.call('HDEL', KEYS[1], 'case_closed_ms', 'case_close', 'case_reopens', 'case_human',
    'case_escalations', 'case_first_response_ms', 'case_first_human_ms', 'case_ai_ms',
    'case_repeat')
  for _, field in ipairs({'case', case_number, 'case_opened_ms', ARGV[5]}) do
    fields[#fields + 1] = field
  end
  if is_repeat then
    fields[#fields + 1] = 'case_repeat'
    fields[#fields + 1] = '1'
  end
  -- A new case gets a new desk thread, which links the previous case's. Every earlier one
  -- stays listed too, for an erasure to reach them all; a case opens rarely, so the extra
  -- read is off the path of most messages.
  if case[5] and case[6] then
    local past = redis.call('HGET', KEYS[1], 'past_desk_threads')
    local threads = past and cjson.decode(past) or {}
    threads[#threads + 1] = {case[5], case[6]}
    for _, field in ipairs({'prev_desk_channel', case[5], 'prev_desk_ts', case[6],
        'past_desk_threads', cjson.encode(threads)}) do
      fields[#fields + 1] = field
    end
    redis.call('HDEL', KEYS[1], 'desk_channel', 'desk_ts')
  end
  case_event = is_repeat and 'repeat' or 'opened'
  -- The same fields in every event of a kind, so the stream stores their names once.
  redis.call('XADD', KEYS[7], '*', 'ev', 'opened', 'case', ARGV[4] .. ':' .. case_number,
    'ch', ARGV[2], 'prev', case[7] or '', 'rep', is_repeat and '1' or '0')
elseif closed and not rating then
  redis.call('HDEL', KEYS[1], 'case_closed_ms', 'case_close')
  fields[#fields + 1] = 'case_reopens'
  fields[#fields + 1] = (tonumber(case[4] or '') or 0) + 1
  case_event = 'reopened'
  redis.call('XADD', KEYS[7], '*', 'ev', 'reopened', 'case', ARGV[4] .. ':' .. case_number,
    'ch', ARGV[2])
elseif rating then
  case_event = 'rating'
end
if not rating then
  redis.call('ZADD', KEYS[6], now + tonumber(ARGV[12]), KEYS[1])
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
