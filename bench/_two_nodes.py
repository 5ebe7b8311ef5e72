"""Two Ray nodes on this machine for ``bench/collectives.py --two-nodes``.

A head (``ray start --head --block``) and a second raylet (``ray start --address
--block``), each with its own object store and temp dir under one private directory
and each in a session of its own (as ``tests/worker/test_two_node.py`` starts them).
A placement group per world puts rank ``r`` on node ``r % 2`` (``STRICT_SPREAD`` for 2
ranks, ``SPREAD`` for more, bundles interleaved by node), so every hop between ring
neighbours crosses raylets. Both nodes advertise 127.0.0.1: on one machine the bytes
go through loopback either way; what crossing raylets changes is Ray's side (separate
object stores, objects pulled between them, Compiled Graph channels across nodes).

Teardown stops only what it started: SIGTERM to the two ``ray start --block``
processes, SIGKILL to their sessions, then SIGKILL by pid to any process whose command
line names the private directory or the head's port (Ray's workers leave the session).
Other engineers' Ray clusters are never touched (no ``ray stop``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STORE = 100 * 2**20  # bytes per node's object store (Ray's minimum is 75 MiB)
CPUS = 2  # per node: 4 one-CPU ranks fit as 2 + 2


def _ray() -> str:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else shutil.which("ray") or "ray"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TwoNodes:
    """A two-raylet Ray cluster, joined by this process's driver while open. Make it
    before this process imports ``ray`` (it sets the auth token Ray reads then).

    Args:
        runtime_env: the driver's ``runtime_env`` (``ray.init``).
        cpus: CPUs each node advertises.
        store: object store bytes per node.
    """

    def __init__(self, runtime_env: dict, cpus: int = CPUS, store: int = STORE) -> None:
        self.runtime_env, self.cpus, self.store = runtime_env, cpus, store
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="lb2n-"))
        self.address = f"127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        # token auth as ``lamina up`` and the tests' heads: a fresh token shared by the
        # raylets and this driver; Ray reads it once per process, at its import
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(24),
                          RAY_USAGE_STATS_ENABLED="0")

    def _start(self, name: str, *args: str) -> None:
        temp = self.root / name
        temp.mkdir()
        with open(self.root / f"{name}.log", "ab") as out:
            self.processes.append(subprocess.Popen(
                [_ray(), "start", "--block", *args, "--node-ip-address", "127.0.0.1",
                 "--num-cpus", str(self.cpus), "--object-store-memory", str(self.store),
                 "--temp-dir", str(temp), "--disable-usage-stats"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=os.environ))

    def __enter__(self) -> TwoNodes:
        import ray

        # a SIGTERM of the benchmark unwinds through close() as Ctrl-C does
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        try:
            self._start("head", "--head", "--port", str(self.port),
                        "--include-dashboard", "false")
            from lamina_service.embedded import accepts

            self._wait(lambda: accepts(self.port), "the head's GCS port")
            self._start("node", "--address", self.address)
            ray.init(address=self.address, log_to_driver=False,
                     runtime_env=self.runtime_env)
            self._wait(lambda: sum(n["Alive"] for n in ray.nodes()) == 2, "two live nodes")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _wait(self, ready, what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p.args[3] for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "".join((self.root / f"{n}.log").read_text(errors="replace")[-1500:]
                               for n in ("head", "node") if (self.root / f"{n}.log").exists())
                raise RuntimeError(f"{what} not seen within {timeout:.0f}s "
                                   f"(exited: {dead}):\n{logs}")
            time.sleep(0.25)

    def close(self) -> None:
        """Disconnect the driver and end every process this cluster started."""
        import ray

        ray.shutdown()
        for p in self.processes:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(30)
        deadline = time.monotonic() + 30
        while (left := self.stray()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        shutil.rmtree(self.root, ignore_errors=True)
        if left:
            print(f"warning: processes of {self.root} still alive: {left}", file=sys.stderr)

    def stray(self) -> list[int]:
        """Pids of live processes whose command line names this cluster's temp dir or
        the head's address (never this process)."""
        marks = (str(self.root).encode(), self.address.encode())
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z" and any(m in cmdline for m in marks):
                    found.append(int(entry.name))
        return found


def spread(world: int):
    """A placement group of ``world`` one-CPU bundles over the two nodes.

    Returns:
        ``(group, bundles, nodes)``: rank ``r`` goes to bundle ``bundles[r]`` on node
        ``nodes[r]``; consecutive ranks sit on different nodes.

    Raises:
        RuntimeError: the group was not placed within 120 s, or not alternately.
    """
    import ray
    from ray.util import placement_group, placement_group_table, remove_placement_group

    group = placement_group([{"CPU": 1}] * world,
                            strategy="STRICT_SPREAD" if world <= 2 else "SPREAD")
    try:
        ray.get(group.ready(), timeout=120)
        table = placement_group_table(group)["bundles_to_node_id"]
        by_node: dict[str, list[int]] = {}
        for index in sorted(table):
            by_node.setdefault(table[index], []).append(index)
        columns = [by_node[node] for node in sorted(by_node)]
        bundles = [b for row in zip(*columns) for b in row]
        nodes = [table[b] for b in bundles]
        if len(bundles) != world or any(a == b for a, b in zip(nodes, nodes[1:])):
            raise RuntimeError(f"bundles not alternating over two nodes: {table}")
    except BaseException:
        remove_placement_group(group)
        raise
    return group, bundles, nodes
