-- Reserve one PIN check of a card, unless the card is locked or has reached its limit.
-- KEYS[1] = the card's counter (calls.keys.pin_key): a hash {checks, failures, since, reserved_at} while counting
--           (checks = failures + checks being judged now; reserved_at = when the last check began),
--           {locked_at, locked_until} while locked; it expires with its window or its lock
-- ARGV[1] = now (epoch seconds)
-- ARGV[2] = the window in seconds
-- ARGV[3] = the most failures allowed in a window
-- ARGV[4] = seconds after which checks still in flight are taken for abandoned (their process died)
-- ARGV[5] = '' at first; '1' when ARGV[6..8] carry the card's SQL record (the key was missing)
-- ARGV[6] = failures in the record, ARGV[7] = the window's start (or the lock's, epoch seconds),
-- ARGV[8] = locked until ('' not locked, '0' until an admin resets it, else epoch seconds)
-- Returns {'load'} when the key is missing and no record came (a card without failures, or Redis lost its data:
-- the caller reads the SQL record and asks again), {'locked'} while locked, {'full', checks, failures} when the
-- checks (judged or being judged) reach the limit (a wrong one among them locks the card: wait), else
-- {'try', n}: this check is the card's n-th in the window.
local now, window, most, stale = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[5] == '' then
    return {'load'}
  end
  if ARGV[8] ~= '' then
    redis.call('HSET', KEYS[1], 'locked_at', ARGV[7], 'locked_until', ARGV[8])
    if ARGV[8] ~= '0' then
      redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(ARGV[8]) * 1000))
    end
    return {'locked'}
  end
  redis.call('HSET', KEYS[1], 'checks', ARGV[6], 'failures', ARGV[6], 'since', ARGV[7])
  redis.call('PEXPIREAT', KEYS[1], math.floor((tonumber(ARGV[7]) + window) * 1000))
end
local locked = redis.call('HGET', KEYS[1], 'locked_until')
if locked then
  if locked == '0' or tonumber(locked) > now then
    return {'locked'}
  end
  redis.call('DEL', KEYS[1])  -- the lock is over (its expiry normally removes it first): start from the record
  return {'load'}
end
local checks = tonumber(redis.call('HGET', KEYS[1], 'checks') or '0')
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
local reserved_at = tonumber(redis.call('HGET', KEYS[1], 'reserved_at') or '0')
if checks >= most and failures < checks and now - reserved_at > stale then
  checks = failures  -- no check began for so long that those still in flight were abandoned (process died)
  redis.call('HSET', KEYS[1], 'checks', checks)
end
if checks >= most then
  return {'full', checks, failures}
end
redis.call('HSET', KEYS[1], 'reserved_at', ARGV[1])
return {'try', redis.call('HINCRBY', KEYS[1], 'checks', 1)}
