-- Close a conversation's open case (src/cases.rs) and log it, in one step with the checks:
-- a case is closed once, and an idle close happens only if the record says it is due, so a
-- customer who wrote in the meantime keeps their case open whatever instance looked.
-- KEYS: 1 conversation hash, 2 the partition's case deadlines, 3 its case log, 4 its desk watch,
--       5 the conversation's transcript stream
-- ARGV: 1 how (resolved, confirmed; "" = the sweeper: whichever idle close is due),
--       2 now ms, 3 conversation id, 4 AI-idle close ms, 5 idle close ms
-- Returns {1, the case log entry's id, its fields...} when it closed the case, else {0}.
-- Idle is measured from `updated_ms`, which every customer message, answer and agent action
-- sets: the AI answered last when the transcript's last entry is its answer (read here, at a
-- close check, rather than kept on the record for every answer).
local c = redis.call('HMGET', KEYS[1], 'case', 'case_closed_ms', 'status', 'case_human',
  'updated_ms', 'case_opened_ms', 'case_reopens', 'case_escalations',
  'case_first_response_ms', 'case_first_human_ms', 'case_repeat', 'channel', 'created_ms',
  'resolved_ms')
-- A conversation's first case opened with it (ingest.lua).
c[6] = c[6] or c[13]
local number = tonumber(c[1] or '')
if not number or c[2] then
  redis.call('ZREM', KEYS[2], KEYS[1])
  return {'0'}
end
local now = tonumber(ARGV[2])
local how = ARGV[1]
local human = c[4] == '1'
if how == '' then
  local resolved_ms = tonumber(c[14] or '')
  if c[3] == 'resolved' and resolved_ms and resolved_ms >= (tonumber(c[5] or '') or 0) then
    -- Resolved, nothing since, yet the case is open: the close that goes with a resolution
    -- did not happen. (A case reopened after a close still reads `resolved` until triage
    -- answers; that one waits like any open case.)
    how = 'resolved'
  else
    local last = tonumber(c[5] or '') or tonumber(c[6] or '') or now
    local ai_due = nil
    if not human then
      local latest = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)[1]
      local entry = latest and latest[2] or {}
      for i = 1, #entry, 2 do
        if entry[i] == 'role' and entry[i + 1] == 'ai' then
          ai_due = last + tonumber(ARGV[4])
        end
      end
    end
    local idle_due = last + tonumber(ARGV[5])
    if ai_due and now >= ai_due then
      how = 'ai_idle'
    elseif now >= idle_due then
      how = 'idle'
    else
      -- Only this script sets a case's deadline (its first check comes from the case log),
      -- so the next look goes at the earliest a close could come: messages and answers to
      -- come only make either close later, and an answer not given yet comes no sooner than
      -- now.
      local next_look = idle_due
      if ai_due then
        next_look = math.min(ai_due, idle_due)
      elseif not human then
        next_look = math.min(now + tonumber(ARGV[4]), idle_due)
      end
      redis.call('ZADD', KEYS[2], next_look, KEYS[1])
      return {'0'}
    end
  end
end
local fields = {'case_closed_ms', ARGV[2], 'case_close', how}
if c[3] ~= 'resolved' then
  -- The next message starts with the AI, and nobody waits on a person any more.
  for _, field in ipairs({'status', 'resolved', 'customer_waiting_ms', ''}) do
    fields[#fields + 1] = field
  end
  redis.call('ZREM', KEYS[4], KEYS[1])
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZREM', KEYS[2], KEYS[1])
local event = {'ev', 'closed', 'case', ARGV[3] .. ':' .. number, 'ch', c[12] or '',
  'how', how, 'human', human and '1' or '0', 'opened', c[6] or '', 'reopens', c[7] or '0',
  'esc', c[8] or '0', 'first', c[9] or '', 'human_at', c[10] or '', 'rep', c[11] or '0'}
local id = redis.call('XADD', KEYS[3], '*', unpack(event))
local reply = {'1', id}
for _, value in ipairs(event) do
  reply[#reply + 1] = value
end
return reply
