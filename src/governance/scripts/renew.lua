-- Extends the concurrency leases of requests still in flight in this process (a crashed
-- process's leases expire instead). KEYS: lease sets; ARGV[1] lease TTL (us), then one member per
-- key. XX: a lease already freed is not brought back.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], math.ceil(ttl / 1000) * 2)
end
return #KEYS
