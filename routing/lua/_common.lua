-- Shared by every router script: routing/scripts.py puts this file in front of each operation.
-- KEYS[1] = the events stream, under the same hash tag as the prefix (routing.keys.events_stream): on
--           Redis Cluster it routes the script to the slot every key below lives in
-- ARGV[1] = key prefix carrying the hotline's hash tag, e.g. "hotline:{hotline}:"
-- ARGV[2] = now, epoch seconds (from the caller, so tests can move the clock)
-- ARGV[3] = today's date, for agents' calls-taken-today counter
-- Each operation's own arguments start at ARGV[4].
local P, NOW, TODAY, EVENTS = ARGV[1], tonumber(ARGV[2]), ARGV[3], KEYS[1]
local WORKING = {available = true, offered = true, busy = true, wrap_up = true}
local QUEUE_DEFAULTS = {
  strategy = 'longest_idle', min_level = 1, lower_level_after = 0, overflow_after = 0,
  overflow_to = 'general', callback_after = 0, offer_timeout = 20, wrap_up = 10,
}

local function emit(kind, fields)
  local args = {'XADD', EVENTS, 'MAXLEN', '~', '1000000', '*', 'type', kind, 'ts', string.format('%.3f', NOW)}
  for i = 1, #fields do args[#args + 1] = tostring(fields[i]) end
  redis.call(unpack(args))
end

local function hgetall(key)
  local flat, t = redis.call('HGETALL', key), {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- HMGET of `fields` as a table (absent fields stay nil). The hot paths read only the fields they use:
-- a call's hash carries 20-odd (its IVR path, the caller, the channels' notes) and HGETALL's reply, turned
-- into a Lua table, was the largest single cost of an assignment.
local function hmget(key, fields)
  local values, t = redis.call('HMGET', key, unpack(fields)), {}
  for i = 1, #fields do
    if values[i] then t[fields[i]] = values[i] end
  end
  return t
end

local function call_key(id) return P .. 'call:' .. id end

-- What offering a waiting call reads of it (dispatch_queue, offer).
local OFFER_FIELDS = {'state', 'enqueued_at', 'queues', 'channel', 'callback_number'}
-- What putting an offered call back in line reads (requeue, schedule_escalation, its callers).
local REQUEUE_FIELDS = {'state', 'skill', 'enqueued_at', 'queues', 'score', 'callback_number'}
-- What ending a call reads (end_call, forget_call).
local END_FIELDS = {'state', 'agent', 'skill', 'offered_skill', 'enqueued_at', 'answered_at', 'queues',
  'callback_key', 'agent_leg', 'consult_agent'}

-- Router-wide settings (Router.configure): the most a wrap-up may last with extensions, and whether
-- the reconciler then makes the agent available (off: the agent stays in wrap-up until they submit).
local router_conf_cache = nil
local function router_conf()
  if router_conf_cache then return router_conf_cache end
  local c = hgetall(P .. 'router_conf')
  router_conf_cache = {wrapup_max = tonumber(c.wrapup_max or '600'), wrapup_release = c.wrapup_release == '1'}
  return router_conf_cache
end

local function agent_key(id) return P .. 'agent:' .. id end

-- Every agent field a router script reads (not name, max_calls, wrap_until: one script reads each itself).
-- 'call' must be among them: set_agent_state deletes it only when the table says it is there.
local AGENT_FIELDS = {'state', 'call', 'reason', 'since', 'skills', 'languages', 'idle_since', 'calls_today',
  'day', 'endpoint', 'console'}
local function agent_of(id) return hmget(agent_key(id), AGENT_FIELDS) end

local QCONF_FIELDS = {}
for k in pairs(QUEUE_DEFAULTS) do QCONF_FIELDS[#QCONF_FIELDS + 1] = k end
local conf_cache = {}
local function qconf(skill)
  local c = conf_cache[skill]
  if c then return c end
  c = hmget(P .. 'qconf:' .. skill, QCONF_FIELDS)
  for k, v in pairs(QUEUE_DEFAULTS) do
    if c[k] == nil then c[k] = v elseif type(v) == 'number' then c[k] = tonumber(c[k]) end
  end
  conf_cache[skill] = c
  return c
end

-- "loss:9,complaint:6" -> {{'loss', 9}, {'complaint', 6}}
local function skills_of(agent)
  local out = {}
  for skill, level in string.gmatch(agent.skills or '', '([^:,]+):(%d+)') do out[#out + 1] = {skill, tonumber(level)} end
  return out
end

local function languages_of(agent)
  local out = {}
  for lang in string.gmatch(agent.languages or '', '[^,]+') do out[#out + 1] = lang end
  return out
end

-- The queues ("skill:language") an agent serves.
local function agent_queues(agent)
  local out = {}
  for _, sl in ipairs(skills_of(agent)) do
    for _, lang in ipairs(languages_of(agent)) do out[#out + 1] = sl[1] .. ':' .. lang end
  end
  return out
end

local function calls_today(agent)
  if agent.day ~= TODAY then return 0 end
  return tonumber(agent.calls_today or 0)
end

-- Lower scores are offered first; the queue's strategy decides what "first" means.
local function pool_score(skill, id, level, agent)
  local strategy = qconf(skill).strategy
  local idle = tonumber(agent.idle_since or NOW)
  if strategy == 'most_skilled' then return (10 - level) * 1e10 + idle end
  if strategy == 'fewest_calls' then return calls_today(agent) * 1e10 + idle end
  if strategy == 'round_robin' then return tonumber(redis.call('HGET', P .. 'rr:' .. skill, id) or 0) end
  return idle
end

-- Agents this script made available, not yet written to their pools: {id = {pool key = entry}}, an entry
-- {skill, level, agent, score}; the score is worked out when first needed (pending_score): none for the
-- common case of an agent offered a call at once with nobody else free.
-- Dispatch treats them as pool members (pending_best), so an agent offered the next call by the script
-- that freed them (end_call with callers waiting) is never added to 3-6 pools and removed again;
-- dispatch_queues writes the others (flush_pending) before it returns. Every script that makes an agent
-- available ends with dispatch_queues.
local pending, pending_order = {}, {}

-- Whether member `a` with `sa` sorts before `b` with `sb` in a sorted set: by score, then bytewise
-- (Lua's < on strings follows the server's locale, a sorted set's order does not).
local function zbefore(sa, a, sb, b)
  if sa ~= sb then return sa < sb end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- What the pool's score would have been when the agent was made available: nothing it depends on (idle
-- since, calls today, the round-robin turn) changes while the agent stays available.
local function pending_score(pid, entry)
  if entry.score == nil then entry.score = pool_score(entry.skill, pid, entry.level, entry.agent) end
  return entry.score
end

-- The first of `id` (with `score`, from the pool itself; nil: nobody) and the pending agents of `pool` with
-- at least `need` in the skill (need <= 1: any level, as find_agent). Returns the id and its score (nil for
-- a pending agent compared with nobody).
local function pending_best(pool, need, id, score)
  for _, pid in ipairs(pending_order) do
    local entry = pending[pid] and pending[pid][pool]
    if entry and (need <= 1 or entry.level >= need) then
      if id == nil then
        id, score = pid, nil
      else
        if score == nil then score = pending_score(id, pending[id][pool]) end
        local mine = pending_score(pid, entry)
        if zbefore(mine, pid, score, id) then id, score = pid, mine end
      end
    end
  end
  return id, score
end

local function flush_pending()
  for _, pid in ipairs(pending_order) do
    for pool, entry in pairs(pending[pid] or {}) do redis.call('ZADD', pool, pending_score(pid, entry), pid) end
  end
  pending, pending_order = {}, {}
end

-- Moves the agent to `state`, keeping the available pools and staffed sets in step. Only the
-- indexes whose membership changes are written: most transitions (offered -> busy) touch none.
-- `extra`: more agent fields as name, value pairs, written by the same HSET (one command, not two).
local function set_agent_state(id, agent, state, reason, extra)
  local old = agent.state or 'offline'
  local pools = (state == 'available') ~= (old == 'available')
  local staffing = (WORKING[state] or false) ~= (WORKING[old] or false)
  local filing = nil
  if pools and state == 'available' then filing = {} end
  if pools or staffing then
    for _, sl in ipairs(skills_of(agent)) do
      for _, lang in ipairs(languages_of(agent)) do
        if pools then
          local pool = P .. 'pool:' .. sl[1] .. ':' .. lang
          if filing then filing[pool] = {skill = sl[1], level = sl[2], agent = agent}
          elseif not pending[id] then redis.call('ZREM', pool, id) end  -- pending: never written
        end
        if staffing then
          local staffed = P .. 'staffed:' .. sl[1] .. ':' .. lang
          if WORKING[state] then redis.call('SADD', staffed, id) else redis.call('SREM', staffed, id) end
        end
      end
    end
  end
  if filing then
    if pending[id] == nil then pending_order[#pending_order + 1] = id end
    pending[id] = filing
  elseif pools then
    pending[id] = nil
  end
  agent.state = state
  -- the reason stays with the state it was given for (a not-ready agent's break, lunch, ...)
  local fields = {'HSET', agent_key(id), 'state', state, 'since', NOW, 'reason', reason or ''}
  if extra then
    for i = 1, #extra do fields[#fields + 1] = extra[i] end
  end
  redis.call(unpack(fields))
  -- the tables come from agent_of or hgetall, which read 'call': no HDEL when the agent holds none
  if state ~= 'offered' and state ~= 'busy' and agent.call then
    redis.call('HDEL', agent_key(id), 'call')
    agent.call = nil
  end
  if old ~= state then emit('agent_state', {'agent', id, 'state', state, 'previous', old, 'reason', reason or ''}) end
end

local function make_available(id, agent, reason, keep_idle_since)
  local extra = nil
  if not keep_idle_since or not agent.idle_since then
    agent.idle_since = NOW
    extra = {'idle_since', NOW}
  end
  -- only an agent in wrap-up is in the wrap-up index (agent_state and the reconciler take them out first,
  -- the reconciler drops any left behind)
  if agent.state == 'wrap_up' then redis.call('ZREM', P .. 'wrapups', id) end
  set_agent_state(id, agent, 'available', reason, extra)
end

local function queues_of(call)
  local out = {}
  for q in string.gmatch(call.queues or '', '%S+') do out[#out + 1] = q end
  return out
end

-- When the call's next escalation step is due, or nil when none is left.
local function next_escalation(call)
  local conf = qconf(call.skill)
  local at = tonumber(call.enqueued_at)
  local waited, best = NOW - at, nil
  for _, after in ipairs({conf.lower_level_after, conf.overflow_after, conf.callback_after}) do
    if after > 0 and after > waited and (best == nil or after < best) then best = after end
  end
  if best then return at + best end
  return nil
end

local function schedule_escalation(id, call)
  local due = next_escalation(call)
  if due then redis.call('ZADD', P .. 'escalate', due, id) else redis.call('ZREM', P .. 'escalate', id) end
end

local function min_level(call, skill)
  local conf = qconf(skill)
  if conf.lower_level_after > 0 and NOW - tonumber(call.enqueued_at) >= conf.lower_level_after then return 1 end
  return conf.min_level
end

local SCAN = 64
-- The first agent (and their score) in the pool's strategy order with at least `need` in the skill,
-- pending agents included. With a floor above 1 the pool is read in batches, levels fetched with one
-- HMGET per batch.
local function find_agent(skill, pool, need)
  if need <= 1 then
    local first = redis.call('ZRANGE', pool, 0, 0, 'WITHSCORES')
    return pending_best(pool, need, first[1], tonumber(first[2]))
  end
  local start = 0
  while true do
    local batch = redis.call('ZRANGE', pool, start, start + SCAN - 1, 'WITHSCORES')
    if #batch == 0 then return pending_best(pool, need, nil, nil) end
    local ids = {}
    for i = 1, #batch, 2 do ids[#ids + 1] = batch[i] end
    local levels = redis.call('HMGET', P .. 'level:' .. skill, unpack(ids))
    for i, id in ipairs(ids) do
      if tonumber(levels[i] or 0) >= need then return pending_best(pool, need, id, tonumber(batch[2 * i])) end
    end
    start = start + SCAN
  end
end

local function offer(id, call, agent_id, skill, offers)
  local agent = agent_of(agent_id)
  local conf = qconf(skill)
  for _, q in ipairs(queues_of(call)) do redis.call('ZREM', P .. 'queue:' .. q, id) end
  redis.call('ZREM', P .. 'escalate', id)
  local deadline = NOW + conf.offer_timeout
  redis.call('HSET', call_key(id), 'state', 'offered', 'agent', agent_id, 'offered_skill', skill,
    'offer_until', deadline, 'offered_at', NOW)
  redis.call('ZADD', P .. 'offers', deadline, id)
  agent.call = id
  set_agent_state(agent_id, agent, 'offered', 'call ' .. id, {'call', id})
  if conf.strategy == 'round_robin' then
    redis.call('HSET', P .. 'rr:' .. skill, agent_id, redis.call('INCR', P .. 'rrseq:' .. skill))
  end
  redis.call('RPUSH', P .. 'notify:' .. id, agent_id)
  redis.call('EXPIRE', P .. 'notify:' .. id, math.ceil(conf.offer_timeout) + 5)
  emit('call_offered', {'call_id', id, 'agent', agent_id, 'skill', skill,
    'wait_s', string.format('%.3f', NOW - tonumber(call.enqueued_at))})
  offers[#offers + 1] = {id, agent_id, agent.endpoint or '', call.channel or '',
    call.callback_number and 'callback' or 'live'}
end

-- Offers the head of one queue to the best agent, while both exist.
-- `head`: the head of the line when the caller has just read it (nil: read it here).
local function dispatch_queue(q, offers, head)
  local skill = string.match(q, '^(.-):')
  local key, pool = P .. 'queue:' .. q, P .. 'pool:' .. q
  for _ = 1, 64 do
    -- nobody free for the queue: its head need not be read (most dispatches while callers wait)
    local first = find_agent(skill, pool, 1)
    if not first then return end
    head = head or redis.call('ZRANGE', key, 0, 0)[1]
    if not head then return end
    local call = hmget(call_key(head), OFFER_FIELDS)
    if call.state == nil then
      redis.call('ZREM', key, head)  -- a call that ended without leaving the line
    else
      local need, agent_id = min_level(call, skill), first
      if need > 1 then agent_id = find_agent(skill, pool, need) end
      if not agent_id then return end
      offer(head, call, agent_id, skill, offers)
    end
    head = nil
  end
end

-- Dispatches several queues, the one whose head waits with the best claim (priority, then age) first,
-- so an agent serving many queues takes the call that should go first.
-- Every script that makes an agent available ends here: the agents still pending go to their pools.
local function dispatch_queues(queues, offers)
  local seen, distinct = {}, {}
  for _, q in ipairs(queues) do
    if not seen[q] then
      seen[q] = true
      distinct[#distinct + 1] = q
    end
  end
  if #distinct == 1 then
    dispatch_queue(distinct[1], offers)  -- nothing to order
  else
    local heads = {}
    for _, q in ipairs(distinct) do
      local head = redis.call('ZRANGE', P .. 'queue:' .. q, 0, 0, 'WITHSCORES')
      if head[1] then heads[#heads + 1] = {q, tonumber(head[2]), head[1]} end
    end
    table.sort(heads, function(a, b) return a[2] < b[2] end)
    -- the first line's head is as just read; a dispatch may change the others' (a call in two lines)
    for i, h in ipairs(heads) do dispatch_queue(h[1], offers, i == 1 and h[3] or nil) end
  end
  flush_pending()
end

-- An offered call goes back to its place in line (same score). Returns the call, or nil if not offered.
local function requeue(id)
  local key = call_key(id)
  local call = hmget(key, REQUEUE_FIELDS)
  if call.state ~= 'offered' then return nil end
  redis.call('ZREM', P .. 'offers', id)
  redis.call('HDEL', key, 'agent', 'offer_until', 'offered_skill', 'offered_at', 'agent_leg', 'accepted_at', 'answered_leg')
  call.state = call.callback_number and 'callback' or 'waiting'
  redis.call('HSET', key, 'state', call.state)
  for _, q in ipairs(queues_of(call)) do redis.call('ZADD', P .. 'queue:' .. q, call.score, id) end
  schedule_escalation(id, call)
  redis.call('DEL', P .. 'notify:' .. id)
  return call
end

-- `call` has at least state, queues and callback_key.
local function forget_call(id, call)
  -- Only a waiting call (or a callback request) is in a line and may have an escalation due, only an
  -- offered one is in the offer index (offer, answer and requeue move it between them); an entry left
  -- behind all the same is dropped by dispatch_queue or the reconciler.
  if call.state == 'offered' then
    redis.call('ZREM', P .. 'offers', id)
  elseif call.state ~= 'busy' then
    for _, q in ipairs(queues_of(call)) do redis.call('ZREM', P .. 'queue:' .. q, id) end
    redis.call('ZREM', P .. 'escalate', id)
  end
  redis.call('ZREM', P .. 'leases', id)
  if call.callback_key then redis.call('DEL', P .. 'callback_by:' .. call.callback_key) end
  redis.call('DEL', call_key(id), P .. 'notify:' .. id)
end

-- The agent's talk on call `id` is over (ended, or handed on by a transfer): wrap-up, or available at
-- once when the queue has none (`touched` gets their queues then).
local function wrap_up_after(agent_id, id, conf, touched)
  local agent = agent_of(agent_id)
  if agent.state ~= 'busy' or agent.call ~= id then return end
  if conf.wrap_up > 0 then
    -- A console agent's wrap-up lasts until they submit it: wrap_until is the countdown shown, not an
    -- end; only the release setting lets the reconciler end it, at the cap (Router's wrapup_*). A
    -- phone-only agent (console_seen.lua) has no form to submit: theirs ends at wrap_until.
    local rc = router_conf()
    local wrap_until = NOW + math.min(conf.wrap_up, rc.wrapup_max)
    if agent.console ~= '1' then redis.call('ZADD', P .. 'wrapups', wrap_until, agent_id)
    elseif rc.wrapup_release then redis.call('ZADD', P .. 'wrapups', NOW + rc.wrapup_max, agent_id) end
    set_agent_state(agent_id, agent, 'wrap_up', 'call ' .. id, {'wrap_until', wrap_until})
  else
    make_available(agent_id, agent, 'call ' .. id)
    for _, q in ipairs(agent_queues(agent)) do touched[#touched + 1] = q end
  end
end

-- Ends a call in any state. Returns the agent it was offered to (now free again) and that agent's
-- call leg, so the channel can cancel the ringing; `touched` gets the queues that may dispatch now.
-- `call`: the call's END_FIELDS when the caller read them already.
local function end_call(id, reason, touched, call)
  call = call or hmget(call_key(id), END_FIELDS)
  if not call.state then return nil end
  local agent_id, freed = call.agent, nil
  if call.state == 'busy' and agent_id then
    local conf = qconf(call.offered_skill or call.skill)
    local talk = NOW - tonumber(call.answered_at or NOW)
    local aht = P .. 'aht:' .. (call.offered_skill or call.skill)
    redis.call('LPUSH', aht, string.format('%.3f', talk + conf.wrap_up))
    redis.call('LTRIM', aht, 0, 49)
    emit('call_completed', {'call_id', id, 'agent', agent_id, 'talk_s', string.format('%.3f', talk),
      'reason', reason})
    wrap_up_after(agent_id, id, conf, touched)
  else
    emit('call_abandoned', {'call_id', id, 'state', call.state, 'reason', reason,
      'wait_s', string.format('%.3f', NOW - tonumber(call.enqueued_at))})
    if call.state == 'offered' and agent_id then
      local agent = agent_of(agent_id)
      if agent.state == 'offered' and agent.call == id then
        make_available(agent_id, agent, 'offer withdrawn', true)
        for _, q in ipairs(agent_queues(agent)) do touched[#touched + 1] = q end
        freed = {agent_id, call.agent_leg or ''}
      end
    end
  end
  -- an agent reserved to consult on this call (a warm transfer under way) is free again: the channel's
  -- consultation leg ends with the call (ChanSpy's E, the conference's end), the reservation must too
  local consult = call.consult_agent
  if consult and consult ~= '' then
    local target = agent_of(consult)
    if target.state == 'not_ready' and target.reason == 'consult ' .. id then
      make_available(consult, target, 'consult ended', true)
      for _, q in ipairs(agent_queues(target)) do touched[#touched + 1] = q end
    end
  end
  forget_call(id, call)
  return freed
end
