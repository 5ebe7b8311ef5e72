"""The worker's link to Ray: which process drives a job's replica actors.

Ray ties a driver to the raylet of its node: when the local Ray head restarts (or
that raylet dies), the driver's next call to it ends the driver's process (Ray exits
it: "the local Raylet is dead"), and a driver cannot ``ray.init`` again in the same
process. So a worker joined to a Ray cluster (``--ray-address``) drives its replicas
from a child process of its own (:class:`ChildLink`): when Ray goes away only that
child dies, the attempt in progress fails with :class:`RayUnavailable` (retried from
the job's newest checkpoint, as any failed attempt), and the next group starts a new
child, which joins Ray again once the head is back. Without an address (a local Ray
started by this process, or tests that ``ray.init`` themselves) the driver is this
process (:class:`InProcessLink`).

A :class:`Group` is one generation of one job's replicas (their placement group,
the actors, their ``run`` calls, the job's arrays in the object store);
:class:`~lamina_worker.trainer.DataParallelTrainer` talks to it only through
``put``/``place``/``start``/``poll``/``results``/``kill``/``pid``, so both links look
the same to it. For a ring all-reduce (:mod:`lamina_worker.placement`) ``start`` first
asks every actor to bind its ring endpoint and hands each the addresses in rank order.
Errors cross the link as three kinds: a replica died or its all-reduce failed
(:class:`ReplicaLost`: the trainer restarts the group), a replica's code raised
(:class:`ReplicaFailed`: the attempt fails with its message), and anything else from
Ray (:class:`RayUnavailable`: the child is replaced).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import threading
import time

from lamina_worker import placement
from lamina_worker.errors import replica_errors

log = logging.getLogger("lamina_worker")

#: Longest wait for one event poll of the chief (its own wait is a fraction of a second).
POLL_TIMEOUT = 60.0
#: While a poll is overdue, how often the driver checks that Ray is still the cluster it
#: joined (:func:`_check_ray`): a call to an actor that died with a restarted Ray head can
#: stay unanswered, and a chaos run's driver waited all of POLL_TIMEOUT for it.
POLL_CHECK_EVERY = 2.0
#: How long a new driver child tries to join Ray (the head may be restarting).
JOIN_SECONDS = 120.0
#: Groups a driver child serves before it is replaced between jobs: Ray's driver keeps
#: ~125 KB of bookkeeping per job (dead actors, tasks) that it never gives back
#: (measured by tests/chaos/test_soak.py), so a long-lived driver would grow without bound.
RECYCLE_AFTER = 100
#: Longest wait for a ring's replicas (new processes) to bind and report addresses.
RENDEZVOUS_TIMEOUT = 120.0
#: After the chief's all-reduce failed, how long the driver waits for a peer's own
#: error before it restarts the group anyway (Ray may take ~15 s to declare a lost node).
PEER_GRACE = 2.0


class RayUnavailable(RuntimeError):
    """Ray (the head, or this node's raylet) went away; the attempt is retried."""


class ReplicaLost(RuntimeError):
    """A replica's actor or its objects are gone (Ray's ``RayActorError`` & co.)."""


class ReplicaFailed(RuntimeError):
    """A replica's own code raised (the message names the original error)."""


@functools.cache
def _replica_class():
    """The Replica actor class, made once per process: each ``ray.remote(cls)`` exports
    the class again, and the driver keeps every export (a leak of ~100 KB per job)."""
    import ray

    from lamina_worker.replica import Replica

    return ray.remote(concurrency_groups={"control": 1})(Replica)


class Group:
    """One generation of one job's replicas, driven from this process."""

    def __init__(self) -> None:
        self.actors: list = []
        self.runs: list = []
        self._data: tuple | None = None
        self.placement: placement.Placement | None = None
        self.addresses: list | None = None  # the ring's, in rank order

    def put(self, train: tuple, val: tuple | None) -> None:
        """Put the job's arrays into the object store (once per job, for every generation)."""
        import ray

        self._data = (ray.put(train), ray.put(val) if val is not None else None)

    def place(self, replicas: int, cpus: float, mode: str) -> dict:
        """Place this generation (:func:`placement.place`); returns its description."""
        self._release()
        self.placement = placement.place(replicas, cpus, mode)
        return self.placement.describe()

    def start(self, jobs: list[dict], options: list[dict], state: dict | None) -> None:
        """Start one actor per ``jobs`` entry in the group :meth:`place` made and their
        ``run`` calls (a ring's replicas bind first: module docstring)."""
        import ray

        self.actors = [_replica_class().options(
            scheduling_strategy=self.placement.scheduling(rank), max_restarts=0,
            **opts).remote(job) for rank, (job, opts) in enumerate(zip(jobs, options))]
        peers = None
        if jobs[0]["collective"]["transport"] == "ring":
            found = ray.get([a.listen.remote() for a in self.actors],
                            timeout=RENDEZVOUS_TIMEOUT)
            peers = self.addresses = [(str(host), int(port)) for host, port in found]
        train_ref, val_ref = self._data
        self.runs = [a.run.remote(train_ref, val_ref, state, peers) for a in self.actors]

    def poll(self, control: str | None, timeout: float) -> list[dict]:
        """The chief's pending events; raises at once if a replica's ``run`` ended badly,
        and :class:`RayUnavailable` as soon as an overdue poll finds Ray gone."""
        import ray

        ref = self.actors[0].poll.options(concurrency_group="control").remote(
            control, timeout)
        deadline = time.monotonic() + POLL_TIMEOUT
        while not ray.wait([ref], timeout=min(timeout + POLL_CHECK_EVERY, max(
                0.0, deadline - time.monotonic())))[0]:
            if time.monotonic() >= deadline:
                break  # the get below raises GetTimeoutError
            _check_ray()
        events = ray.get(ref, timeout=0)
        finished, _ = ray.wait(self.runs, num_returns=len(self.runs), timeout=0)
        for ref in finished:
            ray.get(ref)
        return events

    def results(self) -> list[dict]:
        """Every replica's result; :class:`ReplicaLost` when the chief's all-reduce
        failed (a peer died or its node was lost: the trainer restarts the group)."""
        import ray

        chief = ray.get(self.runs[0])
        if chief.get("collective_failed"):
            ready, _ = ray.wait(self.runs[1:], num_returns=len(self.runs) - 1,
                                timeout=PEER_GRACE)
            for ref in ready:
                ray.get(ref)  # a peer's own error (or its death) as Ray reports it
            raise ReplicaLost(f"replica 0's all-reduce failed: {chief['aborted']}")
        return [chief, *ray.get(self.runs[1:])]

    def pid(self, rank: int) -> int:
        """Process id of replica ``rank`` (fault-injection tests signal it)."""
        import ray

        return ray.get(self.actors[rank].pid.options(concurrency_group="control").remote(),
                       timeout=60)

    def kill(self) -> None:
        """Abort the ring, kill the actors and remove their placement group
        (idempotent); the arrays stay for the next generation."""
        import ray

        if self.addresses:
            from lamina.distribute import ring

            ring.abort(self.addresses, timeout=0.5)
        for actor in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self.actors, self.runs, self.addresses = [], [], None
        self._release()

    def _release(self) -> None:
        if self.placement is not None:
            self.placement.release()
            self.placement = None

    def close(self) -> None:
        self.kill()
        self._data = None


def _check_ray() -> None:
    """Raise :class:`RayUnavailable` if this node's raylet is gone or Ray's GCS is a new
    one (the head restarted: it refuses this driver's cluster id). Ray fails neither
    this driver nor its calls to the lost actors at once. An unreachable GCS proves
    nothing (a restart may be under way, or the network blinks): the caller waits on."""
    import socket

    import ray

    worker = getattr(getattr(getattr(ray, "_private", None), "worker", None),
                     "global_worker", None)
    path = getattr(getattr(worker, "node", None), "raylet_socket_name", None)
    if path and not path.startswith("tcp://"):
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(path)
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise RayUnavailable(f"this node's raylet is gone ({path}: {exc})") from exc
            except OSError:
                pass  # busy or slow: not a proof
    gcs = getattr(worker, "gcs_client", None)
    if gcs is None:
        return
    try:
        gcs.internal_kv_get(b"lamina-liveness", None, timeout=1.0)
    except Exception as exc:  # noqa: BLE001 - only a refused cluster id is a proof
        if "WrongClusterID" in str(exc):
            raise RayUnavailable(f"Ray's head restarted: {type(exc).__name__}: "
                                 f"{str(exc)[:200]}") from exc


def _classify(exc: BaseException) -> tuple[str, str]:
    """``(kind, message)`` of an error raised by a :class:`Group` (module docstring)."""
    import ray.exceptions as rex

    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, replica_errors()):
        return "replica", message
    if isinstance(exc, ReplicaLost):
        return "replica", str(exc)
    if isinstance(exc, rex.RayTaskError):
        return "task", message
    if isinstance(exc, ReplicaFailed):
        return "task", str(exc)
    if isinstance(exc, RayUnavailable):
        return "ray", str(exc)
    return "ray", message


class InProcessLink:
    """This process is the Ray driver (it called ``ray.init``, or Ray starts locally)."""

    def group(self) -> Group:
        return Group()

    def close(self) -> None:
        pass


# -- the driver child ----------------------------------------------------------------------
def _join(address: str, runtime_env: dict, seconds: float) -> None:
    import ray

    deadline = time.monotonic() + seconds
    delay = 0.5
    while True:
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False,
                     configure_logging=False)
            return
        except Exception:  # noqa: BLE001 - the head may be restarting: retry until the deadline
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _serve(conn, address: str, runtime_env: dict, parent: int) -> None:
    """The child's loop: join Ray, then run the parent's calls on its groups."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and SIGTERM
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def orphaned() -> None:  # a SIGKILLed worker must not leave its driver (and actors)
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    try:
        _join(address, runtime_env, JOIN_SECONDS)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("ray", f"could not join Ray at {address}: {type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", os.getpid()))
    groups: dict[int, Group] = {}
    while True:
        try:
            key, method, args = conn.recv()
        except EOFError:
            break
        try:
            if method == "new":
                groups[key] = Group()
                result = None
            elif method == "close":
                group = groups.pop(key, None)
                result = group.close() if group is not None else None
            else:
                result = getattr(groups[key], method)(*args)
        except Exception as exc:  # noqa: BLE001 - every error goes back to the parent
            conn.send(_classify(exc))
        else:
            conn.send(("ok", result))
    for group in groups.values():
        group.close()


class ChildLink:
    """A child process is the Ray driver; replaced when Ray takes it down.

    Args:
        address: the Ray cluster to join.
        runtime_env: Ray's ``runtime_env`` (our packages on the actors' path).
        recycle_after: groups one child serves before a new one replaces it (when no
            group is open), which bounds the driver's memory.
    """

    def __init__(self, address: str, runtime_env: dict,
                 recycle_after: int = RECYCLE_AFTER) -> None:
        self.address, self.runtime_env = address, runtime_env
        self.recycle_after = recycle_after
        self._process = None
        self._conn = None
        self._lock = threading.Lock()
        self._next = 0
        self._served = 0  # groups opened by the current child
        self.open_groups = 0

    def _ensure(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        if self._process is not None:
            log.warning("the Ray driver process exited (code %s); joining Ray again",
                        self._process.exitcode)
        self.close()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_serve, name="lamina-ray-driver", daemon=True,
                                  args=(child, self.address, self.runtime_env, os.getpid()))
        process.start()
        child.close()
        self._process, self._conn = process, parent
        kind, value = self._receive(JOIN_SECONDS + 60)
        if kind != "ok":
            self.close()
            raise RayUnavailable(value)
        log.info("Ray driver process %d joined %s", value, self.address)

    def _receive(self, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._conn.poll(0.25):
            if not self._process.is_alive() or (deadline and time.monotonic() > deadline):
                break
        else:
            try:
                return self._conn.recv()
            except (EOFError, OSError):
                pass
        code = self._process.exitcode
        self.close()
        raise RayUnavailable(f"the Ray driver process is gone (exit code {code}): Ray at "
                             f"{self.address} went away; the attempt resumes from its "
                             "checkpoint once Ray is back")

    def call(self, key: int, method: str, *args, child=None):
        """Run ``method`` of group ``key`` in the child (``child``: the process that
        made the group, if it must be that one); raise what it raised."""
        with self._lock:
            if self._conn is None or (child is not None and child is not self._process):
                raise RayUnavailable("the Ray driver process was replaced; this group is gone")
            try:
                self._conn.send((key, method, args))
            except (OSError, ValueError) as exc:
                self.close()
                raise RayUnavailable(f"the Ray driver process is gone: {exc}") from exc
            kind, value = self._receive()
        if kind == "ok":
            return value
        if kind == "replica":
            raise ReplicaLost(value)
        if kind == "task":
            raise ReplicaFailed(value)
        self.close()  # Ray itself failed: the next group joins again from a new child
        raise RayUnavailable(value)

    def connect(self) -> ChildLink:
        """Start the driver child now (it joins Ray); raises RayUnavailable if it cannot."""
        with self._lock:
            self._ensure()
        return self

    def group(self) -> ChildGroup:
        with self._lock:
            if self._served >= self.recycle_after and self.open_groups == 0:
                log.info("replacing the Ray driver process after %d jobs (bounds its "
                         "memory)", self._served)
                self.close()
            self._ensure()
            self._next += 1
            self._served += 1
            self.open_groups += 1
            key = self._next
        self.call(key, "new")
        return ChildGroup(self, key, self._process)

    def close(self) -> None:
        """Stop the child (its actors die with it)."""
        conn, process = self._conn, self._process
        self._conn = self._process = None
        self._served = self.open_groups = 0
        if conn is not None:
            conn.close()
        if process is not None:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


class ChildGroup:
    """A :class:`Group` living in a :class:`ChildLink`'s child process."""

    actors: list = []  # the handles live in the child

    def __init__(self, link: ChildLink, key: int, child) -> None:
        self.link, self.key, self.child = link, key, child

    def __getattr__(self, method: str):
        if method not in ("put", "place", "start", "poll", "results", "pid", "kill"):
            raise AttributeError(method)
        return lambda *args: self.link.call(self.key, method, *args, child=self.child)

    def close(self) -> None:
        if self.key is None:
            return
        key, self.key = self.key, None
        self.link.open_groups = max(0, self.link.open_groups - 1)
        with contextlib.suppress(RayUnavailable):
            self.link.call(key, "close", child=self.child)


_link: InProcessLink | ChildLink = InProcessLink()


def use_child(address: str, runtime_env: dict) -> ChildLink:
    """Drive replicas from a child process joined to ``address`` (``lamina worker``)."""
    global _link
    _link.close()
    _link = ChildLink(address, runtime_env)
    atexit.register(_link.close)  # before multiprocessing's own exit hook SIGTERMs it
    return _link


def current() -> InProcessLink | ChildLink:
    """The process's link (in-process unless :func:`use_child` was called)."""
    return _link
