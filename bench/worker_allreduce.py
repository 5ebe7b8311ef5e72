"""Data-parallel scaling of the worker: per-epoch time of 1 and 2 replicas vs local ``fit``.

For the benchmark models of ``lamina_models.py`` (MLP 784-512-512-10 with dropout,
670k parameters; the MNIST convnet with dropout, 35k), on MNIST-shaped data, batch
128, Adam, this runs in one process and one run:

* local ``fit`` with 1 and with 2 BLAS threads;
* the worker's :class:`~lamina_worker.trainer.DataParallelTrainer` (SPMD replicas on
  the shared-memory all-reduce) with 1 and 2 replicas, each an actor with one CPU
  (Ray sets one BLAS thread per actor);
* two independent local ``fit`` runs at once, each an actor with one CPU pinned as the
  replicas are, on its half of the data at half the batch (the steps of one replica),
  exchanging nothing: data parallelism with a free all-reduce, on this machine at that
  moment. Its epoch is the later of the two runs' (epoch by epoch); the column "vs 2
  independent fits" compares each setup with it. Two busy vCPUs are not twice one
  (the host's other work, shared cache and memory bandwidth), and this row measures
  that in the same run instead of assuming 2x. Each run also does the whole optimizer
  update, which two replicas with the shared update split between them: for the MLP
  (670k parameters) it is ~14% of such a step (0.23 of 1.63 ms at batch 64 on one
  thread, ``replica_step_profile.py``, 2026-12-06), so replicas can beat this row; for
  the CNN (35k) it is negligible, and the row is the replicas' ceiling.

Per-epoch time excludes start-up: local epochs are timed by a callback; replicas by the
chief from ``on_epoch_begin`` to ``on_epoch_end`` (``lamina_job_samples_per_second``).
Each setup runs ``--rounds`` times (default 3), interleaved: a round runs every setup
once, in an order rotated by one each round, so a spell of load or a slow mode of the
machine (see docs/architecture.md, "What else the machine did") falls on one run of a
setup rather than on all of it. The first epoch of every run is a warm-up; the table
gives, per setup, the median over the other ``--epochs - 1`` epochs of every round,
samples/s, the ratio to local ``fit`` with 2 threads, and the all-reduce's share of a
step (the chief's exchange time, ``lamina_allreduce_seconds``, over its step time,
``lamina_train_step_seconds``, summed over those epochs: waiting for the slower replica
included; with gradient buckets, only the part that backward did not hide). A table of
each round's medians comes first. By default the MLP trains on 60,000 samples, a full
MNIST epoch as in ``ratio.py`` (~1.1 s an epoch), and the CNN on 12,000 (~2-4 s). Each
epoch's boundary costs the replicas more than local ``fit``: the chief hands the driver
the epoch's checkpoint state (8 MB for the MLP), and the first steps after it run late
(~9 ms a boundary; 5-35 ms an epoch over all its steps, 12 MLP epochs recorded in both
replicas, 2026-12-06). At 12,000 MLP samples, the default before 2026-12-06, an epoch
is 0.25 s, and that weighs five times as much as in a real epoch (all-reduce share
16.5% at 12,000 against 9.1% at 60,000, two runs of the same hour); with 3,000 CNN
samples, the default before 2026-12-05, its 24 steps a replica made each epoch's
boundaries and single stalls weigh on a 0.5 s figure.

``--bucket-cap-mb`` sets the replicas' ``LAMINA_BUCKET_CAP_MB`` (0: one exchange after
backward; default: the library's, 1 MB buckets); ``--shared-update 0|1`` their
``LAMINA_SHARED_UPDATE`` (one copy of the parameters and slots, each replica updating
its half; default on), ``--overlap-update 0|1`` their ``LAMINA_OVERLAP_UPDATE``
(default off) and ``--pin-replicas auto|0|1`` their ``LAMINA_PIN_REPLICAS`` (default
auto: one CPU each when they fill the machine), ``--balance-chunks 0|1`` the
collective's ``LAMINA_BALANCE_CHUNKS`` (chunks of the exchange sized by the ranks'
measured speed; default on), ``--claimed-blocks 0|1`` its ``LAMINA_CLAIMED_BLOCKS``
(work blocks the ranks take from a queue, the first to arrive starting on the blocks a
late peer already landed; default on); ``--setups`` runs a subset (an A/B
interleaves whole runs of this script).

Each epoch also carries what else the machine did meanwhile (:class:`quiet.Span` over
the epoch: ``others``, the CPU per second of every process outside this one's tree, and
``steal``): the ``epochs:`` line after each setup's row, and a second table with the
medians over all epochs and over the quiet ones (``others`` < 0.3 CPU).
``--spans-json PATH`` writes every epoch's time and full span (with its round). The
spans skip the per-thread figures (run-queue wait, context switches) unless
``--thread-stats``: reading them costs the driver ~17 ms an epoch of the two CPUs the
replicas train on, and the replica it takes them from is late to the next exchange
(the MLP's all-reduce share 11.5-13.4% with them). The
replicas are Ray actors, descendants of this process (driver -> raylet -> workers): the
tree holds them (checked at the first epoch; a line says so). Their spans run from the driver's
``on_epoch_begin`` to its ``on_epoch_end`` as the chief's events arrive (polled every
0.2 s), so a span's wall time may differ from the chief's epoch time by up to a poll.

    python bench/worker_allreduce.py [--rounds 3] [--epochs 4] [--mlp-samples 60000]
        [--cnn-samples 12000] [--models mlp,cnn]
        [--setups local1,local2,replicas1,replicas2,independent2] [--bucket-cap-mb 1]
        [--shared-update 1] [--overlap-update 0] [--pin-replicas auto] [--balance-chunks 1]
        [--claimed-blocks 1]
        [--spans-json spans.json]
"""

from __future__ import annotations

import argparse
import json
import math
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


def local(kind: str, x, y, epochs: int, threads: int, thread_stats: bool = False,
          batch: int = BATCH, spans: bool = True) -> tuple[list[float], list]:
    from quiet import Span, descendants
    from threadpoolctl import threadpool_limits

    import lamina
    from lamina.backend import threads as lamina_threads
    from lamina.callbacks import Callback
    from lamina.models import model_from_config

    times: list[float] = []
    measured: list = []  # per epoch, its span (none when not `spans`)

    tree: list[int] = []

    class Clock(Callback):
        # The span brackets the clock: its /proc reads stay outside the timed epoch.
        def on_epoch_begin(self, epoch, logs=None):
            if spans and epoch == 0:  # the tree (Ray's processes) is the same all run
                tree[:] = descendants(os.getpid())
            if spans:
                measured.append(Span(threads=thread_stats, pids=tree).__enter__())
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)
            if spans:
                measured[-1].__exit__(None, None, None)

    # Lamina's own pool follows the BLAS thread count it found at first use, not a later
    # threadpool_limits(1) (BLAS already runs one thread): the policy says "1 thread".
    with threadpool_limits(threads):
        lamina_threads.set_thread_policy(1 if threads == 1 else "auto")
        try:
            lamina.utils.set_random_seed(0)
            model = model_from_config(config(kind))
            model.compile(**COMPILE)
            model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[Clock()])
        finally:
            lamina_threads.set_thread_policy("auto")
    return times, measured


def independent(kind: str, x, y, epochs: int, thread_stats: bool = False):
    """Two local ``fit`` runs at once, nothing exchanged (see the module's docstring):
    (per epoch the later run's time, None, per epoch the span of the whole run)."""
    import ray
    from quiet import Span, descendants

    from lamina.distribute.pinning import allowed_cpus

    @ray.remote(num_cpus=1)
    class Alone:
        """One of the two runs: an actor as a replica is (one CPU, Ray's one BLAS
        thread, Ray's niceness), pinned to a CPU as replicas that fill the machine."""

        def pid(self) -> int:
            return os.getpid()

        def fit(self, x, y, cpu: int | None) -> list[float]:
            from lamina.distribute.pinning import pinned

            with pinned(cpu):
                times, _ = local(kind, x, y, epochs, 1, batch=BATCH // 2, spans=False)
            return times

    cpus = allowed_cpus()
    runs = [Alone.remote() for _ in range(2)]
    try:
        pids = ray.get([run.pid.remote() for run in runs])
        tree = descendants(os.getpid())
        print(f"bench-{kind}-independent: pids {pids} in this process's tree: "
              f"{all(p in tree for p in pids)}", flush=True)
        half = len(x) // 2
        parts = [(x[:half], y[:half]), (x[half:], y[half:])]
        # Both start together and run alone: their epochs are timed inside each run, and
        # one span covers the whole of both (the driver sees no epoch boundary).
        with Span(threads=thread_stats, pids=tree) as span:
            times = ray.get([run.fit.remote(*part, cpus[rank] if len(cpus) == 2 else None)
                             for rank, (run, part) in enumerate(zip(runs, parts))])
    finally:
        for run in runs:
            ray.kill(run)
    return [max(pair) for pair in zip(*times)], None, [span] * epochs


def distributed(kind: str, x, y, epochs: int, replicas: int,
                thread_stats: bool = False) -> tuple[list[float], tuple[float, float], list]:
    from quiet import Span, descendants

    from lamina.callbacks import Callback
    from lamina_worker import metrics
    from lamina_worker.trainer import DataParallelTrainer

    job = f"bench-{kind}-{replicas}"
    rates: list[float] = []
    spans: list = []
    sums = [(metrics.ALLREDUCE_SECONDS._sum.get(), metrics.STEP_SECONDS._sum.get())]

    tree: list[int] = []

    class Rate(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:  # the spans count the replicas only if they are in the tree
                pids = [trainer.replica_pid(rank) for rank in range(replicas)]
                tree[:] = descendants(os.getpid())  # the run's tree, read once: each walk
                # reads every process's /proc/<pid>/stat (~2 ms) on the replicas' CPUs
                print(f"{job}: replica pids {pids} in this process's tree: "
                      f"{all(p in tree for p in pids)} ({len(tree)} descendants)", flush=True)
            spans.append(Span(threads=thread_stats, pids=tree).__enter__())

        def on_epoch_end(self, epoch, logs=None):
            spans[-1].__exit__(None, None, None)
            rates.append(metrics.JOB_SAMPLES_PER_SECOND.labels(job)._value.get())
            sums.append((metrics.ALLREDUCE_SECONDS._sum.get(),
                         metrics.STEP_SECONDS._sum.get()))

    trainer = DataParallelTrainer(config(kind), COMPILE, (x, y, None), epochs=epochs,
                                  batch_size=BATCH, seed=0, replicas=replicas,
                                  replica_cpus=1, name=job)
    trainer.fit([Rate()])
    # The chief's all-reduce and step seconds over the timed epochs, those the rates'
    # median covers (the warm-up's first exchanges wait for the peer's start-up: numba's
    # import and compiles, first touches of the buffers).
    timed = (sums[-1][0] - sums[1][0], sums[-1][1] - sums[1][1])
    return [len(x) / r for r in rates], timed, spans


def quiet_rows(runs: dict, n: dict) -> list[str]:
    """The quiet-epoch table's rows: medians over all timed epochs and the quiet ones
    (``runs``: (model, setup) -> (timed epoch times, _, their spans))."""
    out = []
    for (kind, setup), (times, _, spans) in runs.items():
        timed = list(zip(times, spans))
        calm = [t for t, span in timed if span.others < QUIET]
        med_all = statistics.median(t for t, _ in timed)
        med_calm = statistics.median(calm) if calm else float("nan")
        others = statistics.median(span.others for _, span in timed)
        steal = statistics.median(span.steal for _, span in timed)
        out.append(f"| {kind} | {setup} | {med_all:.2f} | {n[kind] / med_all:,.0f} | "
                   f"{len(calm)} of {len(timed)} | {med_calm:.2f} | "
                   f"{n[kind] / med_calm:,.0f} | {others:.2f} | {steal:.2f} |")
    return out


SETUPS = {"local1": "local fit, 1 thread", "local2": "local fit, 2 threads",
          "replicas1": "1 replica", "replicas2": "2 replicas",
          "independent2": "2 independent fits"}


def run_setup(key: str, kind: str, x, y, epochs: int, thread_stats: bool = False):
    """One run of setup ``key``: (epoch times, (all-reduce s, step s) over the timed
    epochs or None, spans)."""
    if key.startswith("local"):
        times, spans = local(kind, x, y, epochs, int(key[-1]), thread_stats)
        return times, None, spans
    if key == "independent2":
        return independent(kind, x, y, epochs, thread_stats)
    return distributed(kind, x, y, epochs, int(key[-1]), thread_stats)


def _times(ratio: float) -> str:
    """A ratio cell: ``1.23x``, or ``-`` when its reference setup did not run (nan)."""
    return "-" if math.isnan(ratio) else f"{ratio:.2f}x"


def summary(kind: str, n: int, every: dict) -> list[tuple]:
    """``(kind, setup, epoch s, samples/s, vs local 2 threads, vs 1 replica, vs 2
    independent fits, share)`` per setup of ``kind``: medians over every timed epoch of
    every round; the share is the chief's all-reduce seconds over its step seconds
    summed over those epochs."""
    medians = {setup: statistics.median(times) for (k, setup), (times, _, _) in every.items()
               if k == kind}
    base = medians.get(SETUPS["local2"], float("nan"))
    one = medians.get(SETUPS["replicas1"], float("nan"))
    ceiling = medians.get(SETUPS["independent2"], float("nan"))
    rows = []
    for (k, setup), (_, sums, _) in every.items():
        if k != kind:
            continue
        epoch = medians[setup]
        share = None if sums is None else sums[0] / max(sums[1], 1e-9)
        rows.append((kind, setup, epoch, n / epoch, base / epoch, one / epoch,
                     ceiling / epoch, share))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="whole runs of every setup, interleaved (rotated order)")
    parser.add_argument("--mlp-samples", type=int, default=60000)
    parser.add_argument("--cnn-samples", type=int, default=12000)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--setups", default=",".join(SETUPS),
                        help="comma-separated subset; vs-ratios need local2 / replicas1 / "
                             "independent2")
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
    parser.add_argument("--claimed-blocks", choices=("0", "1"), default=None,
                        help="LAMINA_CLAIMED_BLOCKS of the collective the driver creates "
                             "(default: on)")
    parser.add_argument("--spans-json", default=None,
                        help="write every epoch's time and quiet.Span figures here")
    parser.add_argument("--thread-stats", action="store_true",
                        help="the spans also read every thread's run-queue wait and context "
                             "switches (~17 ms of the driver's CPU an epoch)")
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.rounds < 1:
        parser.error(f"--epochs must be >= 2 (the first is a warm-up) and --rounds >= 1. "
                     f"Received: --epochs {args.epochs}, --rounds {args.rounds}")
    keys = [key for key in SETUPS if key in args.setups.split(",")]
    unknown = set(args.setups.split(",")) - set(SETUPS)
    if unknown or not keys:
        parser.error(f"--setups takes a comma-separated subset of {','.join(SETUPS)}. "
                     f"Received: {args.setups!r}")
    for flag, name in ((args.balance_chunks, "LAMINA_BALANCE_CHUNKS"),
                       (args.claimed_blocks, "LAMINA_CLAIMED_BLOCKS")):
        if flag is not None:  # read where the shared file is made: here
            os.environ[name] = flag
    env = {"PYTHONPATH": os.pathsep.join(
        os.path.join(ROOT, s) for s in ("sdk", "services", "worker", "bench"))}
    if args.bucket_cap_mb is not None:
        env["LAMINA_BUCKET_CAP_MB"] = str(float(args.bucket_cap_mb))
    for flag, name in ((args.shared_update, "LAMINA_SHARED_UPDATE"),
                       (args.overlap_update, "LAMINA_OVERLAP_UPDATE"),
                       (args.pin_replicas, "LAMINA_PIN_REPLICAS")):
        if flag is not None:
            env[name] = flag
    import common
    import ray

    # "local": a Ray of its own even when another session's cluster is up (ray.init()
    # would join that one, and refuses num_cpus there). Local fits alone do without it
    # (its start takes ~10 s); replicas and the independent fits are Ray actors.
    if any(not key.startswith("local") for key in keys):
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})
    kinds = args.models.split(",")
    sizes = {kind: args.mlp_samples if kind == "mlp" else args.cnn_samples for kind in kinds}
    data = {kind: common.mnist_like(sizes[kind]) for kind in kinds}
    # (model, setup) -> (timed epoch times, (all-reduce s, step s) or None, their spans),
    # the timed epochs of every round together; `runs` keeps each run whole (warm-up too).
    every: dict = {(kind, SETUPS[key]): ([], None, []) for kind in kinds for key in keys}
    runs: list = []
    for r in range(args.rounds):
        for kind in kinds:
            for key in common.round_order(keys, r):
                setup = SETUPS[key]
                times, sums, spans = run_setup(key, kind, *data[kind], args.epochs,
                                                   args.thread_stats)
                runs.append((r, kind, setup, times, spans))
                pooled_times, pooled_sums, pooled_spans = every[(kind, setup)]
                pooled_times += times[1:]
                pooled_spans += spans[1:]
                if sums is not None:
                    pooled_sums = tuple(a + b for a, b in zip(pooled_sums or (0.0, 0.0),
                                                              sums))
                every[(kind, setup)] = (pooled_times, pooled_sums, pooled_spans)
                share = ("" if sums is None else
                         f", all-reduce share {sums[0] / max(sums[1], 1e-9):.1%}")
                print(f"round {r + 1}: {kind} {setup}: median epoch "
                      f"{statistics.median(times[1:]):.3f} s{share}", flush=True)
                print(f"  {kind} {setup} epochs: " + "; ".join(
                    f"{t:.3f} s ({span.describe()}, load {span.load1:.1f})"
                    for t, span in zip(times, spans)), flush=True)
    cap = env.get("LAMINA_BUCKET_CAP_MB", "default")
    shared = env.get("LAMINA_SHARED_UPDATE", "default")
    overlap = env.get("LAMINA_OVERLAP_UPDATE", "default")
    pin = env.get("LAMINA_PIN_REPLICAS", "default")
    balance = os.environ.get("LAMINA_BALANCE_CHUNKS", "default")
    claimed = os.environ.get("LAMINA_CLAIMED_BLOCKS", "default")
    timed = args.rounds * (args.epochs - 1)
    print(f"\nbatch {BATCH}; {args.rounds} round(s) of {args.epochs} epochs, setups "
          f"interleaved (order rotated each round); medians over the {timed} epochs after "
          f"each run's warm-up; bucket cap {cap} MB; shared update {shared}; overlapped "
          f"update {overlap}; pinned replicas {pin}; balanced chunks {balance}; "
          f"claimed blocks {claimed}; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{common.blas_line()}\n")
    if args.rounds > 1:
        print("per round (each run's median epoch):\n")
        print("| model | round | " + " | ".join(SETUPS[k] for k in keys) + " |")
        print("| --- | ---: |" + " ---: |" * len(keys))
        for kind in kinds:
            for r in range(args.rounds):
                cells = {setup: statistics.median(times[1:])
                         for rr, k, setup, times, _ in runs if rr == r and k == kind}
                print(f"| {kind} | {r + 1} | " + " | ".join(
                    f"{cells[SETUPS[k]]:.3f} s" for k in keys) + " |")
        print()
    print("| model | setup | epoch s | samples/s | vs local 2 threads | vs 1 replica "
          "| vs 2 independent fits | all-reduce share |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in kinds:
        for _, setup, epoch, rate, vs_local, vs_one, vs_free, share in summary(
                kind, sizes[kind], every):
            share_text = "-" if share is None else f"{share:.1%}"
            print(f"| {kind} | {setup} | {epoch:.2f} | {rate:,.0f} | {_times(vs_local)} | "
                  f"{_times(vs_one)} | {_times(vs_free)} | {share_text} |")
    print(f"\nquiet epochs: others (CPU/s of every process outside this one's tree, steal "
          f"included) < {QUIET}; medians over the {timed} timed epochs\n")
    print("| model | setup | epoch s, all | samples/s, all | quiet epochs | epoch s, quiet "
          "| samples/s, quiet | others | steal |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for line in quiet_rows(every, sizes):
        print(line)
    if args.spans_json:
        with open(args.spans_json, "w") as f:
            json.dump([{"model": kind, "setup": setup, "round": r, "epoch": i, "seconds": t,
                        "span": span.as_dict()}
                       for r, kind, setup, times, spans in runs
                       for i, (t, span) in enumerate(zip(times, spans))], f, indent=1)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
