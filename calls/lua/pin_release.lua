-- Give back a reserved PIN check that was never judged (the core system failed, or said the card is its to lock).
-- KEYS[1] = the card's counter (calls.keys.pin_key)
-- Returns the checks left, or -1 when there was nothing to give back (expired, locked, or reset meanwhile).
local checks = tonumber(redis.call('HGET', KEYS[1], 'checks') or '0')
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if checks <= failures or redis.call('HEXISTS', KEYS[1], 'locked_until') == 1 then
  return -1
end
return redis.call('HINCRBY', KEYS[1], 'checks', -1)
