-- The agent works from the console (it showed them their state): from now on their wrap-ups last until
-- they submit them there. An agent who only ever uses a desk phone (Asterisk *1/*2/*3) never gets the mark:
-- their wrap-up still ends after the queue's wrap_up time, as the phone has no form to submit.
-- ARGV[4] = agent id. Returns 1 if the mark was new.
local id = ARGV[4]
if redis.call('EXISTS', agent_key(id)) == 0 then return 0 end
return redis.call('HSETNX', agent_key(id), 'console', '1')
