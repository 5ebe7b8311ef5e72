"""Per-step cost of data-parallel training on Ray: compute vs all-reduce.

For the MLP and CNN benchmarks (MNIST-shaped synthetic data, batch 128, Adam, no
dropout), this times local ``fit`` and the worker's trainer with 1 and 2 replicas
and both all-reduce patterns:

* ``allgather``: replicas read each other's gradients from the object store (used);
* ``driver``: the driver ``ray.get``s the gradients, averages, ``ray.put``s the mean.

Per step: ``compute`` = the slowest replica's forward+backward, ``update`` = its
averaging + optimizer update, ``comm`` = wall - compute - update (Ray calls,
object store, driver). Throughput is relative to local ``fit`` (one BLAS thread, as
each replica actor has: Ray sets ``OMP_NUM_THREADS=num_cpus=1``) in the same run; local
``fit`` with two BLAS threads is shown too. Best of two rounds each.

    python bench/worker_allreduce.py [--steps 30] [--models mlp,cnn]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("sdk", "services", "worker"):
    sys.path.insert(0, os.path.join(ROOT, sub))


def mlp():
    import lamina
    from lamina import layers

    return lamina.Sequential([layers.Input((784,)), layers.Dense(512, activation="relu"),
                              layers.Dense(512, activation="relu"),
                              layers.Dense(10, activation="softmax")])


def cnn():
    import lamina
    from lamina import layers

    return lamina.Sequential([
        layers.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(), layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(10, activation="softmax")])


ROUNDS = 2
COMPILE = {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 1e-3}},
           "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}


def data(kind: str, n: int):
    rng = np.random.default_rng(0)
    shape = (n, 784) if kind == "mlp" else (n, 28, 28, 1)
    return rng.random(shape, dtype=np.float32), rng.integers(0, 10, n)


def local(kind: str, x, y, batch: int, threads: int) -> float:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        return min(_local(kind, x, y, batch) for _ in range(ROUNDS))


def _local(kind: str, x, y, batch: int) -> float:
    import lamina
    from lamina.models import model_from_config

    lamina.utils.set_random_seed(0)
    model = model_from_config(json.loads((mlp if kind == "mlp" else cnn)().to_json()))
    model.compile(**COMPILE)
    model.fit(x[:batch * 3], y[:batch * 3], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    return (time.perf_counter() - start) / (len(x) // batch)


def distributed(kind: str, x, y, batch: int, replicas: int, allreduce: str) -> dict:
    from lamina_worker.trainer import DataParallelTrainer

    config = json.loads((mlp if kind == "mlp" else cnn)().to_json())
    trainer = DataParallelTrainer(config, COMPILE, (x, y, None), epochs=1, batch_size=batch,
                                  shuffle=False, seed=0, replicas=replicas,
                                  replica_cpus=1, allreduce=allreduce,
                                  name=f"bench-{kind}-{replicas}-{allreduce}")
    trainer._start_replicas()
    try:
        trainer._push_state()
        batches = list(trainer.iterator.epoch())
        for index in batches[:3]:
            trainer._run_step(index)
        best = None
        for _ in range(ROUNDS):
            trainer.timings = {k: 0.0 for k in trainer.timings}
            for index in batches:
                trainer._run_step(index)
            trainer._flush()
            if best is None or trainer.timings["wall"] < best["wall"]:
                best = dict(trainer.timings)
    finally:
        trainer.shutdown()
    t = best
    steps = t["steps"]
    return {"wall": t["wall"] / steps, "compute": t["compute"] / steps,
            "update": t["apply"] / steps,
            "comm": (t["wall"] - t["compute"] - t["apply"]) / steps}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--models", default="mlp,cnn")
    args = parser.parse_args(argv)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                 os.path.join(ROOT, s) for s in ("sdk", "services", "worker"))}})
    rows = []
    for kind in args.models.split(","):
        steps = args.steps if kind == "mlp" else max(args.steps // 3, 8)
        x, y = data(kind, steps * args.batch)
        base = local(kind, x, y, args.batch, 1)
        rows.append((kind, "local fit", "1 thread", base, base, 0.0, 0.0, 1.0))
        two = local(kind, x, y, args.batch, 2)
        rows.append((kind, "local fit", "2 threads", two, two, 0.0, 0.0, base / two))
        for replicas in (1, 2):
            for allreduce in ("allgather", "driver"):
                r = distributed(kind, x, y, args.batch, replicas, allreduce)
                rows.append((kind, f"{replicas} replica{'s' if replicas > 1 else ''}",
                             allreduce, r["wall"], r["compute"], r["update"], r["comm"],
                             base / r["wall"]))
    print(f"\nbatch {args.batch}; ms per step (global batch); throughput vs local fit\n")
    print(f"{'model':<5} {'setup':<11} {'all-reduce':<10} {'step':>7} {'compute':>8} "
          f"{'update':>7} {'comm':>7} {'vs local':>8}")
    for kind, setup, allreduce, wall, compute, update, comm, ratio in rows:
        print(f"{kind:<5} {setup:<11} {allreduce:<10} {wall * 1e3:7.1f} {compute * 1e3:8.1f} "
              f"{update * 1e3:7.1f} {comm * 1e3:7.1f} {ratio:8.2f}x")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
