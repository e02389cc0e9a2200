-- Removes an agent. Refused while they are on a call; a ringing offer goes back to its place in line.
-- ARGV[4] = agent id. Errors: NO_AGENT, ON_CALL. Returns {offers, the ringing call's agent leg or ''}.
local id = ARGV[4]
local agent = agent_of(id)
if not agent.state then return redis.error_reply('NO_AGENT agent ' .. id .. ' does not exist') end
if agent.state == 'busy' then return redis.error_reply('ON_CALL agent ' .. id .. ' is on a call') end
local offers = {}
local call, leg = nil, ''
if agent.state == 'offered' then
  leg = redis.call('HGET', call_key(agent.call), 'agent_leg') or ''
  call = requeue(agent.call)
  if call then emit('call_requeued', {'call_id', agent.call, 'agent', id, 'reason', 'agent removed'}) end
end
set_agent_state(id, agent, 'offline', 'removed')
for _, sl in ipairs(skills_of(agent)) do redis.call('HDEL', P .. 'level:' .. sl[1], id) end
redis.call('ZREM', P .. 'wrapups', id)
redis.call('SREM', P .. 'agents', id)
redis.call('DEL', agent_key(id))
emit('agent_removed', {'agent', id})
if call then dispatch_queues(queues_of(call), offers) end
return {offers, leg}
