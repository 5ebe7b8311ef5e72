"""Every Redis key, stream and group name the service uses, and their TTLs.

Nothing else in the code base spells a key. Lua scripts receive ``PREFIX`` as
``ARGV[1]`` and build keys with :data:`LUA_KEYS`, the Lua mirror of the functions
below (kept next to them so the two cannot drift apart unnoticed).

Layout::

    lamina:ready:<priority>             list: ring of tenants with queued jobs at <priority>
    lamina:ready:<priority>:<t>         list: tenant <t>'s queued job ids, oldest first
    lamina:leases                       zset: running job ids by lease deadline
    lamina:wake                         list: wake-up tokens for workers blocked in claim
    lamina:tenant:<t>:replicas          string: replicas held by <t>'s running jobs
    lamina:rate:<t>                     hash: <t>'s request token bucket {tokens, at}
    lamina:job:<id>                     hash: the job record (status, spec, fence, ...)
    lamina:job:<id>:events              stream: state/batch/epoch events (MAXLEN ~)
    lamina:job:<id>:history             hash: epoch -> JSON logs of that epoch
    lamina:jobs:<status>                zset: job ids by time they entered <status>
    lamina:tenant:<t>:jobs              zset: a tenant's job ids by submit time
    lamina:tenant:<t>:jobs:<status>     zset: the same, restricted to one status
    lamina:tenant:<t>:datasets          hash: dataset id -> JSON metadata
    lamina:tenant:<t>:events            stream: <t>'s job changes {job_id, type, ...} (MAXLEN ~)
    lamina:idem:<t>:<sha256(key)>       string: idempotency key -> job id (TTL)
    lamina:claim:<nonce>                string: one claim call's job id (TTL: the lease)
"""

from __future__ import annotations

import hashlib

PREFIX = "lamina"
#: Claim order: every queued high job goes before any normal one, normal before low.
PRIORITIES = ("high", "normal", "low")
LEASES = f"{PREFIX}:leases"
WAKE = f"{PREFIX}:wake"

#: Default TTLs (seconds); the live values come from Settings.
DEFAULT_JOB_TTL = 7 * 24 * 3600
DEFAULT_IDEMPOTENCY_TTL = 24 * 3600
#: Approximate cap on a tenant's event stream (state changes and finished epochs).
TENANT_EVENTS_MAXLEN = 5000


def job_key(job_id: str) -> str:
    """Hash holding one job's record."""
    return f"{PREFIX}:job:{job_id}"


def job_events_key(job_id: str) -> str:
    """Stream of one job's live events."""
    return f"{PREFIX}:job:{job_id}:events"


def job_history_key(job_id: str) -> str:
    """Hash epoch -> JSON logs for one job."""
    return f"{PREFIX}:job:{job_id}:history"


def status_index_key(status: str) -> str:
    """Zset of every job currently in ``status`` (score: time it got there)."""
    return f"{PREFIX}:jobs:{status}"


def tenant_jobs_key(tenant: str, status: str | None = None) -> str:
    """Zset of a tenant's jobs (score: submit time), optionally of one status."""
    base = f"{PREFIX}:tenant:{tenant}:jobs"
    return f"{base}:{status}" if status else base


def tenant_datasets_key(tenant: str) -> str:
    """Hash of a tenant's datasets: id -> JSON metadata."""
    return f"{PREFIX}:tenant:{tenant}:datasets"


def tenant_events_key(tenant: str) -> str:
    """Stream of a tenant's job changes: a job's state change or finished epoch."""
    return f"{PREFIX}:tenant:{tenant}:events"


def ready_key(priority: str, tenant: str | None = None) -> str:
    """The tenant ring of ``priority``, or one tenant's queued jobs at that priority."""
    base = f"{PREFIX}:ready:{priority}"
    return f"{base}:{tenant}" if tenant is not None else base


def tenant_replicas_key(tenant: str) -> str:
    """Counter of the replicas a tenant's running jobs hold."""
    return f"{PREFIX}:tenant:{tenant}:replicas"


def rate_key(tenant: str) -> str:
    """A tenant's request token bucket."""
    return f"{PREFIX}:rate:{tenant}"


def claim_key(nonce: str) -> str:
    """The job one claim call took, so that a retried call (its reply was lost) gets
    the same job instead of a second one."""
    return f"{PREFIX}:claim:{nonce}"


def idempotency_key(tenant: str, key: str) -> str:
    """String mapping a client's idempotency key to the job it created."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{PREFIX}:idem:{tenant}:{digest}"


LUA_KEYS = r"""
local P = ARGV[1]
local PRIORITIES = {'high', 'normal', 'low'}
local LEASES = P .. ':leases'
local WAKE = P .. ':wake'
local function job_key(id) return P .. ':job:' .. id end
local function events_key(id) return P .. ':job:' .. id .. ':events' end
local function history_key(id) return P .. ':job:' .. id .. ':history' end
local function status_key(s) return P .. ':jobs:' .. s end
local function tenant_key(t, s)
  if s then return P .. ':tenant:' .. t .. ':jobs:' .. s end
  return P .. ':tenant:' .. t .. ':jobs'
end
local function idem_key(t, digest) return P .. ':idem:' .. t .. ':' .. digest end
local function ready_key(p, t)
  if t then return P .. ':ready:' .. p .. ':' .. t end
  return P .. ':ready:' .. p
end
local function replicas_key(t) return P .. ':tenant:' .. t .. ':replicas' end
local function rate_key(t) return P .. ':rate:' .. t end
local function claim_key(nonce) return P .. ':claim:' .. nonce end
local function tenant_events_key(t) return P .. ':tenant:' .. t .. ':events' end
""" + f"local TENANT_EVENTS_MAXLEN = {TENANT_EVENTS_MAXLEN}\n"
