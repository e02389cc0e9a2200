-- Puts a call in line and offers it (or the queue's head) to an agent when one is free.
-- ARGV[4] = call id, ARGV[5] = skill, ARGV[6] = language, ARGV[7] = priority (0-99, higher first),
-- ARGV[8] = channel, ARGV[9] = enqueued_at ('' = now; a callback or re-entry keeps its place),
-- ARGV[10] = lease seconds, ARGV[11..] = more call fields as name, value pairs.
-- Returns the offers made: {{call, agent, endpoint, channel, kind}, ...}; {} if the call is already routed.
local id, skill, lang, channel = ARGV[4], ARGV[5], ARGV[6], ARGV[8]
local prio = math.max(0, math.min(99, tonumber(ARGV[7])))
local key = call_key(id)
if redis.call('EXISTS', key) == 1 then return {} end
local at = tonumber(ARGV[9]) or NOW
local score = (100 - prio) * 1e13 + math.floor(at * 1000)
local q = skill .. ':' .. lang
-- The wait predicted now, logged with the actual one when answered (same formula as
-- routing/estimates.py, which serves callers already in line).
local position = redis.call('ZCOUNT', P .. 'queue:' .. q, '-inf', score) + 1
local free = redis.call('ZCARD', P .. 'pool:' .. q)
local predicted = ''
if position <= free then
  predicted = '0.0'
else  -- staffing and handle times only matter for a caller who will wait
  local staffed = redis.call('SCARD', P .. 'staffed:' .. q)
  local samples = staffed > 0 and redis.call('LRANGE', P .. 'aht:' .. skill, 0, -1) or {}
  if #samples > 0 then
    local sum = 0
    for _, v in ipairs(samples) do sum = sum + tonumber(v) end
    predicted = string.format('%.1f', (position - free) * (sum / #samples) / staffed)
  end
end
local state = 'waiting'
for i = 11, #ARGV, 2 do
  if ARGV[i] == 'callback_number' then state = 'callback' end
end
local enqueued_at = string.format('%.3f', at)
local fields = {'predicted_wait_s', predicted, 'state', state, 'skill', skill, 'language', lang,
  'priority', prio, 'channel', channel, 'enqueued_at', enqueued_at, 'score', string.format('%.0f', score), 'queues', q}
for i = 11, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  if ARGV[i] == 'callback_key' then
    redis.call('SET', P .. 'callback_by:' .. ARGV[i + 1], id, 'EX', math.ceil(tonumber(ARGV[10])))
  end
end
redis.call('HSET', key, unpack(fields))
redis.call('ZADD', P .. 'queue:' .. q, score, id)
redis.call('SADD', P .. 'queues', q)
redis.call('ZADD', P .. 'leases', NOW + tonumber(ARGV[10]), id)
-- a new call (its hash did not exist) has no escalation scheduled yet: only one that is due is written
local due = next_escalation({skill = skill, enqueued_at = enqueued_at})
if due then redis.call('ZADD', P .. 'escalate', due, id) end
emit('call_queued', {'call_id', id, 'skill', skill, 'language', lang, 'priority', prio, 'channel', channel,
  'enqueued_at', enqueued_at, 'predicted_wait_s', predicted})
local offers = {}
-- with nobody free in its queue no offer can follow (the pools only fill as agents come free)
if free > 0 then dispatch_queues({q}, offers) end
return offers
