-- The reconciler, run every second or so: expired offers, finished wrap-ups, calls whose channel
-- stopped renewing their lease, and escalation steps that came due. Then dispatch what changed.
-- ARGV[4] = most items of each kind to handle in one run.
-- Returns {offers, ended calls {{call, freed agent, agent leg}, ...}}.
local limit = tonumber(ARGV[4])
local offers, touched, ended = {}, {}, {}
local function due(index)
  return redis.call('ZRANGEBYSCORE', P .. index, '-inf', NOW, 'LIMIT', 0, limit)
end

for _, id in ipairs(due('offers')) do
  local agent_id = redis.call('HGET', call_key(id), 'agent')
  local call = requeue(id)
  if call then
    emit('call_offer_failed', {'call_id', id, 'agent', agent_id or '', 'reason', 'offer_timeout'})
    local agent = agent_of(agent_id)
    if agent.state == 'offered' and agent.call == id then set_agent_state(agent_id, agent, 'not_ready', 'offer_timeout') end
    for _, q in ipairs(queues_of(call)) do touched[#touched + 1] = q end
  else
    redis.call('ZREM', P .. 'offers', id)
  end
end

-- A console agent's wrap-up ends when they submit it; only with the release setting on does one still in
-- wrap-up at the cap (counted from the start of the wrap-up) become available here. A phone-only
-- agent's ends at its countdown, the queue's wrap_up time.
for _, agent_id in ipairs(due('wrapups')) do
  redis.call('ZREM', P .. 'wrapups', agent_id)
  local agent = agent_of(agent_id)
  local held = agent.console == '1'
  if agent.state == 'wrap_up' and (not held or router_conf().wrapup_release) then
    local ends = held and tonumber(agent.since or NOW) + router_conf().wrapup_max or NOW
    if ends <= NOW then
      redis.call('HDEL', agent_key(agent_id), 'wrap_until')
      make_available(agent_id, agent, held and 'wrap_up max over' or 'wrap_up over')
      for _, q in ipairs(agent_queues(agent)) do touched[#touched + 1] = q end
    else
      redis.call('ZADD', P .. 'wrapups', ends, agent_id)
    end
  end
end

for _, id in ipairs(due('leases')) do
  local freed = end_call(id, 'lease_expired', touched) or {'', ''}
  ended[#ended + 1] = {id, freed[1], freed[2]}
  redis.call('ZREM', P .. 'leases', id)
end

-- Calls whose channel process stopped renewing them (killed mid-call, in the menus or on hold): their
-- records end here, so no call stays open for ever.
for _, id in ipairs(due('channel_leases')) do
  local channel = redis.call('HGET', P .. 'channel_of', id) or ''
  emit('call_ended', {'call_id', id, 'channel', channel, 'status', 'lost', 'outcome', 'hangup'})
  redis.call('ZREM', P .. 'channel_leases', id)
  redis.call('HDEL', P .. 'channel_of', id)
end

for _, id in ipairs(due('escalate')) do
  local call = hgetall(call_key(id))
  if call.state == 'waiting' or call.state == 'callback' then
    local conf = qconf(call.skill)
    local waited = NOW - tonumber(call.enqueued_at)
    if conf.overflow_after > 0 and waited >= conf.overflow_after and not call.overflowed
        and conf.overflow_to ~= call.skill then
      local q = conf.overflow_to .. ':' .. call.language
      call.queues = call.queues .. ' ' .. q
      redis.call('ZADD', P .. 'queue:' .. q, call.score, id)
      redis.call('SADD', P .. 'queues', q)
      redis.call('HSET', call_key(id), 'queues', call.queues, 'overflowed', '1')
      emit('call_overflowed', {'call_id', id, 'to', q, 'wait_s', string.format('%.3f', waited)})
    end
    if conf.callback_after > 0 and waited >= conf.callback_after and not call.callback_offer
        and call.state == 'waiting' then
      redis.call('HSET', call_key(id), 'callback_offer', '1')
      emit('callback_offered', {'call_id', id, 'wait_s', string.format('%.3f', waited)})
    end
    for _, q in ipairs(queues_of(call)) do touched[#touched + 1] = q end
    schedule_escalation(id, call)
  else
    redis.call('ZREM', P .. 'escalate', id)
  end
end

dispatch_queues(touched, offers)
return {offers, ended}
