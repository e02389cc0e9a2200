-- A waiting caller takes the callback offer: they hang up but keep their place in line; the call
-- is dialled back once an agent is reserved for it (agent first).
-- ARGV[4] = call id, ARGV[5] = number to call back, ARGV[6] = caller key (hash of the number, for
-- cancelling by calling again), ARGV[7] = how long the request stands, seconds.
-- Error NOT_WAITING when the call is not waiting (already ringing an agent, or gone).
local id = ARGV[4]
local key = call_key(id)
local call = hmget(key, {'state', 'attempts', 'enqueued_at'})
if call.state ~= 'waiting' then return redis.error_reply('NOT_WAITING call ' .. id .. ' is not waiting') end
local lifetime = tonumber(ARGV[7])
redis.call('HSET', key, 'state', 'callback', 'callback_number', ARGV[5], 'callback_key', ARGV[6],
  'callback_at', NOW, 'attempts', call.attempts or 0)
redis.call('ZADD', P .. 'leases', NOW + lifetime, id)
redis.call('SET', P .. 'callback_by:' .. ARGV[6], id, 'EX', math.ceil(lifetime))
emit('callback_requested', {'call_id', id, 'wait_s', string.format('%.3f', NOW - tonumber(call.enqueued_at))})
return 1
