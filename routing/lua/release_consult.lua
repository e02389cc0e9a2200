-- A warm transfer's consultation on a call is over without a hand-over to wait for (cancelled, failed,
-- completed, or the target's call ended): the call forgets it, and the target, if still reserved for it
-- (not ready, 'consult <call>'), is available again and offered what waits for them, like any agent freed.
-- ARGV[4] = call id, ARGV[5] = '1' when ARGV[6] must be the consultation's call (a leg that ended), else ''.
-- Returns {the target or '' (no consultation, or not that leg's), the offers made}.
local id = ARGV[4]
local key = call_key(id)
local consult = redis.call('HMGET', key, 'consult_agent', 'consult_leg')
local target = consult[1]
if not target or target == '' or (ARGV[5] == '1' and ARGV[6] ~= (consult[2] or '')) then return {'', {}} end
redis.call('HDEL', key, 'consult_agent', 'consult_kind', 'consult_leg')
local offers = {}
local agent = agent_of(target)
if agent.state == 'not_ready' and agent.reason == 'consult ' .. id then
  -- as agent_state.lua makes a not-ready agent available
  redis.call('HDEL', agent_key(target), 'wrap_until')
  redis.call('ZREM', P .. 'wrapups', target)
  make_available(target, agent, '')
  dispatch_queues(agent_queues(agent), offers)
end
return {target, offers}
