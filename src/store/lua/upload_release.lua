-- Give back the bytes of an upload that was counted but not stored (or was a resend of a
-- stored one). A counter that reaches zero, or had expired meanwhile, is deleted rather
-- than left negative without a TTL.
-- KEYS: the counters the upload was counted in (all `{uq}`)
-- ARGV: 1 bytes
for _, key in ipairs(KEYS) do
  if redis.call('DECRBY', key, ARGV[1]) <= 0 then
    redis.call('DEL', key)
  end
end
return 0
