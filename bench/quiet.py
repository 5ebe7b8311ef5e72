"""What else the machine did while a figure was measured.

The benches run on a shared 2-vCPU VM: other sessions' processes come and go, and the
hypervisor may run something else on our vCPUs (steal). A :class:`Span` brackets one
measurement (an epoch, a round) and reports, per wall second (0..ncpu):

* ``tree``: CPU time of this process and its descendants (threads included): the
  process's own ``getrusage(RUSAGE_SELF)`` plus ``RUSAGE_CHILDREN`` (children it
  reaped), and for every descendant alive at the end (found by walking ``/proc``'s
  parent links) ``utime + stime + cutime + cstime`` of ``/proc/<pid>/stat``; the
  ``c`` fields carry the time of grandchildren a descendant reaped during the span.
  Ray's actors are descendants of the driver (driver -> raylet -> workers), so the
  tree covers a data-parallel run's replicas.
* ``busy``: the machine's busy CPU from ``/proc/stat`` (user + nice + system + irq +
  softirq + steal; ``guest`` is already inside ``user``).
* ``steal``: the hypervisor's share alone (counted inside ``busy`` and ``others``).
* ``others = busy - tree``: everything that was not us, steal included.
* ``wait``: run-queue wait of the tree's threads (``/proc/<pid>/task/<tid>/schedstat``,
  second field), threads alive at the end: time our threads were runnable but not
  running, whether behind another process or behind each other.
* ``pressure``: the machine's CPU pressure (``/proc/pressure/cpu``, ``some``): the share
  of the wall time in which at least one runnable task waited for a CPU (0..1; None
  without PSI).
* ``nvcsw``/``nivcsw``/``minflt``/``majflt``: the tree's context switches and page
  faults over the span (threads alive at the end for the switches).

``/proc/stat`` charges each CPU's whole 10 ms tick to whatever runs at that tick, so
``busy`` (and ``others``) is a sample: over n ticks, a CPU busy a share p of the time in
bursts shorter than a tick reads off by sqrt(n p (1 - p)) ticks (one standard deviation,
at most sqrt(n) / 2), besides a tick at each edge. On 2 CPUs that is up to +-0.07 CPU
over 1 s, +-0.1 over 0.5 s, +-0.22 over 0.1 s; this process's own time is exact
(``getrusage``), its descendants' rounded down to ticks. A process
that vanishes between the directory read and its files' reads is left out (its time,
once reaped, appears in its parent's ``c`` fields). A descendant that exits during the
span and is not accounted by a parent in the tree (one ignoring SIGCHLD, or reparented
out) would take its earlier time out of ``tree`` (``worker_allreduce`` once showed
``others 7.98 CPU`` for the first epoch after a setup's Ray actors had stopped), so
``tree`` is never taken below what the processes alive at both ends are seen to run.

``Span(threads=False)`` skips the per-thread figures (``wait``, ``nvcsw``, ``nivcsw``
are None): reading two files for every thread of a Ray run's tree (146 threads) took
8.4 ms a reading against 2.2 ms for the rest, and a span per epoch reads twice an
epoch, in the driver, while the replicas train on the same two CPUs (~0.1 CPU taken
from them at 4.5 epochs a second).

    with Span() as span:
        run_one_epoch()
    print(f"{span.seconds:.2f} s, {span.describe()}")   # "others 0.12 CPU, steal 0.00"
"""

from __future__ import annotations

import os
import resource
import time

TICK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the ``(comm)`` (field 3 is index 0)."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    # comm may hold spaces and parentheses: the last ')' ends it.
    return text[text.rfind(")") + 2:].split()


def machine_ticks() -> tuple[int, int]:
    """The machine's (busy, steal) clock ticks since boot, all CPUs."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    assert fields[0] == "cpu", fields
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return user + nice + system + irq + softirq + steal, steal


def cpu_pressure_us() -> int | None:
    """Microseconds since boot in which some runnable task waited for a CPU (PSI)."""
    text = _read("/proc/pressure/cpu")
    if not text:
        return None
    return int(text.split("\n")[0].rsplit("total=", 1)[1])


def descendants(root: int) -> list[int]:
    """Pids of every live descendant of ``root`` (not ``root`` itself)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _threads(pid: int) -> dict[tuple[int, int], tuple[int, int, int]]:
    """(pid, tid) -> (run-queue wait ns, voluntary, involuntary switches) per thread."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return out
    for tid in tids:
        sched = _read(f"/proc/{pid}/task/{tid}/schedstat")
        status = _read(f"/proc/{pid}/task/{tid}/status")
        if sched is None or status is None:
            continue
        switches = {}
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                switches[key] = int(value)
        out[(pid, int(tid))] = (int(sched.split()[1]),
                                switches.get("voluntary_ctxt_switches", 0),
                                switches.get("nonvoluntary_ctxt_switches", 0))
    return out


class _Sample:
    """One reading of the counters a :class:`Span` differences."""

    def __init__(self, root: int, threads: bool = True, pids: list[int] | None = None):
        assert root == os.getpid(), "getrusage reads this process: the root must be it"
        self.wall = time.monotonic()
        self.busy, self.steal = machine_ticks()
        self.pressure = cpu_pressure_us()
        own = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.tree = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
        self.own = own.ru_utime + own.ru_stime
        self.ran: dict[int, float] = {}  # descendant -> its own utime + stime
        self.minflt = own.ru_minflt + reaped.ru_minflt
        self.majflt = own.ru_majflt + reaped.ru_majflt
        self.pids = descendants(root) if pids is None else list(pids)
        self.threads = _threads(root) if threads else None
        for pid in self.pids:
            fields = _stat_fields(pid)
            if fields is None:  # exited since the walk: its parent's c-fields get it
                continue
            # utime, stime, cutime, cstime are fields 14-17 (indices 11-14 here);
            # minflt 10, cminflt 11, majflt 12, cmajflt 13 (indices 7-10).
            self.tree += sum(int(v) for v in fields[11:15]) / TICK
            self.ran[pid] = (int(fields[11]) + int(fields[12])) / TICK
            self.minflt += int(fields[7]) + int(fields[8])
            self.majflt += int(fields[9]) + int(fields[10])
            if threads:
                self.threads.update(_threads(pid))


class Span:
    """Context manager: CPU use of this process tree and of everything else, per second.

    Attributes (after the ``with`` block): ``seconds`` (wall), and per wall second
    ``tree``, ``busy``, ``steal``, ``others`` (``busy - tree``, steal included),
    ``wait`` (the tree's threads' run-queue wait), ``pressure`` (PSI cpu ``some``);
    over the span ``nvcsw``, ``nivcsw``, ``minflt``, ``majflt``, ``processes``
    (descendants alive at the end),
    ``mhz`` (``/proc/cpuinfo``'s mean ``cpu MHz`` at the end; static in most VMs) and
    ``load1`` (the 1-minute load average at the end).

    ``pids``: the tree's descendants, for a caller whose tree does not change during
    the span; without it each reading walks every process's ``/proc/<pid>/stat`` to
    find them (~2 ms with ~70 processes, on the CPUs being measured). A process outside
    the list counts in ``others``.
    """

    def __init__(self, threads: bool = True, pids: list[int] | None = None):
        self._start: _Sample | None = None
        self.with_threads = threads
        self.pids = pids

    def __enter__(self) -> Span:
        self.root = os.getpid()
        self._start = _Sample(self.root, self.with_threads, self.pids)
        return self

    def __exit__(self, *exc) -> None:
        start, end = self._start, _Sample(self.root, self.with_threads, self.pids)
        self.seconds = max(end.wall - start.wall, 1e-9)
        per_s = 1.0 / self.seconds
        # A descendant that exited during the span takes its whole time out of the sum;
        # it comes back in its parent's c-fields when the parent reaps it, but not when
        # the parent ignores SIGCHLD or is outside the tree: then
        # the difference undercounts. What surely ran in the span bounds it from below.
        ran = end.own - start.own + sum(
            t - start.ran.get(pid, 0.0) for pid, t in end.ran.items())
        self.tree = max(end.tree - start.tree, ran) * per_s
        self.busy = (end.busy - start.busy) / TICK * per_s
        self.steal = (end.steal - start.steal) / TICK * per_s
        self.others = self.busy - self.tree
        self.pressure = (None if start.pressure is None else
                         (end.pressure - start.pressure) / 1e6 * per_s)
        self.wait = self.nvcsw = self.nivcsw = None
        if self.with_threads:
            wait = nvcsw = nivcsw = 0
            for key, (w, v, iv) in end.threads.items():
                w0, v0, iv0 = start.threads.get(key, (0, 0, 0))  # a thread born in the span
                wait, nvcsw, nivcsw = wait + w - w0, nvcsw + v - v0, nivcsw + iv - iv0
            self.wait = wait / 1e9 * per_s
            self.nvcsw, self.nivcsw = nvcsw, nivcsw
        self.minflt = end.minflt - start.minflt
        self.majflt = end.majflt - start.majflt
        self.processes = len(end.pids)
        self.mhz = cpu_mhz()
        self.load1 = os.getloadavg()[0]

    def describe(self) -> str:
        """A short line: ``others 0.12 CPU, steal 0.00``."""
        return f"others {self.others:.2f} CPU, steal {self.steal:.2f}"

    def as_dict(self) -> dict:
        """Every figure, rounded, for JSON."""
        keys = ("seconds", "tree", "busy", "steal", "others", "wait")
        out = {k: None if getattr(self, k) is None else round(getattr(self, k), 4)
               for k in keys}
        out["pressure"] = None if self.pressure is None else round(self.pressure, 4)
        out.update(nvcsw=self.nvcsw, nivcsw=self.nivcsw, minflt=self.minflt,
                   majflt=self.majflt, processes=self.processes, ncpu=NCPU,
                   mhz=self.mhz, load1=round(self.load1, 2))
        return out


def cpu_mhz() -> float | None:
    """Mean ``cpu MHz`` over ``/proc/cpuinfo``'s CPUs (None if it has none)."""
    text = _read("/proc/cpuinfo") or ""
    mhz = [float(line.split(":")[1]) for line in text.splitlines()
           if line.startswith("cpu MHz")]
    return round(sum(mhz) / len(mhz), 1) if mhz else None
