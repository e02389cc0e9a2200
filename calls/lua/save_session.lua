-- Save a call's session unless a newer step of the same call was saved first.
-- KEYS[1] = the session key (routing.keys.session_key)
-- ARGV[1] = the value: "<seq>\n<session json>\n<answer>"
-- ARGV[2] = seq of this value
-- ARGV[3] = TTL in seconds
-- Returns 1 when saved, 0 when the stored seq is already >= ARGV[2] (the other step won).
local current = redis.call('GET', KEYS[1])
if current then
  local stored_seq = tonumber(string.match(current, '^(%d+)\n'))
  if stored_seq and stored_seq >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
