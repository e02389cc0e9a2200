-- A call leaves the router: completed after talking (agent to wrap-up), or abandoned while waiting
-- or ringing (a ringing agent is freed, keeping their place among idle agents).
-- ARGV[4] = call id, ARGV[5] = reason, ARGV[6] = '1' to end a callback request too (cancelled by
-- the caller); otherwise a caller who hangs up after asking for a callback keeps it.
-- ARGV[7] = agent id or '': end the call only while it is with that agent (a late report from an
-- agent's leg must not end the call after it moved on to another agent).
-- Returns {offers, freed agent or '', that agent's call leg or '', the state the call ended in or ''}.
local id, reason, only_agent = ARGV[4], ARGV[5], ARGV[7]
local offers, touched = {}, {}
local call = hmget(call_key(id), END_FIELDS)
local state = call.state
if not state or (state == 'callback' and ARGV[6] ~= '1') then return {offers, '', '', ''} end
if only_agent ~= '' and call.agent ~= only_agent then return {offers, '', '', ''} end
local freed = end_call(id, reason, touched, call)
dispatch_queues(touched, offers)
if freed then return {offers, freed[1], freed[2], state} end
return {offers, '', '', state}
