-- An agent hands their connected call on (issue 18): the call keeps its id and record; the agent is
-- freed (wrap-up) and the call is queued again, offered to one agent only, or taken by one at once.
-- ARGV[4] = call id, ARGV[5] = the agent handing it on, ARGV[6] = how:
--   'queue'  : waiting again in ARGV[7]'s queue (same language), ahead of later callers (its old place);
--   'pinned' : offered to agent ARGV[8] only; if they do not take it, it waits in its own queue again;
--   'joined' : agent ARGV[8] already talks to the caller (a warm transfer completed): busy with them.
-- ARGV[9] = mode (cold, warm), ARGV[10] = the target's kind (queue, agent, supervisor), for the event.
-- Errors: NOT_BUSY when the call is not connected to that agent; TARGET_UNAVAILABLE when the agent
-- to hand it to is not free (pinned: available; joined: available or consulting on this call).
-- Returns the offers made.
local id, from, how, skill, to, mode, kind = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local key = call_key(id)
local call = hgetall(key)
if call.state ~= 'busy' or call.agent ~= from then
  return redis.error_reply('NOT_BUSY call ' .. id .. ' is not connected to agent ' .. from)
end
local target
if how ~= 'queue' then
  target = hgetall(agent_key(to))
  local consulting = target.state == 'not_ready' and target.reason == 'consult ' .. id
  if to == from or not (target.state == 'available' or (how == 'joined' and consulting)) then
    return redis.error_reply('TARGET_UNAVAILABLE agent ' .. to .. ' is ' .. (target.state or 'unknown'))
  end
end
local offers, touched = {}, {}
local talk = NOW - tonumber(call.answered_at or NOW)
local leg_skill = call.offered_skill or call.skill
emit('call_transferred', {'call_id', id, 'agent', from, 'to_kind', kind, 'to', how == 'queue' and skill or to,
  'mode', mode, 'talk_s', string.format('%.3f', talk)})
-- the first agent: wrap-up as after any call (their talk counts in the handling time)
local conf = qconf(leg_skill)
local aht = P .. 'aht:' .. leg_skill
redis.call('LPUSH', aht, string.format('%.3f', talk + conf.wrap_up))
redis.call('LTRIM', aht, 0, 49)
wrap_up_after(from, id, conf, touched)
redis.call('HDEL', key, 'agent', 'answered_at', 'offered_skill', 'offer_until', 'offered_at', 'agent_leg', 'accepted_at', 'answered_leg')
redis.call('HSET', key, 'transferred_from', from, 'transfers', tonumber(call.transfers or 0) + 1)
if how == 'joined' then
  redis.call('HSET', key, 'agent', to, 'offered_skill', leg_skill, 'answered_at', NOW, 'offered_at', NOW)
  redis.call('HSET', agent_key(to), 'call', id, 'calls_today', calls_today(target) + 1, 'day', TODAY)
  set_agent_state(to, target, 'busy', 'call ' .. id)
  emit('call_answered', {'call_id', id, 'agent', to, 'skill', leg_skill, 'wait_s', '0.000', 'predicted_wait_s', ''})
  dispatch_queues(touched, offers)
  return offers
end
-- waiting again: the queue's own line, at the call's first place (it waited once already);
-- its wait and escalation count from now
if how == 'queue' then call.skill = skill end
local q = call.skill .. ':' .. call.language
call.state, call.queues, call.enqueued_at = 'waiting', q, string.format('%.3f', NOW)
redis.call('HSET', key, 'state', 'waiting', 'skill', call.skill, 'queues', q, 'enqueued_at', call.enqueued_at)
redis.call('SADD', P .. 'queues', q)
emit('call_queued', {'call_id', id, 'skill', call.skill, 'language', call.language, 'priority', call.priority,
  'channel', call.channel or '', 'enqueued_at', call.enqueued_at, 'predicted_wait_s', ''})
if how == 'pinned' then
  offer(id, call, to, call.skill, offers)
else
  redis.call('ZADD', P .. 'queue:' .. q, call.score, id)
  schedule_escalation(id, call)
  touched[#touched + 1] = q
end
dispatch_queues(touched, offers)
return offers
