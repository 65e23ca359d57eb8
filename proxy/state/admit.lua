-- One admission: check every limit of every subject, then take all or nothing.
-- KEYS[1] reservation record; then 7 keys per subject (rpm, tpm, conc, tok/d, tok/m, usd/d, usd/m).
-- ARGV: 1 id, 2 tokens, 3 nano_usd, 4 lease_ms, 5 day_reset_ms, 6 month_reset_ms, 7 day_ttl_s,
--       8 month_ttl_s, 9 record_ttl_s, 10 subjects, then 7 limits per subject (-1 = none).
-- Idempotent per reservation id (a client retry after a lost reply takes nothing twice).
-- Returns {admitted, reason, subject index, retry_ms, then per subject: rpm remaining,
--          rpm reset_ms, tpm remaining, tpm reset_ms (-1 when the subject has no such limit)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tokens = tonumber(ARGV[2])
local nusd = tonumber(ARGV[3])
local n = tonumber(ARGV[10])

local function level(key, limit)
  local v = redis.call('HMGET', key, 'l', 't')
  if not v[1] then return limit end
  local l = tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * limit / 60000
  if l > limit then l = limit end
  return l
end

local function used(key)
  return tonumber(redis.call('GET', key) or '0')
end

local reason, who, retry = '', 0, 0
-- A retried call (the reply of the first was lost): the reservation is already taken.
local replay = redis.call('EXISTS', KEYS[1]) == 1
for i = 1, (replay and 0 or n) do
  local k = 1 + (i - 1) * 7
  local a = 10 + (i - 1) * 7
  local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if rpm >= 0 then
    local l = level(KEYS[k + 1], rpm)
    if l < 1 then reason = 'rpm'; retry = (1 - l) * 60000 / rpm end
  end
  if reason == '' and tpm >= 0 then
    if tokens > tpm then
      reason = 'tpm_too_large'; retry = 60000
    else
      local l = level(KEYS[k + 2], tpm)
      if l < tokens then reason = 'tpm'; retry = (tokens - l) * 60000 / tpm end
    end
  end
  if reason == '' and conc >= 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    if redis.call('ZCARD', KEYS[k + 3]) >= conc then reason = 'concurrent'; retry = 1000 end
  end
  if reason == '' then
    local budgets = {
      {'tokens_day', 4, tokens, 5}, {'tokens_month', 5, tokens, 6},
      {'usd_day', 6, nusd, 5}, {'usd_month', 7, nusd, 6},
    }
    for _, b in ipairs(budgets) do
      local limit = tonumber(ARGV[a + b[2]])
      if limit >= 0 and used(KEYS[k + b[2]]) + b[3] > limit then
        reason = b[1]; retry = tonumber(ARGV[b[4]]); break
      end
    end
  end
  if reason ~= '' then who = i; break end
end

if reason == '' and not replay then
  for i = 1, n do
    local k = 1 + (i - 1) * 7
    local a = 10 + (i - 1) * 7
    local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    if rpm >= 0 then
      redis.call('HSET', KEYS[k + 1], 'l', tostring(level(KEYS[k + 1], rpm) - 1), 't', tostring(now))
      redis.call('PEXPIRE', KEYS[k + 1], 120000)
    end
    if tpm >= 0 then
      redis.call('HSET', KEYS[k + 2], 'l', tostring(level(KEYS[k + 2], tpm) - tokens), 't', tostring(now))
      redis.call('PEXPIRE', KEYS[k + 2], 120000)
    end
    if conc >= 0 then
      redis.call('ZADD', KEYS[k + 3], now + tonumber(ARGV[4]), ARGV[1])
      redis.call('PEXPIRE', KEYS[k + 3], tonumber(ARGV[4]) + 60000)
    end
    for j = 4, 7 do
      redis.call('INCRBY', KEYS[k + j], (j <= 5) and ARGV[2] or ARGV[3])
      redis.call('EXPIRE', KEYS[k + j], (j % 2 == 0) and ARGV[7] or ARGV[8])
    end
  end
  redis.call('HSET', KEYS[1], 'tok', ARGV[2], 'usd', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[9])
end

local out = {reason == '' and 1 or 0, reason, who, math.ceil(retry)}
for i = 1, n do
  local k = 1 + (i - 1) * 7
  local a = 10 + (i - 1) * 7
  for j = 1, 2 do
    local limit = tonumber(ARGV[a + j])
    if limit >= 0 then
      local l = level(KEYS[k + j], limit)
      table.insert(out, math.max(0, math.floor(l)))
      table.insert(out, math.max(0, math.ceil((limit - l) * 60000 / limit)))
    else
      table.insert(out, -1)
      table.insert(out, -1)
    end
  end
end
return out
