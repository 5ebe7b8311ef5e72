"""All-reduce candidates among Ray actors on one node: fixed cost and throughput.

For 140 KB (35k float32, the CNN's gradient) and 2.7 MB (675k, the MLP's) at 2 and 4
replicas, the median time of one all-reduce (sum in a fixed order, every replica gets
the result) over ``--iters`` rounds, for:

* ``shm``: :mod:`lamina.distribute.shm` (shared-memory file, reduce-scatter into a
  shared result + two counter barriers); timed inside the actors;
* ``tcp-ring``: a ring all-reduce (reduce-scatter then all-gather, ``N - 1`` steps
  each) over TCP sockets whose addresses the actors exchange through Ray; timed
  inside the actors;
* ``ray-cgraph``: Ray Compiled Graphs (``experimental_compile``): every actor's array
  goes to every actor over the graph's shared-memory channels and each sums them;
  timed by the driver, which drives every execution;
* ``ray-objects``: the previous worker's allgather through the object store (each
  actor ``ray.put``s, every actor fetches all refs), driven by the driver.

With 4 replicas on a 2-core machine the actors share cores: the 4-replica rows say
what oversubscription costs, not what 4 cores would do.

    python bench/collectives.py [--iters 200] [--worlds 2,4]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "sdk"))

SIZES = {"140 KB": 35_000, "2.7 MB": 675_000}


class Member:
    """One replica for every candidate (a Ray actor)."""

    def __init__(self, rank: int, world: int, n: int) -> None:
        self.rank, self.world, self.n = rank, world, n
        self.vector = np.random.default_rng(rank).random(n, dtype=np.float32)

    # -- shm ------------------------------------------------------------------------------
    def shm(self, path: str, iters: int) -> list[float]:
        from lamina.distribute.shm import SharedMemoryCollective

        c = SharedMemoryCollective(path, self.rank, timeout=120)
        times = []
        for i in range(iters + 10):
            start = time.perf_counter()
            c.exchange(self.vector, scale=0.5)
            if i >= 10:
                times.append(time.perf_counter() - start)
        c.close()
        return times

    # -- tcp ring -------------------------------------------------------------------------
    def listen(self) -> tuple[str, int]:
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(1)
        return self._server.getsockname()

    def connect(self, address) -> None:
        out = socket.create_connection(tuple(address))
        incoming, _ = self._server.accept()
        for s in (out, incoming):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._next, self._prev = out, incoming

    def _send_recv(self, send: np.ndarray, recv: np.ndarray) -> None:
        sender = threading.Thread(target=self._next.sendall, args=(memoryview(send),))
        sender.start()
        view, got = memoryview(recv).cast("B"), 0
        while got < len(view):
            got += self._prev.recv_into(view[got:])
        sender.join()

    def ring(self, iters: int) -> list[float]:
        w, r = self.world, self.rank
        bounds = np.linspace(0, self.n, w + 1).astype(int)
        chunks = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        data = np.empty(self.n, np.float32)
        scratch = np.empty(max(c.stop - c.start for c in chunks), np.float32)
        times = []
        for i in range(iters + 10):
            start = time.perf_counter()
            np.multiply(self.vector, np.float32(0.5), out=data)
            for step in range(w - 1):  # reduce-scatter
                send = chunks[(r - step) % w]
                recv = chunks[(r - step - 1) % w]
                buf = scratch[:recv.stop - recv.start]
                self._send_recv(data[send], buf)
                data[recv] += buf
            for step in range(w - 1):  # all-gather
                send = chunks[(r + 1 - step) % w]
                recv = chunks[(r - step) % w]
                self._send_recv(data[send], data[recv])
            if i >= 10:
                times.append(time.perf_counter() - start)
        return times

    # -- Ray compiled graphs / object store ------------------------------------------------
    def produce(self, _token) -> np.ndarray:
        return self.vector

    def reduce(self, *vectors) -> int:
        out = vectors[0] * np.float32(0.5)
        for v in vectors[1:]:
            out += v * np.float32(0.5)
        return int(out.size)

    def put(self, _token):
        import ray

        return ray.put(self.vector)

    def gather(self, refs) -> int:
        import ray

        return self.reduce(*ray.get(refs))


def median_ms(times) -> float:
    return statistics.median(times) * 1e3


def run_shm(actors, n, iters) -> float:
    import ray

    from lamina.distribute import shm

    path = shm.create(Path("/dev/shm") / f"bench-{uuid.uuid4().hex[:8]}", len(actors), n)
    try:
        return median_ms(ray.get([a.shm.remote(str(path), iters) for a in actors])[0])
    finally:
        shm.remove(path)


def run_ring(actors, iters) -> float:
    import ray

    addresses = ray.get([a.listen.remote() for a in actors])
    ray.get([a.connect.remote(addresses[(i + 1) % len(actors)])
             for i, a in enumerate(actors)])
    return median_ms(ray.get([a.ring.remote(iters) for a in actors])[0])


def run_cgraph(actors, iters) -> float:
    import ray
    from ray.dag import InputNode, MultiOutputNode

    with InputNode() as token:
        vectors = [a.produce.bind(token) for a in actors]
        dag = MultiOutputNode([a.reduce.bind(*vectors) for a in actors])
    compiled = dag.experimental_compile()
    try:
        times = []
        for i in range(iters + 10):
            start = time.perf_counter()
            ray.get(compiled.execute(i))
            if i >= 10:
                times.append(time.perf_counter() - start)
        return median_ms(times)
    finally:
        compiled.teardown()


def run_objects(actors, iters) -> float:
    import ray

    times = []
    for i in range(min(iters, 60) + 5):
        start = time.perf_counter()
        refs = ray.get([a.put.remote(i) for a in actors])
        ray.get([a.gather.remote(refs) for a in actors])
        if i >= 5:
            times.append(time.perf_counter() - start)
    return median_ms(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--worlds", default="2,4")
    parser.add_argument("--candidates", default="shm,tcp-ring,ray-cgraph,ray-objects")
    args = parser.parse_args(argv)
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.path.join(ROOT, "sdk")}})
    member = ray.remote(num_cpus=1)(Member)
    rows = []
    for world in (int(w) for w in args.worlds.split(",")):
        for label, n in SIZES.items():
            for candidate in args.candidates.split(","):
                actors = [member.remote(r, world, n) for r in range(world)]
                try:
                    if candidate == "shm":
                        ms = run_shm(actors, n, args.iters)
                    elif candidate == "tcp-ring":
                        ms = run_ring(actors, args.iters)
                    elif candidate == "ray-cgraph":
                        ms = run_cgraph(actors, args.iters)
                    else:
                        ms = run_objects(actors, args.iters)
                    rows.append((world, label, candidate, f"{ms:.3f}"))
                except Exception as exc:  # noqa: BLE001 - a candidate that fails is reported
                    rows.append((world, label, candidate, f"failed: {type(exc).__name__}"))
                    print(repr(exc)[-600:], file=sys.stderr)
                finally:
                    for a in actors:
                        ray.kill(a)
                print(*rows[-1], flush=True)
    print(f"\nmedian ms per all-reduce ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f})\n")
    print("| replicas | size | " + " | ".join(args.candidates.split(",")) + " |")
    print("| ---: | --- |" + " ---: |" * len(args.candidates.split(",")))
    for world in (int(w) for w in args.worlds.split(",")):
        for label in SIZES:
            cells = [r[3] for r in rows if r[0] == world and r[1] == label]
            print(f"| {world} | {label} | " + " | ".join(cells) + " |")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
