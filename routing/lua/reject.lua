-- The agent did not take the offered call (no answer, busy, unreachable): the agent goes not_ready
-- and the call back to its place in line, to be offered again.
-- ARGV[4] = call id, ARGV[5] = agent id, ARGV[6] = reason.
-- Returns the offers made; {} when the offer was already settled (a late or repeated report).
local id, agent_id = ARGV[4], ARGV[5]
local offers = {}
local current = redis.call('HMGET', call_key(id), 'state', 'agent')
if current[1] ~= 'offered' or current[2] ~= agent_id then return offers end
local call = requeue(id)
emit('call_offer_failed', {'call_id', id, 'agent', agent_id, 'reason', ARGV[6]})
local agent = agent_of(agent_id)
if agent.state == 'offered' then set_agent_state(agent_id, agent, 'not_ready', ARGV[6]) end
dispatch_queues(queues_of(call), offers)
return offers
