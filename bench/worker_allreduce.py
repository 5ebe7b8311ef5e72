"""Data-parallel scaling of the worker: per-epoch time of 1 and 2 replicas vs local ``fit``.

For the benchmark models of ``lamina_models.py`` (MLP 784-512-512-10 with dropout,
670k parameters; the MNIST convnet with dropout, 35k), on MNIST-shaped data, batch
128, Adam, this runs in one process and one run:

* local ``fit`` with 1 and with 2 BLAS threads;
* the worker's :class:`~lamina_worker.trainer.DataParallelTrainer` (SPMD replicas on
  the shared-memory all-reduce) with 1 and 2 replicas, each an actor with one CPU
  (Ray sets one BLAS thread per actor).

Per-epoch time excludes start-up: local epochs are timed by a callback; replicas by the
chief from ``on_epoch_begin`` to ``on_epoch_end`` (``lamina_job_samples_per_second``).
The first epoch is a warm-up; the table gives the median of the other ``--epochs - 1``
epochs (rounds), samples/s, the ratio to local ``fit`` with 2 threads, and the
all-reduce's share of a step (the chief's exchange time, ``lamina_allreduce_seconds``,
over its step time, ``lamina_train_step_seconds``: waiting for the slower replica
included; with gradient buckets, only the part that backward did not hide), over the
same epochs as the rates (before 2026-12-04 21:45 it also counted the warm-up epoch).

``--bucket-cap-mb`` sets the replicas' ``LAMINA_BUCKET_CAP_MB`` (0: one exchange after
backward; default: the library's, 1 MB buckets); ``--shared-update 0|1`` their
``LAMINA_SHARED_UPDATE`` (one copy of the parameters and slots, each replica updating
its half; default on), ``--overlap-update 0|1`` their ``LAMINA_OVERLAP_UPDATE``
(default off) and ``--pin-replicas auto|0|1`` their ``LAMINA_PIN_REPLICAS`` (default
auto: one CPU each when they fill the machine), ``--balance-chunks 0|1`` the
collective's ``LAMINA_BALANCE_CHUNKS`` (chunks of the exchange sized by the ranks'
measured speed; default on); ``--setups`` runs a subset (an A/B
interleaves whole runs of this script).

Each epoch also carries what else the machine did meanwhile (:class:`quiet.Span` over
the epoch: ``others``, the CPU per second of every process outside this one's tree, and
``steal``): the ``epochs:`` line after each setup's row, and a second table with the
medians over all epochs and over the quiet ones (``others`` < 0.3 CPU).
``--spans-json PATH`` writes every epoch's time and full span. The replicas are Ray
actors, descendants of this process (driver -> raylet -> workers): the tree holds them
(checked at the first epoch; a line says so). Their spans run from the driver's
``on_epoch_begin`` to its ``on_epoch_end`` as the chief's events arrive (polled every
0.2 s), so a span's wall time may differ from the chief's epoch time by up to a poll.

    python bench/worker_allreduce.py [--epochs 4] [--mlp-samples 12000] [--cnn-samples 3000]
        [--models mlp,cnn] [--setups local1,local2,replicas1,replicas2] [--bucket-cap-mb 1]
        [--shared-update 1] [--overlap-update 0] [--pin-replicas auto] [--balance-chunks 1]
        [--spans-json spans.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("sdk", "services", "worker"):
    sys.path.insert(0, os.path.join(ROOT, sub))
sys.path.insert(0, os.path.join(ROOT, "bench"))

COMPILE = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
           "metrics": ["accuracy"]}
BATCH = 128
QUIET = 0.3  # an epoch is quiet when the rest of the machine used less CPU than this


def config(kind: str) -> dict:
    from lamina_models import build

    return json.loads(build(kind).to_json())


def local(kind: str, x, y, epochs: int, threads: int) -> tuple[list[float], list]:
    from quiet import Span
    from threadpoolctl import threadpool_limits

    import lamina
    from lamina.backend import threads as lamina_threads
    from lamina.callbacks import Callback
    from lamina.models import model_from_config

    times: list[float] = []
    spans: list = []

    class Clock(Callback):
        # The span brackets the clock: its /proc reads stay outside the timed epoch.
        def on_epoch_begin(self, epoch, logs=None):
            spans.append(Span().__enter__())
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)
            spans[-1].__exit__(None, None, None)

    # Lamina's own pool follows the BLAS thread count it found at first use, not a later
    # threadpool_limits(1) (BLAS already runs one thread): the policy says "1 thread".
    with threadpool_limits(threads):
        lamina_threads.set_thread_policy(1 if threads == 1 else "auto")
        try:
            lamina.utils.set_random_seed(0)
            model = model_from_config(config(kind))
            model.compile(**COMPILE)
            model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[Clock()])
        finally:
            lamina_threads.set_thread_policy("auto")
    return times, spans


def distributed(kind: str, x, y, epochs: int,
                replicas: int) -> tuple[list[float], float, list]:
    from quiet import Span, descendants

    from lamina.callbacks import Callback
    from lamina_worker import metrics
    from lamina_worker.trainer import DataParallelTrainer

    job = f"bench-{kind}-{replicas}"
    rates: list[float] = []
    spans: list = []
    sums = [(metrics.ALLREDUCE_SECONDS._sum.get(), metrics.STEP_SECONDS._sum.get())]

    class Rate(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:  # the spans count the replicas only if they are in the tree
                pids = [trainer.replica_pid(rank) for rank in range(replicas)]
                tree = set(descendants(os.getpid()))
                print(f"{job}: replica pids {pids} in this process's tree: "
                      f"{all(p in tree for p in pids)} ({len(tree)} descendants)", flush=True)
            spans.append(Span().__enter__())

        def on_epoch_end(self, epoch, logs=None):
            spans[-1].__exit__(None, None, None)
            rates.append(metrics.JOB_SAMPLES_PER_SECOND.labels(job)._value.get())
            sums.append((metrics.ALLREDUCE_SECONDS._sum.get(),
                         metrics.STEP_SECONDS._sum.get()))

    trainer = DataParallelTrainer(config(kind), COMPILE, (x, y, None), epochs=epochs,
                                  batch_size=BATCH, seed=0, replicas=replicas,
                                  replica_cpus=1, name=job)
    trainer.fit([Rate()])
    # Over the epochs the rates' median covers (the warm-up's first exchanges wait for
    # the peer's start-up: numba's import and compiles, first touches of the buffers).
    share = ((sums[-1][0] - sums[1][0]) / max(sums[-1][1] - sums[1][1], 1e-9)
             if len(sums) > 2 else float("nan"))
    return [len(x) / r for r in rates], share, spans


def quiet_rows(runs: dict, n: int) -> list[str]:
    """The quiet-epoch table's rows: medians over all timed epochs and the quiet ones."""
    out = []
    for (kind, setup), (times, _, spans) in runs.items():
        timed = list(zip(times[1:], spans[1:]))
        calm = [t for t, span in timed if span.others < QUIET]
        med_all = statistics.median(t for t, _ in timed)
        med_calm = statistics.median(calm) if calm else float("nan")
        others = statistics.median(span.others for _, span in timed)
        steal = statistics.median(span.steal for _, span in timed)
        out.append(f"| {kind} | {setup} | {med_all:.2f} | {n[kind] / med_all:,.0f} | "
                   f"{len(calm)} of {len(timed)} | {med_calm:.2f} | "
                   f"{n[kind] / med_calm:,.0f} | {others:.2f} | {steal:.2f} |")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--mlp-samples", type=int, default=12000)
    parser.add_argument("--cnn-samples", type=int, default=3000)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--setups", default="local1,local2,replicas1,replicas2",
                        help="comma-separated subset; vs-ratios need local2 / replicas1")
    parser.add_argument("--bucket-cap-mb", default=None,
                        help="the replicas' LAMINA_BUCKET_CAP_MB (0: no buckets)")
    parser.add_argument("--shared-update", choices=("0", "1"), default=None,
                        help="the replicas' LAMINA_SHARED_UPDATE (default: on)")
    parser.add_argument("--overlap-update", choices=("0", "1"), default=None,
                        help="the replicas' LAMINA_OVERLAP_UPDATE (default: off)")
    parser.add_argument("--pin-replicas", choices=("auto", "0", "1"), default=None,
                        help="the replicas' LAMINA_PIN_REPLICAS (default: auto, one CPU "
                             "each when they fill the machine)")
    parser.add_argument("--balance-chunks", choices=("0", "1"), default=None,
                        help="LAMINA_BALANCE_CHUNKS of the collective the driver creates "
                             "(default: on)")
    parser.add_argument("--spans-json", default=None,
                        help="write every epoch's time and quiet.Span figures here")
    args = parser.parse_args(argv)
    if args.balance_chunks is not None:  # read where the shared file is made: here
        os.environ["LAMINA_BALANCE_CHUNKS"] = args.balance_chunks
    setups = set(args.setups.split(","))
    env = {"PYTHONPATH": os.pathsep.join(
        os.path.join(ROOT, s) for s in ("sdk", "services", "worker", "bench"))}
    if args.bucket_cap_mb is not None:
        env["LAMINA_BUCKET_CAP_MB"] = str(float(args.bucket_cap_mb))
    for flag, name in ((args.shared_update, "LAMINA_SHARED_UPDATE"),
                       (args.overlap_update, "LAMINA_OVERLAP_UPDATE"),
                       (args.pin_replicas, "LAMINA_PIN_REPLICAS")):
        if flag is not None:
            env[name] = flag
    import ray
    from common import mnist_like

    # "local": a Ray of its own even when another session's cluster is up (ray.init()
    # would join that one, and refuses num_cpus there).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    rows = []
    every = {}  # (model, setup) -> (epoch times, share, spans)
    sizes = {}
    for kind in args.models.split(","):
        n = args.mlp_samples if kind == "mlp" else args.cnn_samples
        x, y = mnist_like(n)
        runs = {}
        for threads in (1, 2):
            if f"local{threads}" in setups:
                times, spans = local(kind, x, y, args.epochs, threads)
                runs[f"local fit, {threads} thread{'s' if threads > 1 else ''}"] = (
                    times, None, spans)
        for replicas in (1, 2):
            if f"replicas{replicas}" in setups:
                runs[f"{replicas} replica{'s' if replicas > 1 else ''}"] = distributed(
                    kind, x, y, args.epochs, replicas)
        medians = {setup: statistics.median(run[0][1:]) for setup, run in runs.items()}
        base = medians.get("local fit, 2 threads", float("nan"))
        one = medians.get("1 replica", float("nan"))
        sizes[kind] = n
        for setup, (times, share, spans) in runs.items():
            epoch = medians[setup]
            rows.append((kind, setup, epoch, n / epoch, base / epoch, one / epoch, share))
            print(rows[-1], "per epoch s:", [round(t, 3) for t in runs[setup][0]], flush=True)
            print(f"  {kind} {setup} epochs: " + "; ".join(
                f"{t:.3f} s ({span.describe()}, load {span.load1:.1f})"
                for t, span in zip(times, spans)), flush=True)
            every[(kind, setup)] = (times, share, spans)
    cap = env.get("LAMINA_BUCKET_CAP_MB", "default")
    shared = env.get("LAMINA_SHARED_UPDATE", "default")
    overlap = env.get("LAMINA_OVERLAP_UPDATE", "default")
    pin = env.get("LAMINA_PIN_REPLICAS", "default")
    balance = os.environ.get("LAMINA_BALANCE_CHUNKS", "default")
    print(f"\nbatch {BATCH}; median of {args.epochs - 1} epochs after a warm-up; "
          f"bucket cap {cap} MB; shared update {shared}; overlapped update {overlap}; "
          f"pinned replicas {pin}; balanced chunks {balance}; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| model | setup | epoch s | samples/s | vs local 2 threads | vs 1 replica "
          "| all-reduce share |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, setup, epoch, rate, vs_local, vs_one, share in rows:
        share_text = "-" if share is None else f"{share:.1%}"
        print(f"| {kind} | {setup} | {epoch:.2f} | {rate:,.0f} | {vs_local:.2f}x | "
              f"{vs_one:.2f}x | {share_text} |")
    print(f"\nquiet epochs: others (CPU/s of every process outside this one's tree, steal "
          f"included) < {QUIET}; medians over the {args.epochs - 1} epochs after the "
          "warm-up\n")
    print("| model | setup | epoch s, all | samples/s, all | quiet epochs | epoch s, quiet "
          "| samples/s, quiet | others | steal |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for line in quiet_rows(every, sizes):
        print(line)
    if args.spans_json:
        with open(args.spans_json, "w") as f:
            json.dump([{"model": kind, "setup": setup, "epoch": i, "seconds": t,
                        "span": span.as_dict()}
                       for (kind, setup), (times, _, spans) in every.items()
                       for i, (t, span) in enumerate(zip(times, spans))], f, indent=1)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
