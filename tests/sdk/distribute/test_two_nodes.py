"""Two replicas on two Ray nodes (separate raylets and object stores on this machine),
all-reducing over :class:`lamina.distribute.ring.RingCollective`, end where local
``fit`` ends.

The cluster runs in a subprocess (its own ``ray.init``), so the session's ``ray_local``
fixture is untouched; the subprocess tears the cluster down in a ``finally``, and the
test kills its whole process group if it overstays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lamina.distribute import local
from tests.sdk.distribute.test_data_parallel import COMPILE, _data, _mlp
from tests.sessions import kill_session

pytestmark = pytest.mark.slow

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "sdk"))

_SCRIPT = textwrap.dedent("""
    import json, os, sys

    import numpy as np
    import ray
    from ray.cluster_utils import Cluster

    folder = sys.argv[1]
    with open(os.path.join(folder, "spec.json")) as f:
        spec = json.load(f)
    data = np.load(os.path.join(folder, "data.npz"))
    store = 80 * 1024 * 1024  # Ray's minimum is 75 MiB
    kill = spec.get("kill", False)  # kill the second node once the ring is connected
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {"node0": 1}, "object_store_memory": store,
        "include_dashboard": False})
    try:
        second = cluster.add_node(num_cpus=1, resources={"node1": 1},
                                  object_store_memory=store)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, runtime_env={"env_vars": {
            "PYTHONPATH": spec["pythonpath"], "OPENBLAS_NUM_THREADS": "1"}})

        @ray.remote(num_cpus=1)
        class Replica:
            def listen(self):
                from lamina.distribute import ring

                self.endpoint = ring.listen(ray.util.get_node_ip_address())
                return list(self.endpoint.address), ray.get_runtime_context().get_node_id()

            def connect(self, addresses, rank):
                from lamina.distribute import ring

                # returns once both ring neighbours are connected
                self.collective = ring.RingCollective(self.endpoint, addresses, rank,
                                                      spec["n"], 64, timeout=120)

            def fit(self, x, y):
                from lamina.distribute import local
                from lamina.distribute.strategy import DataParallel, set_strategy

                set_strategy(DataParallel(self.collective))
                try:
                    return local.fit_replica(spec["model"], spec["compile"], spec["seed"],
                                             x, y, spec["fit"], threads=1)["weights"]
                finally:
                    set_strategy(None)
                    self.collective.close()

        actors = [Replica.options(resources={f"node{r}": 1}).remote() for r in range(2)]
        found = ray.get([a.listen.remote() for a in actors], timeout=120)
        addresses = [address for address, _ in found]
        ray.get([a.connect.remote(addresses, rank) for rank, a in enumerate(actors)],
                timeout=120)
        x, y = ray.put(data["x"]), ray.put(data["y"])
        runs = [a.fit.remote(x, y) for a in actors]
        if kill:
            import time

            # The ring is up: from here a lost peer can only be CollectiveAborted (before,
            # the chief's set-up would fail with a connection error instead).
            cluster.remove_node(second, allow_graceful=False)  # its raylet and workers
            start = time.monotonic()
            try:
                ray.get(runs[0], timeout=300)
                error = None
            except Exception as exc:  # the chief's fit must fail, not hang
                error = f"{type(exc).__name__}: {exc}"[-2000:]
            with open(os.path.join(folder, "killed.json"), "w") as f:
                json.dump({"error": error, "seconds": time.monotonic() - start}, f)
            sys.exit(0)
        weights = ray.get(runs, timeout=300)
        np.savez(os.path.join(folder, "weights.npz"),
                 **{f"r{rank}_{i}": w for rank, ws in enumerate(weights)
                    for i, w in enumerate(ws)})
        with open(os.path.join(folder, "nodes.json"), "w") as f:
            json.dump({"nodes": [node for _, node in found], "addresses": addresses,
                       "cluster_nodes": len(ray.nodes())}, f)
    finally:
        ray.shutdown()
        cluster.shutdown()
""")


def _run_cluster(folder, model, x, y, fit, **extra) -> None:
    """Run the script on ``folder``'s inputs; assert it exited cleanly."""
    n = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    np.savez(folder / "data.npz", x=x, y=y)
    (folder / "spec.json").write_text(json.dumps({
        "model": model.to_json(), "compile": COMPILE, "seed": 5, "fit": fit, "n": n,
        "pythonpath": SDK, **extra}))
    env = dict(os.environ, PYTHONPATH=SDK, OPENBLAS_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(folder)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=420)
    finally:
        if process.poll() is None:  # overstayed: take its raylets and workers with it
            kill_session(process)
            process.communicate()
    assert process.returncode == 0, output[-3000:]


def test_two_replicas_on_two_nodes_equal_local_fit(tmp_path):
    x, y = _data(110, (12,))
    model = _mlp(0.3)
    fit = {"batch_size": 20, "epochs": 3, "shuffle": True, "validation_split": 0.2}
    reference = local.fit_replica(model.to_json(), COMPILE, 5, x, y, fit)
    _run_cluster(tmp_path, model, x, y, fit)
    nodes = json.loads((tmp_path / "nodes.json").read_text())
    assert nodes["cluster_nodes"] == 2
    assert nodes["nodes"][0] != nodes["nodes"][1]  # one replica per raylet
    with np.load(tmp_path / "weights.npz") as saved:
        count = len(reference["weights"])
        ranks = [[saved[f"r{rank}_{i}"] for i in range(count)] for rank in range(2)]
    for a, b in zip(*ranks):
        assert a.tobytes() == b.tobytes()  # replicas stay bit-identical
    for a, b in zip(ranks[0], reference["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_killing_the_second_node_fails_the_chief_instead_of_hanging(tmp_path):
    """The second node's raylet and its replica die (``remove_node``, not graceful) as
    soon as the ring is connected (both replicas' ``connect`` calls returned; their fits
    are submitted): the chief's ring loses its neighbour and its fit raises
    CollectiveAborted at once, far within the collective's 120 s timeout. (A fixed
    sleep stood in for the connection: on a loaded machine the kill could come first.)"""
    x, y = _data(110, (12,))
    fit = {"batch_size": 20, "epochs": 5000, "shuffle": True}
    _run_cluster(tmp_path, _mlp(0.3), x, y, fit, kill=True)
    killed = json.loads((tmp_path / "killed.json").read_text())
    assert killed["error"] is not None and "CollectiveAborted" in killed["error"], killed
    assert killed["seconds"] < 60, killed
