-- Creates or updates an agent. An agent who is available moves to the pools of their new skills.
-- ARGV[4] = agent id, ARGV[5] = name, ARGV[6] = endpoint, ARGV[7] = skills "loss:9,complaint:6",
-- ARGV[8] = languages "zh-CN,en-US", ARGV[9] = max concurrent calls.
-- Returns the offers made (an available agent may now serve a queue with callers waiting).
local id = ARGV[4]
local key = agent_key(id)
local old = hgetall(key)
local state = old.state or 'offline'
if old.state then
  for _, sl in ipairs(skills_of(old)) do
    redis.call('HDEL', P .. 'level:' .. sl[1], id)
    for _, lang in ipairs(languages_of(old)) do
      redis.call('ZREM', P .. 'pool:' .. sl[1] .. ':' .. lang, id)
      redis.call('SREM', P .. 'staffed:' .. sl[1] .. ':' .. lang, id)
    end
  end
end
redis.call('HSET', key, 'id', id, 'name', ARGV[5], 'endpoint', ARGV[6], 'skills', ARGV[7],
  'languages', ARGV[8], 'max_calls', ARGV[9], 'state', state)
if not old.state then redis.call('HSET', key, 'since', NOW, 'idle_since', NOW, 'calls_today', 0, 'day', TODAY) end
redis.call('SADD', P .. 'agents', id)
local agent = hgetall(key)
for _, sl in ipairs(skills_of(agent)) do redis.call('HSET', P .. 'level:' .. sl[1], id, sl[2]) end
agent.state = nil  -- re-file the agent in the pools and staffed sets of the current skills
set_agent_state(id, agent, state, old.state and 'skills changed' or 'created')
local offers = {}
if state == 'available' then dispatch_queues(agent_queues(agent), offers) end
return offers
