-- The floor in one round trip: every agent's hash, each followed by the call they are offered or on
-- (skill, offered skill, language, masked caller, answered_at, state; empty when none). Read-only.
-- KEYS[1] = the events stream (it routes the script to the router's slot on Redis Cluster);
-- ARGV[1] = the router's key prefix.
local P = ARGV[1]
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'agents')) do
  local agent = redis.call('HGETALL', P .. 'agent:' .. id)
  if #agent > 0 then
    local call = {}
    for i = 1, #agent, 2 do
      if agent[i] == 'call' and agent[i + 1] ~= '' then
        call = redis.call('HMGET', P .. 'call:' .. agent[i + 1],
          'skill', 'offered_skill', 'language', 'caller', 'answered_at', 'state')
      end
    end
    out[#out + 1] = agent
    out[#out + 1] = call
  end
end
return out
