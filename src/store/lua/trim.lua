-- Trim a work stream of the entries its consumer group is done with. Acked entries stay in
-- the stream (deleting each one would scan its node past every earlier deleted entry); whole
-- nodes of them go here, cheaply, with an approximate MINID trim.
-- Safe bound: the oldest entry still pending, or else the last one delivered to the group;
-- every entry below it was delivered and acked. Entries after it were never delivered.
-- KEYS: 1 stream
-- ARGV: 1 group
-- Returns how many entries were trimmed.
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then
  return 0
end
local delivered
for _, group in ipairs(groups) do
  local name, last
  for i = 1, #group, 2 do
    if group[i] == 'name' then
      name = group[i + 1]
    elseif group[i] == 'last-delivered-id' then
      last = group[i + 1]
    end
  end
  if name == ARGV[1] then
    delivered = last
  end
end
if not delivered then
  return 0
end
local bound = delivered
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] > 0 then
  bound = pending[2]
end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', bound)
