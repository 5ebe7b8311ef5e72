"""bench/quiet.py's Span against real busy processes inside and outside the tree.

The machine is shared, so "others" also holds whatever other sessions run: the
assertions compare with the outsider's own CPU time read over the same span, and bound
the tree by the machine's busy time, rather than expecting an exact 1.0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import quiet  # noqa: E402

BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"


def _cpu_seconds(pid: int) -> float:
    fields = quiet._stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / quiet.TICK


@pytest.fixture
def outsider():
    """A busy loop that is not our descendant: started by a shell that exits, so
    the loop is reparented away from this process (double fork)."""
    out = subprocess.run(
        ["sh", "-c", f"{sys.executable} -c '{BUSY}' >/dev/null 2>&1 & echo $!"],
        capture_output=True, text=True, check=True)
    pid = int(out.stdout.strip())
    yield pid
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_outsider_counts_as_others_not_tree(outsider):
    assert outsider not in quiet.descendants(os.getpid())
    time.sleep(0.3)  # past the interpreter's start-up
    before = _cpu_seconds(outsider)
    with quiet.Span() as span:
        time.sleep(1.0)
    outsider_cpu = (_cpu_seconds(outsider) - before) / span.seconds
    # It ran: about 1 CPU on a quiet machine, less when others share the two cores (0.47
    # at load 5).
    assert outsider_cpu > 0.2, outsider_cpu
    assert span.tree < 0.1, span.as_dict()  # we slept
    # others holds the outsider (to the 10 ms tick on each of the three readings).
    assert span.others > outsider_cpu - 0.06, (outsider_cpu, span.as_dict())
    assert span.others <= quiet.NCPU + 0.05, span.as_dict()
    assert span.describe().startswith(f"others {span.others:.2f} CPU, steal ")


CPU = 0.5
SPIN = f"import time\nwhile time.process_time() < {CPU}: pass\nprint('done', flush=True)\n"


def test_children_grandchildren_and_threads_count_as_tree():
    # Four known amounts of CPU (each loop runs to 0.5 s of its own CPU time): a child
    # we reap during the span, a grandchild its shell reaps during the span, a child
    # still alive (asleep) at the end, and a thread of this process.
    def spin_thread():
        start = time.thread_time()
        while time.thread_time() - start < CPU:
            pass

    with quiet.Span() as span:
        reaped_by_shell = subprocess.Popen(
            ["sh", "-c", f"{sys.executable} -c \"{SPIN}\"; sleep 30"],
            stdout=subprocess.PIPE, text=True)
        lasting = subprocess.Popen([sys.executable, "-c", SPIN + "time.sleep(30)"],
                                   stdout=subprocess.PIPE, text=True)
        subprocess.run([sys.executable, "-c", SPIN], check=True, capture_output=True)
        thread = threading.Thread(target=spin_thread)
        thread.start()
        thread.join()
        assert reaped_by_shell.stdout.readline() == "done\n"
        assert lasting.stdout.readline() == "done\n"
        time.sleep(0.1)  # the shell reaps its child
        processes = quiet.descendants(os.getpid())
        assert lasting.pid in processes and reaped_by_shell.pid in processes
    for proc in (lasting, reaped_by_shell):
        proc.kill()
        proc.wait()
        proc.stdout.close()
    cpu = span.tree * span.seconds
    # 4 x 0.5 s, less a 10 ms tick on each /proc reading; plus interpreter start-ups and
    # this process's own forks and reads.
    assert 4 * CPU - 0.03 < cpu < 4 * CPU + 0.3, span.as_dict()
    assert span.tree <= span.busy + 0.05, span.as_dict()  # the tree is part of the machine
    assert span.others >= -0.05, span.as_dict()
    assert span.processes >= 2 and span.nvcsw + span.nivcsw > 0, span.as_dict()


def test_vanished_process_is_left_out():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert quiet._stat_fields(proc.pid) is None
    assert quiet._threads(proc.pid) == {}


def test_a_descendant_gone_unaccounted_does_not_make_others():
    """A grandchild that burned CPU before the span and exits during it, under a parent
    that ignores SIGCHLD (the kernel discards its times): the span's tree is not taken
    below zero by its earlier time, so ``others`` is not inflated by it."""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, subprocess, sys, time\n"
         "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
         "child = subprocess.Popen([sys.executable, '-c', 'import time\\n"
         "end = time.process_time() + 0.6\\nwhile time.process_time() < end: pass\\n"
         "time.sleep(60)'])\n"
         "print(child.pid, flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        while _cpu_seconds(grandchild) < 0.55:  # its burn is done
            assert time.monotonic() < deadline, "the grandchild did not run"
            time.sleep(0.05)
        with quiet.Span() as span:
            os.kill(grandchild, signal.SIGKILL)
            while os.path.exists(f"/proc/{grandchild}"):
                time.sleep(0.01)
            time.sleep(0.2)
        # Without the bound the tree would be about -0.55 CPU-seconds over the span.
        assert span.tree * span.seconds > -0.02, span.as_dict()
        assert span.others <= span.busy + 0.02, span.as_dict()
    finally:
        parent.kill()
        parent.wait()


def test_a_span_without_thread_figures_still_counts_the_tree():
    """``Span(threads=False)``: no per-thread reads (wait and switches are None), the
    same CPU accounting (a thread's known CPU counts as tree)."""
    def spin_thread():
        start = time.thread_time()
        while time.thread_time() - start < CPU:
            pass

    with quiet.Span(threads=False) as span:
        thread = threading.Thread(target=spin_thread)
        thread.start()
        thread.join()
    assert span.wait is None and span.nvcsw is None and span.nivcsw is None
    assert span.tree * span.seconds > CPU - 0.05, span.as_dict()
    assert span.as_dict()["wait"] is None and span.as_dict()["nvcsw"] is None


def test_a_span_reads_the_descendants_it_is_given():
    """``pids=``: the listed descendants count as tree without a walk of /proc; a busy
    child left out of the list counts as others."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.3)  # past the interpreter's start-up
        listed = quiet.descendants(os.getpid())
        assert busy.pid in listed
        with quiet.Span(threads=False, pids=listed) as counted:
            time.sleep(1.0)
        before = _cpu_seconds(busy.pid)
        with quiet.Span(threads=False, pids=[]) as left_out:
            time.sleep(1.0)
        child_cpu = (_cpu_seconds(busy.pid) - before) / left_out.seconds
    finally:
        busy.kill()
        busy.wait()
    assert counted.tree > 0.2, counted.as_dict()
    assert counted.processes == len(listed), counted.as_dict()
    assert child_cpu > 0.2, child_cpu
    assert left_out.tree < 0.1, left_out.as_dict()
    assert left_out.others > child_cpu - 0.06, (child_cpu, left_out.as_dict())
