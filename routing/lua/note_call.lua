-- Note a field on a call that is still in the router. A hold loop or agent leg noting something just after
-- the call ended must not bring its hash back as a stub with no skill or state (and no expiry).
-- KEYS[1] = the call's hash; ARGV[1] = the field, ARGV[2] = its value. Returns 1 if noted.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
