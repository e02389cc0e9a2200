-- Count a wrong PIN of a card; say whether it is the one that reaches the limit (exactly one caller locks).
-- KEYS[1] = the card's counter (calls.keys.pin_key)
-- ARGV[1] = the failures the SQL record counts after this one (0 when unknown): Redis never counts fewer
-- ARGV[2] = the most failures allowed in a window
-- Returns {failures, 1 when this failure reached the limit else 0}; {0, 0} when the counter is gone (reset by an
-- admin, window over, Redis restarted: the record decides), {-1, 0} when another failure locked the card meanwhile.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0}
end
if redis.call('HEXISTS', KEYS[1], 'locked_until') == 1 then
  return {-1, 0}
end
local most = tonumber(ARGV[2])
local before = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
local after = math.max(before + 1, tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'failures', after)
if tonumber(redis.call('HGET', KEYS[1], 'checks') or '0') < after then
  redis.call('HSET', KEYS[1], 'checks', after)
end
if before < most and after >= most then
  return {after, 1}
end
return {after, 0}
