-- Admits one request against one or more virtual keys, atomically: every limit of every key is
-- checked first, and only if all pass is anything charged. Mirrors src/governance/gcra.rs and
-- local.rs. Times are microseconds of this server's clock (TIME), so replicas agree.
--
-- KEYS, five per virtual key: rpm TAT, tpm TAT, concurrency leases (zset), day spend, month spend.
-- ARGV[1] keys, ARGV[2] lease member ('' = none), ARGV[3] lease TTL (us),
-- ARGV[4] day key TTL (s), ARGV[5] month key TTL (s), ARGV[6] us to the next day,
-- ARGV[7] us to the next month; then seven per key: rpm, tpm, tokens reserved, concurrent,
-- day cap (pico-USD), month cap (pico-USD), pico-USD reserved. A limit of -1 is no limit.
--
-- Returns {0, <7 stats per key>} or {1, key index (0-based), limit code, retry after (us),
-- <7 stats of that key>}. Limit codes: 1 rpm, 2 tpm, 3 concurrent, 4 usd_per_day,
-- 5 usd_per_month. Stats: requests remaining, requests reset (us), tokens remaining, tokens
-- reset (us), leases held, day spend, month spend (-1 where the key has no such limit).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local MINUTE = 60000000
local n = tonumber(ARGV[1])
local lease, lease_ttl = ARGV[2], tonumber(ARGV[3])

local function bucket(limit, requests)
  if requests then
    local unit = math.ceil(MINUTE / math.max(limit, 1))
    return unit, unit * limit
  end
  if limit == 0 then return MINUTE, 0 end
  return MINUTE / limit, MINUTE
end

local function tat_of(key)
  local v = redis.call('GET', key)
  if v then return tonumber(v) end
  return now
end

local function standing(tat, unit, tau, limit)
  local ahead = math.max(tat - now, 0)
  local rem = math.floor((tau - ahead) / unit)
  if rem < 0 then rem = 0 end
  if rem > limit then rem = limit end
  return rem, ahead
end

local function stats(k, a, tats)
  local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 4])
  local s = {-1, 0, -1, 0, -1, -1, -1}
  if rpm >= 0 then
    local unit, tau = bucket(rpm, true)
    s[1], s[2] = standing(tats[1] or tat_of(KEYS[k + 1]), unit, tau, rpm)
  end
  if tpm >= 0 then
    local unit, tau = bucket(tpm, false)
    s[3], s[4] = standing(tats[2] or tat_of(KEYS[k + 2]), unit, tau, tpm)
  end
  if conc >= 0 then s[5] = redis.call('ZCARD', KEYS[k + 3]) end
  if tonumber(ARGV[a + 5]) >= 0 then s[6] = tonumber(redis.call('GET', KEYS[k + 4]) or '0') end
  if tonumber(ARGV[a + 6]) >= 0 then s[7] = tonumber(redis.call('GET', KEYS[k + 5]) or '0') end
  return s
end

local function fits(key, cap, reserve)
  if cap < 0 then return true end
  local spent = tonumber(redis.call('GET', key) or '0')
  return spent < cap and spent + reserve <= cap
end

local plan = {}
for i = 0, n - 1 do
  local k, a = i * 5, 7 + i * 7
  local rpm, tpm, tokens = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local conc, pico = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 7])
  local p = {}
  local refused, wait = 0, 0
  if rpm >= 0 then
    local unit, tau = bucket(rpm, true)
    local new = math.max(tat_of(KEYS[k + 1]), now) + unit
    if new - now > tau then
      refused, wait = 1, math.max(math.ceil(new - now - tau), 1)
    else
      p[1] = new
    end
  end
  if refused == 0 and tpm >= 0 then
    local unit, tau = bucket(tpm, false)
    local new = math.max(tat_of(KEYS[k + 2]), now) + math.ceil(tokens * unit)
    if new - now > tau then
      refused, wait = 2, math.max(math.ceil(new - now - tau), 1)
    else
      p[2] = new
    end
  end
  if refused == 0 and conc >= 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    if redis.call('ZCARD', KEYS[k + 3]) >= conc then refused, wait = 3, 1000000 end
  end
  if refused == 0 and not fits(KEYS[k + 4], tonumber(ARGV[a + 5]), pico) then
    refused, wait = 4, tonumber(ARGV[6])
  end
  if refused == 0 and not fits(KEYS[k + 5], tonumber(ARGV[a + 6]), pico) then
    refused, wait = 5, tonumber(ARGV[7])
  end
  if refused ~= 0 then
    local out = {1, i, refused, wait}
    for _, v in ipairs(stats(k, a, {})) do out[#out + 1] = v end
    return out
  end
  plan[i] = p
end

local out = {0}
for i = 0, n - 1 do
  local k, a = i * 5, 7 + i * 7
  local p = plan[i]
  for j = 1, 2 do
    if p[j] then
      redis.call('SET', KEYS[k + j], string.format('%.0f', p[j]), 'PX', math.ceil((p[j] - now) / 1000) + 1)
    end
  end
  if tonumber(ARGV[a + 4]) >= 0 and lease ~= '' then
    redis.call('ZADD', KEYS[k + 3], now + lease_ttl, lease)
    redis.call('PEXPIRE', KEYS[k + 3], math.ceil(lease_ttl / 1000) * 2)
  end
  local pico = ARGV[a + 7]
  if pico ~= '0' then
    if tonumber(ARGV[a + 5]) >= 0 then
      redis.call('INCRBY', KEYS[k + 4], pico)
      redis.call('EXPIRE', KEYS[k + 4], ARGV[4])
    end
    if tonumber(ARGV[a + 6]) >= 0 then
      redis.call('INCRBY', KEYS[k + 5], pico)
      redis.call('EXPIRE', KEYS[k + 5], ARGV[5])
    end
  end
  for _, v in ipairs(stats(k, a, p)) do out[#out + 1] = v end
end
return out
