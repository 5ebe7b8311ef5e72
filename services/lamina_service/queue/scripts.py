"""Lua scripts: every state transition of a job is one atomic script.

Convention for every script: ``ARGV[1]`` key prefix, ``ARGV[2]`` now (Unix
seconds), ``ARGV[3]`` events MAXLEN, ``ARGV[4]`` TTL of finished jobs; script
arguments start at ``ARGV[5]``. Scripts that a worker attempt calls take the
fencing token first and change nothing unless it is the job's current token
and the job is running, so a stale attempt (its lease expired and another
worker took over) can neither commit, fail, requeue nor publish.
"""

from __future__ import annotations

from lamina_service.queue.keys import LUA_KEYS

_COMMON = LUA_KEYS + r"""
local NOW = ARGV[2]
local MAXLEN = ARGV[3]
local TTL = tonumber(ARGV[4])
local TERMINAL = {succeeded = true, failed = true, cancelled = true}

local function set_status(id, new)
  local jk = job_key(id)
  local old = redis.call('HGET', jk, 'status')
  local tenant = redis.call('HGET', jk, 'tenant')
  local submitted = redis.call('HGET', jk, 'submitted_at')
  redis.call('HSET', jk, 'status', new, 'updated_at', NOW)
  if old then
    redis.call('ZREM', tenant_key(tenant, old), id)
    redis.call('ZREM', status_key(old), id)
  end
  redis.call('ZADD', tenant_key(tenant, new), submitted, id)
  redis.call('ZADD', status_key(new), NOW, id)
  if TERMINAL[new] then
    redis.call('HSET', jk, 'finished_at', NOW)
    redis.call('EXPIRE', jk, TTL)
    redis.call('EXPIRE', history_key(id), TTL)
  end
end

local function add_event(id, kind, data)
  local eid = redis.call('XADD', events_key(id), 'MAXLEN', '~', MAXLEN, '*',
                         'type', kind, 'data', data)
  local st = redis.call('HGET', job_key(id), 'status')
  if st and TERMINAL[st] then redis.call('EXPIRE', events_key(id), TTL) end
  return eid
end

local function state_event(id, extra)
  local jk = job_key(id)
  local ev = {status = redis.call('HGET', jk, 'status'),
              attempt = tonumber(redis.call('HGET', jk, 'attempts'))}
  for k, v in pairs(extra or {}) do ev[k] = v end
  return add_event(id, 'state', cjson.encode(ev))
end

local function ack(msg_id)
  if msg_id and msg_id ~= '' then
    redis.call('XACK', STREAM, GROUP, msg_id)
    redis.call('XDEL', STREAM, msg_id)
  end
end

local function dispatch(id)
  local mid = redis.call('XADD', STREAM, '*', 'job_id', id)
  redis.call('HSET', job_key(id), 'message_id', mid)
  return mid
end
"""

_FENCED = _COMMON + r"""
local ID = ARGV[5]
local TOKEN = ARGV[6]
local JK = job_key(ID)
if redis.call('HGET', JK, 'fence') ~= TOKEN or redis.call('HGET', JK, 'status') ~= 'running' then
  return 0
end
local MSG = redis.call('HGET', JK, 'message_id')
"""

# ARGV[5..]: id, tenant, idempotency digest or '', idempotency ttl, name, dataset_id, spec
SUBMIT = _COMMON + r"""
local id, tenant, digest, idem_ttl = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if digest ~= '' then
  local existing = redis.call('GET', idem_key(tenant, digest))
  if existing and redis.call('EXISTS', job_key(existing)) == 1 then
    return {existing, 0, redis.call('HGET', job_key(existing), 'status')}
  end
end
local jk = job_key(id)
redis.call('HSET', jk, 'id', id, 'tenant', tenant, 'name', ARGV[9], 'dataset_id', ARGV[10],
           'spec', ARGV[11], 'attempts', 0, 'fence', 0, 'cancel_requested', 0,
           'submitted_at', NOW, 'error', '')
redis.call('ZADD', tenant_key(tenant), NOW, id)
set_status(id, 'queued')
dispatch(id)
state_event(id)
if digest ~= '' then
  redis.call('SET', idem_key(tenant, digest), id, 'EX', idem_ttl)
end
return {id, 1, 'queued'}
"""

# ARGV[5..]: id, tenant -> 'missing' | 'cancelled' | 'cancel_requested' | <terminal status>
CANCEL = _COMMON + r"""
local id, tenant = ARGV[5], ARGV[6]
local jk = job_key(id)
if redis.call('HGET', jk, 'tenant') ~= tenant then return 'missing' end
local st = redis.call('HGET', jk, 'status')
if st == 'queued' then
  set_status(id, 'cancelled')
  state_event(id)
  return 'cancelled'
elseif st == 'running' then
  redis.call('HSET', jk, 'cancel_requested', 1)
  state_event(id, {cancel_requested = true})
  return 'cancel_requested'
end
return st
"""

# ARGV[5..]: id, message id, worker, max_attempts, lease seconds
# -> {'run', attempt, fence, spec, dataset_id} | {'skip', reason}
START = _COMMON + r"""
local id, msg, worker, max_attempts = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local jk = job_key(id)
local st = redis.call('HGET', jk, 'status')
if not st then ack(msg) return {'skip', 'missing'} end
if TERMINAL[st] then ack(msg) return {'skip', st} end
if redis.call('HGET', jk, 'message_id') ~= msg then ack(msg) return {'skip', 'superseded'} end
if redis.call('HGET', jk, 'cancel_requested') == '1' then
  set_status(id, 'cancelled')
  state_event(id)
  ack(msg)
  return {'skip', 'cancelled'}
end
local attempts = tonumber(redis.call('HGET', jk, 'attempts'))
if attempts >= max_attempts then
  local last = redis.call('HGET', jk, 'error')
  if last == '' then last = 'worker lost (lease expired)' end
  redis.call('HSET', jk, 'error',
             'gave up after ' .. attempts .. ' attempts; last error: ' .. last)
  set_status(id, 'failed')
  state_event(id, {error = redis.call('HGET', jk, 'error')})
  ack(msg)
  return {'skip', 'dead-lettered'}
end
if st == 'running' then
  redis.call('HSET', jk, 'error', 'worker ' .. redis.call('HGET', jk, 'worker') ..
             ' lost (lease expired) during attempt ' .. attempts)
end
attempts = redis.call('HINCRBY', jk, 'attempts', 1)
local fence = redis.call('HINCRBY', jk, 'fence', 1)
redis.call('HSET', jk, 'worker', worker, 'lease_until', tonumber(NOW) + tonumber(ARGV[9]))
if not redis.call('HGET', jk, 'started_at') then redis.call('HSET', jk, 'started_at', NOW) end
set_status(id, 'running')
state_event(id, {worker = worker})
local f = redis.call('HMGET', jk, 'spec', 'dataset_id', 'tenant', 'submitted_at')
return {'run', attempts, fence, f[1], f[2],
        f[3], f[4]}
"""

# ARGV[5..]: id, token, worker, lease seconds
HEARTBEAT = _FENCED + r"""
redis.call('XCLAIM', STREAM, GROUP, ARGV[7], 0, MSG, 'JUSTID')
redis.call('HSET', JK, 'lease_until', tonumber(NOW) + tonumber(ARGV[8]))
return 1
"""

# ARGV[5..]: id, token, type, data json
EVENT = _FENCED + r"""
add_event(ID, ARGV[7], ARGV[8])
return 1
"""

# ARGV[5..]: id, token, epoch, logs json, event data json
EPOCH = _FENCED + r"""
redis.call('HSET', history_key(ID), ARGV[7], ARGV[8])
redis.call('HSET', JK, 'epoch', ARGV[7])
add_event(ID, 'epoch', ARGV[9])
return 1
"""

# ARGV[5..]: id, token, artifact id, final logs json
COMMIT = _FENCED + r"""
redis.call('HSET', JK, 'artifact_id', ARGV[7], 'final_logs', ARGV[8])
set_status(ID, 'succeeded')
state_event(ID, {artifact_id = ARGV[7]})
ack(MSG)
return 1
"""

# ARGV[5..]: id, token, error, retry (0/1), max attempts -> 0 | 'queued' | 'failed'
FAIL = _FENCED + r"""
redis.call('HSET', JK, 'error', ARGV[7])
local attempts = tonumber(redis.call('HGET', JK, 'attempts'))
ack(MSG)
if ARGV[8] == '1' and attempts < tonumber(ARGV[9]) and
   redis.call('HGET', JK, 'cancel_requested') ~= '1' then
  redis.call('HINCRBY', JK, 'fence', 1)
  set_status(ID, 'queued')
  state_event(ID, {error = ARGV[7], retry = true})
  dispatch(ID)
  return 'queued'
end
if redis.call('HGET', JK, 'cancel_requested') == '1' then
  set_status(ID, 'cancelled')
else
  set_status(ID, 'failed')
end
state_event(ID, {error = ARGV[7]})
return redis.call('HGET', JK, 'status')
"""

# ARGV[5..]: id, token, reason
REQUEUE = _FENCED + r"""
redis.call('HINCRBY', JK, 'attempts', -1)
redis.call('HINCRBY', JK, 'fence', 1)
ack(MSG)
set_status(ID, 'queued')
state_event(ID, {requeued = ARGV[7]})
dispatch(ID)
return 1
"""

# ARGV[5..]: id, token
CANCELLED = _FENCED + r"""
set_status(ID, 'cancelled')
state_event(ID)
ack(MSG)
return 1
"""
