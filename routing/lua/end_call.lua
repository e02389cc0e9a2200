-- A call leaves the router: completed after talking (agent to wrap-up), or abandoned while waiting
-- or ringing (a ringing agent is freed, keeping their place among idle agents).
-- ARGV[4] = call id, ARGV[5] = reason, ARGV[6] = '1' to end a callback request too (cancelled by
-- the caller); otherwise a caller who hangs up after asking for a callback keeps it.
-- Returns {offers, freed agent or '', that agent's call leg or ''}.
local id, reason = ARGV[4], ARGV[5]
local offers, touched = {}, {}
local state = redis.call('HGET', call_key(id), 'state')
if not state or (state == 'callback' and ARGV[6] ~= '1') then return {offers, '', ''} end
local freed = end_call(id, reason, touched)
dispatch_queues(touched, offers)
if freed then return {offers, freed[1], freed[2]} end
return {offers, '', ''}
