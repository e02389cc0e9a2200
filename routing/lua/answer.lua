-- The agent picked up an offered call: both become busy, the call's lease starts.
-- ARGV[4] = call id, ARGV[5] = agent id, ARGV[6] = lease seconds, ARGV[7] = the agent's channel (or '').
-- Error NOT_OFFERED when the call is no longer offered to this agent (withdrawn, timed out, ended).
-- Returns {wait_s, predicted_wait_s, channel, callback_number}.
local id, agent_id = ARGV[4], ARGV[5]
local key = call_key(id)
local call = hmget(key, {'state', 'agent', 'enqueued_at', 'offered_skill', 'predicted_wait_s', 'channel',
  'callback_number'})
if call.state ~= 'offered' or call.agent ~= agent_id then
  return redis.error_reply('NOT_OFFERED call ' .. id .. ' is not offered to agent ' .. agent_id)
end
redis.call('ZREM', P .. 'offers', id)
redis.call('HSET', key, 'state', 'busy', 'answered_at', NOW, 'answered_leg', ARGV[7] or '')
redis.call('ZADD', P .. 'leases', NOW + tonumber(ARGV[6]), id)
local agent = agent_of(agent_id)
set_agent_state(agent_id, agent, 'busy', 'call ' .. id, {'calls_today', calls_today(agent) + 1, 'day', TODAY})
local wait = string.format('%.3f', NOW - tonumber(call.enqueued_at))
emit('call_answered', {'call_id', id, 'agent', agent_id, 'skill', call.offered_skill, 'wait_s', wait,
  'predicted_wait_s', call.predicted_wait_s or ''})
return {wait, call.predicted_wait_s or '', call.channel or '', call.callback_number or ''}
