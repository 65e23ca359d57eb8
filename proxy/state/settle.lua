-- Settle one reservation to what was consumed, and free its concurrency slot.
-- KEYS and ARGV as in admit.lua, with ARGV[2], ARGV[3] the consumed tokens and nano-USD.
-- When the reservation record exists its amounts are given back first; when it does not
-- (the admission never reached Redis) the consumption is simply added. Idempotent.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = tonumber(ARGV[10])
local held = redis.call('HMGET', KEYS[1], 'tok', 'usd', 'done')
if held[3] then return 2 end  -- settled already (a retried call): nothing twice
local htok, husd = '0', '0'
if held[1] then htok, husd = held[1], held[2] end
redis.call('HSET', KEYS[1], 'tok', '0', 'usd', '0', 'done', '1')
redis.call('EXPIRE', KEYS[1], ARGV[9])
local dtok = tonumber(ARGV[2]) - tonumber(htok)

for i = 1, n do
  local k = 1 + (i - 1) * 7
  local a = 10 + (i - 1) * 7
  local tpm, conc = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if tpm >= 0 then
    local v = redis.call('HMGET', KEYS[k + 2], 'l', 't')
    local l = tpm
    if v[1] then l = tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * tpm / 60000 end
    l = l - dtok
    if l > tpm then l = tpm end
    redis.call('HSET', KEYS[k + 2], 'l', tostring(l), 't', tostring(now))
    redis.call('PEXPIRE', KEYS[k + 2], 120000)
  end
  if conc >= 0 then redis.call('ZREM', KEYS[k + 3], ARGV[1]) end
  for j = 4, 7 do
    local key = KEYS[k + j]
    redis.call('INCRBY', key, (j <= 5) and ARGV[2] or ARGV[3])
    redis.call('DECRBY', key, (j <= 5) and htok or husd)
    redis.call('EXPIRE', key, (j % 2 == 0) and ARGV[7] or ARGV[8])
  end
end
return held[1] and 1 or 0
