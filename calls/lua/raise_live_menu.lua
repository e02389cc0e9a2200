-- Point new calls at a menu version, unless a later one is already live.
-- KEYS[1] = the live-version key (routing.keys.live_menu_key)
-- ARGV[1] = the version just published
-- Returns the live version afterwards: two publishes finishing in the wrong order leave the higher one live.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local published = tonumber(ARGV[1])
if published > current then
  redis.call('SET', KEYS[1], ARGV[1])
  return published
end
return current
