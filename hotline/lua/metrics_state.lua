-- The router's shared state for /metrics, read in one round trip (hotline/metrics_state.py).
-- KEYS[1] = the events stream (routes the script to the router's slot on Redis Cluster, like the router's scripts)
-- ARGV[1] = the router's key prefix, ARGV[2] = the score band of the queue sorted sets (routing/live.py)
-- Returns {queues, serving, states}, flat lists: queues = name, waiting, oldest enqueue ms or ''; serving =
-- skill:language, state, agents (an agent of two skills counts in each of its queues); states = state, agents.
local P, BAND = ARGV[1], tonumber(ARGV[2])
local queues, names = {}, {}
for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do names[q] = true end

local serving, totals = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'agents')) do
  local a = redis.call('HMGET', P .. 'agent:' .. id, 'state', 'skills', 'languages')
  local state = a[1] or 'offline'
  totals[state] = (totals[state] or 0) + 1
  for skill in string.gmatch(a[2] or '', '([^:,]+):%d+') do
    for lang in string.gmatch(a[3] or '', '[^,]+') do
      local q = skill .. ':' .. lang
      names[q] = true
      local key = q .. '|' .. state
      serving[key] = (serving[key] or 0) + 1
    end
  end
end

for q, _ in pairs(names) do
  local key = P .. 'queue:' .. q
  local n = redis.call('ZCARD', key)
  local oldest = ''
  if n > 0 then
    -- Scores are (100 - priority) * BAND + enqueued ms: the oldest caller is the first of one of the priority
    -- bands. One ZRANGEBYSCORE per band present (a handful), not a walk over every caller.
    local low, from = nil, '-inf'
    while true do
      local first = redis.call('ZRANGEBYSCORE', key, from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      if #first == 0 then break end
      local score = tonumber(first[2])
      local ms = score % BAND
      if low == nil or ms < low then low = ms end
      from = '(' .. string.format('%.0f', (score - ms) + BAND - 1)
    end
    oldest = string.format('%.0f', low)
  end
  queues[#queues + 1] = q
  queues[#queues + 1] = n
  queues[#queues + 1] = oldest
end

local agents = {}
for key, n in pairs(serving) do
  local q, state = string.match(key, '^(.*)|(.*)$')
  agents[#agents + 1] = q
  agents[#agents + 1] = state
  agents[#agents + 1] = n
end
local states = {}
for state, n in pairs(totals) do
  states[#states + 1] = state
  states[#states + 1] = n
end
return {queues, agents, states}
