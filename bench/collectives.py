"""All-reduce candidates among Ray actors on one node: fixed cost and throughput.

For 140 KB (35k float32, the CNN's gradient) and 2.7 MB (675k, the MLP's) at 2 and 4
replicas, the median time of one all-reduce (sum in a fixed order, every replica gets
the result) over ``--iters`` rounds, for:

* ``shm``: :mod:`lamina.distribute.shm` (shared-memory file, reduce-scatter into a
  shared result + two counter barriers); timed inside the actors;
* ``ring``: :class:`lamina.distribute.ring.RingCollective` (the library's TCP ring:
  non-blocking sockets and ``poll``, no thread per step, meta rows gathered on the
  way); timed inside the actors;
* ``tcp-ring``: the first prototype of that ring (a sender thread per step, no meta);
  timed inside the actors;
* ``ray-cgraph``: Ray Compiled Graphs (``experimental_compile``): every actor's array
  goes to every actor over the graph's shared-memory channels and each sums them;
  timed by the driver, which drives every execution;
* ``ray-objects``: the previous worker's allgather through the object store (each
  actor ``ray.put``s, every actor fetches all refs), driven by the driver.

With 4 replicas on a 2-core machine the actors share cores: the 4-replica rows say
what oversubscription costs, not what 4 cores would do.

``--two-nodes`` runs the actors on two Ray nodes on this machine (``bench/_two_nodes.py``:
a ``ray start --head`` and a second raylet with its own object store, started and
torn down here; a placement group puts rank ``r`` on node ``r % 2``), so every ring hop
between neighbours crosses raylets; ``shm`` is skipped there (it needs one machine's
``/dev/shm``, which a real second node does not share). Both nodes are 127.0.0.1: the
bytes go through loopback as on one node.

    python bench/collectives.py [--iters 200] [--worlds 2,4] [--two-nodes]
        [--candidates shm,ring,tcp-ring,ray-cgraph,ray-objects]
"""

from __future__ import annotations

import argparse
import logging
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

    # -- lamina.distribute.ring ---------------------------------------------------------------
    def ring_listen(self) -> tuple[str, int]:
        import ray

        from lamina.distribute import ring

        self._endpoint = ring.listen(ray.util.get_node_ip_address())
        return self._endpoint.address

    def ring_collective(self, addresses, iters: int) -> list[float]:
        from lamina.distribute.ring import RingCollective

        c = RingCollective(self._endpoint, addresses, self.rank, self.n, timeout=120)
        meta = np.arange(8, dtype=np.float64)
        times = []
        for i in range(iters + 10):
            start = time.perf_counter()
            c.exchange(self.vector, meta, scale=0.5)
            if i >= 10:
                times.append(time.perf_counter() - start)
        c.close()
        return times

    # -- tcp ring prototype ---------------------------------------------------------------
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


def run_ring_collective(actors, iters) -> float:
    import ray

    addresses = ray.get([a.ring_listen.remote() for a in actors])
    return median_ms(ray.get([a.ring_collective.remote(addresses, iters)
                              for a in actors])[0])


def run_ring(actors, iters) -> float:
    import ray

    addresses = ray.get([a.listen.remote() for a in actors])
    ray.get([a.connect.remote(addresses[(i + 1) % len(actors)])
             for i, a in enumerate(actors)])
    return median_ms(ray.get([a.ring.remote(iters) for a in actors])[0])


def run_cgraph(actors, iters) -> float:
    import ray
    from ray.dag import InputNode, MultiOutputNode

    logging.getLogger("ray.dag").setLevel(logging.WARNING)  # no teardown chatter
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
    parser.add_argument("--candidates", default="shm,ring,tcp-ring,ray-cgraph,ray-objects")
    parser.add_argument("--two-nodes", action="store_true",
                        help="two raylets on this machine, ranks alternating over them")
    args = parser.parse_args(argv)
    candidates = args.candidates.split(",")
    runtime_env = {"env_vars": {"PYTHONPATH": os.path.join(ROOT, "sdk")}}
    start_load = os.getloadavg()
    rows = []
    if args.two_nodes:
        from _two_nodes import TwoNodes

        cluster = TwoNodes(runtime_env)  # before importing ray (its auth token)
    import ray

    if args.two_nodes:
        candidates = [c for c in candidates if c != "shm"]
        with cluster:
            _run_all(args, candidates, ray.remote(num_cpus=1)(Member), rows)
    else:
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
                 runtime_env=runtime_env)
        try:
            _run_all(args, candidates, ray.remote(num_cpus=1)(Member), rows)
        finally:
            ray.shutdown()
    load = os.getloadavg()
    print(f"\nmedian ms per all-reduce ({os.cpu_count()} cores, "
          f"{2 if args.two_nodes else 1} Ray node(s), load average {start_load[0]:.1f} "
          f"{start_load[1]:.1f} {start_load[2]:.1f} at the start, {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f} at the end)\n")
    print("| replicas | size | " + " | ".join(candidates) + " |")
    print("| ---: | --- |" + " ---: |" * len(candidates))
    for world in (int(w) for w in args.worlds.split(",")):
        for label in SIZES:
            cells = [r[3] for r in rows if r[0] == world and r[1] == label]
            print(f"| {world} | {label} | " + " | ".join(cells) + " |")
    return 0


def _run_all(args, candidates, member, rows) -> None:
    from ray.util import remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    for world in (int(w) for w in args.worlds.split(",")):
        group = None
        if args.two_nodes:
            from _two_nodes import spread

            group, bundles, nodes = spread(world)
            print(f"world {world}: rank -> node",
                  ", ".join(f"{r}->{n[:8]}" for r, n in enumerate(nodes)), flush=True)
        try:
            for label, n in SIZES.items():
                for candidate in candidates:
                    actors = [member.options(**({} if group is None else {
                        "scheduling_strategy": PlacementGroupSchedulingStrategy(
                            group, placement_group_bundle_index=bundles[r])}))
                        .remote(r, world, n) for r in range(world)]
                    rows.append((world, label, candidate, _measure(candidate, actors, n,
                                                                   args.iters)))
                    print(*rows[-1], flush=True)
        finally:
            if group is not None:
                remove_placement_group(group)


def _measure(candidate, actors, n, iters) -> str:
    import ray

    try:
        if candidate == "shm":
            ms = run_shm(actors, n, iters)
        elif candidate == "ring":
            ms = run_ring_collective(actors, iters)
        elif candidate == "tcp-ring":
            ms = run_ring(actors, iters)
        elif candidate == "ray-cgraph":
            ms = run_cgraph(actors, iters)
        else:
            ms = run_objects(actors, iters)
        return f"{ms:.3f}"
    except Exception as exc:  # noqa: BLE001 - a candidate that fails is reported
        print(repr(exc)[-600:], file=sys.stderr)
        return f"failed: {type(exc).__name__}"
    finally:
        for a in actors:
            ray.kill(a)


if __name__ == "__main__":
    sys.exit(main())
