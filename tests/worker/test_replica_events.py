"""A replica's events reach the driver's poll: batch and epoch-begin events at most
every BATCH_EVENT_WAKE seconds (each poll is a Ray call into the chief, on the
replicas' CPUs); other events at once."""

from __future__ import annotations

import threading
import time

from lamina_worker.replica import BATCH_EVENT_WAKE, Replica


def _poll_after(replica: Replica, event: dict, delay: float, timeout: float):
    """``replica.poll(timeout)`` while ``event`` is emitted ``delay`` s into it; the
    events it returned and the seconds it took."""
    threading.Timer(delay, replica.emit, [event]).start()
    start = time.monotonic()
    events = replica.poll(timeout=timeout)
    return events, time.monotonic() - start


def test_batch_events_wake_the_poll_at_most_every_batch_event_wake():
    replica = Replica({"rank": 0})
    batch = {"type": "batch", "batch": 0}
    # The first batch event wakes a waiting poll (none woke it before).
    events, took = _poll_after(replica, batch, 0.02, timeout=30)
    assert events == [batch] and took < 25
    # One a fraction of BATCH_EVENT_WAKE later does not: the poll sleeps to its timeout
    # and takes it then (woken per step, the chief would pay a Ray call a step).
    timeout = 0.8 * BATCH_EVENT_WAKE
    events, took = _poll_after(replica, batch, 0.4 * BATCH_EVENT_WAKE, timeout=timeout)
    assert events == [batch] and took >= timeout - 0.01, took
    # Nor does an epoch's begin soon after a wake (the next batch brings it).
    begin = {"type": "epoch_begin", "epoch": 1}
    replica.emit({"type": "epoch_end", "epoch": 0})  # wakes
    replica.poll(timeout=0)
    events, took = _poll_after(replica, begin, 0.4 * BATCH_EVENT_WAKE, timeout=timeout)
    assert events == [begin] and took >= timeout - 0.01, took
    # An epoch's end wakes it at once, however recent the last wake.
    end = {"type": "epoch_end", "epoch": 0}
    replica.emit(batch)
    replica.poll(timeout=0)
    events, took = _poll_after(replica, end, 0.02, timeout=30)
    assert events == [end] and took < 25


def test_pending_batch_events_wait_for_the_interval():
    """A poll called right after the last one returned does not hand over batch events
    already pending before BATCH_EVENT_WAKE has passed (the driver would otherwise poll
    as fast as it handles them); an epoch's end still comes at once."""
    replica = Replica({"rank": 0})
    batch = {"type": "batch", "batch": 0}
    replica.poll(timeout=0)
    replica.emit(batch)
    start = time.monotonic()
    events = replica.poll(timeout=30)
    took = time.monotonic() - start
    assert events == [batch] and BATCH_EVENT_WAKE - 0.02 <= took < 25, took
    end = {"type": "epoch_end", "epoch": 0}
    replica.emit(batch)
    replica.emit(end)
    start = time.monotonic()
    events = replica.poll(timeout=30)
    assert events == [batch, end] and time.monotonic() - start < 0.1
    # A control request is taken at once, whatever the poll then waits for.
    replica.poll(control="cancel", timeout=0)
    assert replica.control == "cancel"
