"""The words the service and its clients share: job states and event types.

Defined once here; the queue's ``JobStatus`` and its Lua scripts, the worker's events,
the SDK, the command line and the web page all use these (tests check the scripts and
the page against them). This module imports nothing, so the service may import it.
"""

#: A job's life: queued -> running -> succeeded | failed | cancelled (a lost or retried
#: attempt goes back to queued).
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
#: States a job never leaves.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
#: Types of a job's events (its stream, SSE ``event:`` names): a status change, progress
#: within an epoch, an epoch's logs.
EVENT_TYPES = ("state", "batch", "epoch")
