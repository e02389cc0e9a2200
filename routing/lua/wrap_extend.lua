-- The agent asks for more wrap-up time: the countdown (wrap_until) moves on by ARGV[5] seconds, never past
-- the cap counted from the start of the wrap-up. ARGV[4] = agent id. Errors: NO_AGENT, BAD_STATE.
-- Returns the new wrap_until.
local id, more = ARGV[4], tonumber(ARGV[5])
local agent = hgetall(agent_key(id))
if not agent.state then return redis.error_reply('NO_AGENT agent ' .. id .. ' does not exist') end
if agent.state ~= 'wrap_up' then return redis.error_reply('BAD_STATE agent ' .. id .. ' is not in wrap-up') end
local since = tonumber(agent.since or NOW)
local from = math.max(tonumber(agent.wrap_until or NOW), NOW)
local until_ = math.min(from + math.max(more or 0, 0), since + router_conf().wrapup_max)
until_ = math.max(until_, tonumber(agent.wrap_until or NOW))  -- a cap lowered since never shortens it
redis.call('HSET', agent_key(id), 'wrap_until', until_)
emit('agent_wrap_extended', {'agent', id, 'wrap_until', string.format('%.3f', until_)})
return string.format('%.3f', until_)
