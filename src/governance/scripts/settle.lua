-- Settles one request: frees its concurrency lease and replaces its reservations by what it
-- used (a token delta on the tpm TAT, a pico-USD delta on the spend of the periods it reserved
-- in). A delta may be positive: usage beyond the reservation is charged in full, and a tpm TAT
-- beyond the bucket is debt that later admissions wait out.
--
-- KEYS: five per virtual key, as admit.lua. ARGV[1] keys, ARGV[2] lease member ('' = none),
-- ARGV[3] day key TTL (s), ARGV[4] month key TTL (s); then five per key: rpm, tpm, concurrent,
-- token delta, pico-USD delta. Returns the seven stats per key of admit.lua (requests as -1).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local MINUTE = 60000000
local n, lease = tonumber(ARGV[1]), ARGV[2]

local function add(key, delta, ttl)
  if delta == 0 then return end
  if delta < 0 and redis.call('EXISTS', key) == 0 then return end
  local v = redis.call('INCRBY', key, string.format('%.0f', delta))
  if v < 0 then redis.call('SET', key, '0', 'KEEPTTL') end
  redis.call('EXPIRE', key, ttl)
end

local out = {}
for i = 0, n - 1 do
  local k, a = i * 5, 4 + i * 5
  local tpm, conc = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local tokens, pico = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local s = {-1, 0, -1, 0, -1, -1, -1}
  if tpm >= 0 then
    local v = redis.call('GET', KEYS[k + 2])
    local tat = now
    if v then tat = tonumber(v) end
    if tokens ~= 0 then
      local unit = MINUTE / math.max(tpm, 1)
      local shift = math.floor(math.abs(tokens) * unit)
      if tokens > 0 then
        tat = math.max(tat, now) + shift
      else
        tat = math.max(tat - shift, now)
      end
      if tat > now then
        redis.call('SET', KEYS[k + 2], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
      else
        redis.call('DEL', KEYS[k + 2])
      end
    end
    local tau = MINUTE
    if tpm == 0 then tau = 0 end
    local ahead = math.max(tat - now, 0)
    local rem = math.floor((tau - ahead) / (MINUTE / math.max(tpm, 1)))
    if rem < 0 then rem = 0 end
    if rem > tpm then rem = tpm end
    s[3], s[4] = rem, ahead
  end
  if lease ~= '' then redis.call('ZREM', KEYS[k + 3], lease) end
  if conc >= 0 then s[5] = redis.call('ZCARD', KEYS[k + 3]) end
  add(KEYS[k + 4], pico, ARGV[3])
  add(KEYS[k + 5], pico, ARGV[4])
  s[6] = tonumber(redis.call('GET', KEYS[k + 4]) or '0')
  s[7] = tonumber(redis.call('GET', KEYS[k + 5]) or '0')
  for _, v in ipairs(s) do out[#out + 1] = v end
end
return out
