"""A seeded fault injector for a real Lamina stack (:class:`EmbeddedStack` processes).

A :class:`Plan` is drawn from a seed: which faults, in which order, how far apart.
The :class:`Injector` runs it in a thread against the live processes:

* ``kill_replica``: SIGKILL of one replica actor's process (found in the Ray head's
  session by its ``ray::Replica`` title); the worker must restart the group.
* ``kill_api``: SIGKILL of the API, then the injector starts it again on the same
  port (the API keeps no state; clients retry). This is the only restart of a Lamina
  process in the test, and it is the injector's, stated here.
* ``restart_redis``: SIGKILL of the AOF Redis, down for a seeded 1-3 s, then started
  on the same port and data directory; workers and the API must ride it out.
* ``restart_ray``: SIGKILL of the Ray head's whole session (GCS, raylet, every
  replica), started again on the same port 0.5-2 s later (an operator's restart of
  Ray, not of Lamina); running attempts fail and are retried from their checkpoints,
  the workers' Ray driver children rejoin the new head.
* ``stop_worker``: SIGSTOP of a busy worker past its lease, then SIGCONT: its attempt
  is fenced, the other worker resumes the job from its checkpoint.
* ``kill_worker``: SIGKILL of one worker (at most one per plan, never the last one
  running), chosen while its job is early in an epoch; nothing restarts it, the other
  worker finishes everything.

:class:`Scraper` reads every ``/metrics`` endpoint the way Prometheus does, and banks
a target's counters right before the injector kills it, so totals survive restarts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("lamina.chaos")

KINDS = ("kill_replica", "kill_api", "restart_redis", "restart_ray", "stop_worker",
         "kill_worker")


# -- processes -----------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (zombies excluded)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[3]) == sid:
                out.append(int(entry.name))
    return out


def cmdline(pid: int) -> str:
    """The process's command line ('' when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()
    except OSError:
        return ""


def replica_pids(ray_sid: int) -> list[int]:
    """Processes of the Ray head's session that run a replica actor."""
    return [p for p in session_pids(ray_sid) if cmdline(p).startswith("ray::Replica")]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a stopped process counts; a zombie does not)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


# -- metrics -------------------------------------------------------------------------------
def scrape(url: str, timeout: float = 5.0) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of one ``/metrics`` answer."""
    with urlopen(url, timeout=timeout) as reply:  # noqa: S310 - the test's loopback URL
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class Scraper:
    """Counter totals across restarts of the targets (Prometheus's ``increase``).

    A target's last scrape is banked when it is about to die (:meth:`bank`); its
    total is what was banked plus what its current process reports.
    """

    def __init__(self) -> None:
        self.banked: dict[str, dict] = {}
        self.last: dict[str, dict] = {}

    def scrape(self, target: str, url: str) -> dict:
        values = scrape(url)
        self.last[target] = values
        return values

    def bank(self, target: str, url: str) -> None:
        """Scrape ``target`` now and keep its counters (it is about to be killed)."""
        with contextlib.suppress(OSError):
            self.scrape(target, url)
        banked = self.banked.setdefault(target, {})
        for key, value in self.last.pop(target, {}).items():
            banked[key] = banked.get(key, 0.0) + value

    def total(self, name: str, **labels: str) -> float:
        """Sum of sample ``name`` with ``labels`` over every target, banked included."""
        want = set(labels.items())
        return sum(value for source in (*self.banked.values(), *self.last.values())
                   for (sample, keys), value in source.items()
                   if sample == name and want <= set(keys))


# -- the plan ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` (see :data:`KINDS`) after ``delay`` seconds."""

    kind: str
    delay: float


@dataclass
class Plan:
    """The seeded fault sequence of one run."""

    seed: int
    faults: list[Fault] = field(default_factory=list)

    @classmethod
    def draw(cls, seed: int, kinds=KINDS, count: int = 5, spread: float = 3.0) -> Plan:
        """``count`` faults ``0.5 .. spread`` seconds apart: each kind once before any
        repeats, in a seeded order, and ``kill_worker`` (if drawn) once and last, so the
        faults that need two workers (a stopped one's job is resumed by the other) come
        first."""
        rng = random.Random(seed)
        repeatable = [k for k in kinds if k != "kill_worker"]
        order = rng.sample(repeatable, len(repeatable))
        last = ["kill_worker"] if "kill_worker" in kinds else []
        while len(order) + len(last) < count:
            order.append(rng.choice(repeatable))
        order = order[:max(0, count - len(last))] + last
        return cls(seed, [Fault(k, round(rng.uniform(0.5, spread), 2)) for k in order])


@dataclass
class Injected:
    """What one fault did (the test's log)."""

    kind: str
    at: float
    target: str
    detail: str = ""


class Injector:
    """Runs a :class:`Plan` against an :class:`EmbeddedStack` (module docstring).

    Args:
        stack: the started stack (its children: ``api``, ``ray-head``, ``worker-N``).
        redis: the stack's :class:`RedisServer` (``kill()``/``start()``).
        plan: the faults.
        lease_seconds: the workers' lease (a stopped worker stays stopped past it).
        busy: ``() -> {worker id: (job id, epoch or None, epochs)}`` of running jobs.
        scraper: banks a target's counters before it is killed.
    """

    def __init__(self, stack, redis, plan: Plan, *, lease_seconds: float, busy,
                 scraper: Scraper) -> None:
        self.stack, self.redis, self.plan = stack, redis, plan
        self.lease_seconds, self.busy, self.scraper = lease_seconds, busy, scraper
        self.rng = random.Random(plan.seed + 1)
        self.done: list[Injected] = []
        self.killed_workers: list[str] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-injector", daemon=True)
        self._start = 0.0

    # -- running -------------------------------------------------------------------------
    def start(self) -> Injector:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        """Wait for the plan to end; re-raise what broke the injector itself."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(30)
        if self.errors:
            raise self.errors[0]

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            for fault in self.plan.faults:
                if self._stop.wait(fault.delay):
                    return
                getattr(self, fault.kind)()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.errors.append(exc)

    def _note(self, kind: str, target: str, detail: str = "") -> None:
        entry = Injected(kind, round(time.monotonic() - self._start, 2), target, detail)
        log.warning("chaos: %s", entry)
        self.done.append(entry)

    # -- targets -------------------------------------------------------------------------
    def child(self, name: str):
        return next(c for c in self.stack.children if c.name == name)

    def workers(self) -> list:
        """Worker children still running (stopped ones included)."""
        return [c for c in self.stack.children
                if c.name.startswith("worker") and c.alive()]

    def _worker_url(self, name: str) -> str:
        index = int(name.rsplit("-", 1)[1]) - 1
        return f"http://127.0.0.1:{self.stack.worker_metrics_ports[index]}/metrics"

    def _wait_busy(self, timeout: float = 20.0, early: bool = False) -> dict:
        """Running jobs by worker id, once one runs (``early``: in an epoch's start)."""
        deadline = time.monotonic() + timeout
        busy: dict = {}
        while time.monotonic() < deadline and not self._stop.is_set():
            with contextlib.suppress(Exception):
                busy = self.busy()
            if busy and not early:
                return busy
            chosen = {w: j for w, j in busy.items() if j[1] is not None and j[1] < j[2] - 1}
            if chosen:
                return chosen
            time.sleep(0.1)
        return busy

    # -- faults --------------------------------------------------------------------------
    def kill_replica(self) -> None:
        head = self.child("ray-head").process.pid
        deadline = time.monotonic() + 20
        pids: list[int] = []
        while not pids and time.monotonic() < deadline and not self._stop.is_set():
            pids = replica_pids(head)
            time.sleep(0.1)
        if not pids:
            self._note("kill_replica", "-", "no replica was running")
            return
        pid = self.rng.choice(sorted(pids))
        title = cmdline(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._note("kill_replica", str(pid), title)

    def kill_api(self) -> None:
        api = self.child("api")
        self.scraper.bank("api", f"{self.stack.url}/metrics")
        api.signal(signal.SIGKILL)
        api.process.wait(30)
        down = self.rng.uniform(0.2, 1.5)
        time.sleep(down)
        self.stack.start_api()
        self._note("kill_api", str(api.process.pid), f"down {down:.1f}s, restarted")

    def restart_redis(self) -> None:
        down = self.rng.uniform(1.0, 3.0)
        self.redis.kill()
        time.sleep(down)
        self.redis.start()
        self._note("restart_redis", self.redis.url, f"down {down:.1f}s")

    def restart_ray(self) -> None:
        head = self.child("ray-head")
        head.signal(signal.SIGKILL)  # its session: GCS, raylet, every replica
        head.process.wait(30)
        down = self.rng.uniform(0.5, 2.0)
        time.sleep(down)
        self.stack.restart_ray()
        self._note("restart_ray", str(head.process.pid), f"down {down:.1f}s, restarted")

    def stop_worker(self) -> None:
        busy = self._wait_busy()
        names = {c.name: c for c in self.workers()}
        targets = [f"worker-{w.rsplit('-', 1)[1]}" for w in sorted(busy)]
        targets = [t for t in targets if t in names] or sorted(names)
        if len(names) < 2 or not targets:
            self._note("stop_worker", "-", "skipped: fewer than two workers")
            return
        child = names[self.rng.choice(targets)]
        pause = self.lease_seconds + self.rng.uniform(1.5, 3.0)
        os.kill(child.process.pid, signal.SIGSTOP)
        try:
            self._stop.wait(pause)
        finally:
            os.kill(child.process.pid, signal.SIGCONT)
        self._note("stop_worker", child.name, f"stopped {pause:.1f}s (lease "
                                              f"{self.lease_seconds}s)")

    def kill_worker(self) -> None:
        names = {c.name: c for c in self.workers()}
        if self.killed_workers or len(names) < 2:
            self._note("kill_worker", "-", "skipped: keeps the last worker")
            return
        busy = self._wait_busy(timeout=8.0, early=True)
        targets = [f"worker-{w.rsplit('-', 1)[1]}" for w in sorted(busy)]
        targets = [t for t in targets if t in names] or sorted(names)
        child = names[self.rng.choice(targets)]
        self.scraper.bank(child.name, self._worker_url(child.name))
        os.kill(child.process.pid, signal.SIGKILL)
        child.process.wait(30)
        self.killed_workers.append(child.name)
        self._note("kill_worker", child.name, f"pid {child.process.pid}, running "
                                              f"{[j for w, j in busy.items()]}")
