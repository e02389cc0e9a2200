-- The agent accepted the offered call on their screen while their phone rings: the offer no longer
-- times out for ARGV[6] seconds more; the call is answered (busy) only when the phone picks up, so a
-- phone that never does puts the call back in line like any unanswered offer.
-- ARGV[4] = call id, ARGV[5] = agent id, ARGV[6] = seconds the phone may go on ringing.
-- Error NOT_OFFERED when the call is not offered to this agent (any more).
local id, agent_id = ARGV[4], ARGV[5]
local key = call_key(id)
local current = redis.call('HMGET', key, 'state', 'agent')
if current[1] ~= 'offered' or current[2] ~= agent_id then
  return redis.error_reply('NOT_OFFERED call ' .. id .. ' is not offered to agent ' .. agent_id)
end
redis.call('ZADD', P .. 'offers', NOW + tonumber(ARGV[6]), id)
redis.call('HSET', key, 'accepted_at', NOW, 'offer_until', NOW + tonumber(ARGV[6]))
emit('call_accepted', {'call_id', id, 'agent', agent_id})
return 1
