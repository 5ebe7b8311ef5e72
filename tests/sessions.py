"""Killing a process's whole session: a test's stand-in for a machine that is lost.

``os.killpg`` is not enough for a Ray node started with ``start_new_session=True``:
Ray 2.60 starts every worker in a process group of its own (still in the node's
session), so a replica outlived its raylet by ~2 s, training on until it noticed, and
a "lost node" kept all-reducing after the kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id is ``sid``, from ``/proc``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # ended while we looked
            continue
        # after "pid (comm) ": state ppid pgrp session ... (comm may hold spaces and ")")
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry))
    return members


def kill_session(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGKILL every process in the session ``process`` leads (started with
    ``start_new_session=True``), until none is left; then reap ``process``."""
    deadline = time.monotonic() + timeout
    while members := session_members(process.pid):
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise AssertionError(f"session {process.pid} still has processes {members} "
                                 f"after {timeout}s of SIGKILL")
        time.sleep(0.01)
    process.wait(timeout)
