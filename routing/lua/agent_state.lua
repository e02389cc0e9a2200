-- An agent (or an admin) changes the agent's state: available, not_ready, offline.
-- ARGV[4] = agent id, ARGV[5] = wanted state, ARGV[6] = reason.
-- Leaving mid-offer puts the call back at its place in line. Errors: NO_AGENT, ON_CALL, BAD_STATE.
-- Returns the offers made.
local id, want = ARGV[4], ARGV[5]
local agent = agent_of(id)
if not agent.state then return redis.error_reply('NO_AGENT agent ' .. id .. ' does not exist') end
if want ~= 'available' and want ~= 'not_ready' and want ~= 'offline' then
  return redis.error_reply('BAD_STATE an agent can set available, not_ready or offline, not ' .. want)
end
local offers, touched = {}, {}
if agent.state == want then
  -- a not-ready agent given another reason (a break becomes coaching) keeps their time in state
  if want == 'not_ready' and ARGV[6] ~= '' and agent.reason ~= ARGV[6] then
    redis.call('HSET', agent_key(id), 'reason', ARGV[6])
    emit('agent_reason', {'agent', id, 'state', want, 'reason', ARGV[6]})
  end
  return offers
end
if agent.state == 'busy' then return redis.error_reply('ON_CALL agent ' .. id .. ' is on a call') end
if agent.state == 'offered' then
  if want == 'available' then return redis.error_reply('ON_CALL agent ' .. id .. ' has a call ringing') end
  local call = requeue(agent.call)
  if call then
    emit('call_requeued', {'call_id', agent.call, 'agent', id, 'reason', 'agent ' .. want})
    for _, q in ipairs(queues_of(call)) do touched[#touched + 1] = q end
  end
end
redis.call('HDEL', agent_key(id), 'wrap_until')
redis.call('ZREM', P .. 'wrapups', id)
if want == 'available' then
  make_available(id, agent, ARGV[6])
  for _, q in ipairs(agent_queues(agent)) do touched[#touched + 1] = q end
else
  set_agent_state(id, agent, want, ARGV[6])
end
dispatch_queues(touched, offers)
return offers
