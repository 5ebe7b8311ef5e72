"""Where a data-parallel replica's step goes: per-phase timers inside each rank.

Runs the benchmark MLP (or CNN) as ``--world`` replicas of ``lamina.distribute.local``
(one BLAS thread each, as the worker's one-CPU actors) and, with ``--world 1``, local
``fit`` with one BLAS thread at the same batch; every rank wraps the phases of its
step in timers (wall and thread CPU time) and reports medians per step after a
warm-up epoch:

* ``forward`` (the model's call), ``loss``, ``backward`` (``autodiff.gradients``),
  ``metrics`` (``_update_metrics``, logs included);
* ``reduce_gradients`` split into the collective's barrier waits (``wait``: the peer's
  lateness plus the wake-up), the shared update run inside the exchange (``update``),
  and the rest (copies, the weighted chunk sum, bookkeeping: ``exchange_cpu``);
* ``apply`` (``optimizer.apply``), ``reduce_logs`` (the shared update's barrier and the
  chief's metric sums), ``callbacks`` (``on_train_batch_begin/end``), and ``loop``: the
  rest of the step-to-step time (batch slicing, keys, ``pythonify``, ``fit``'s loop);
  per step also the thread's voluntary and involuntary context switches, minor page
  faults and, on the shared-memory collective, the claimed blocks it took (``*_mean``).

Usage: python bench/replica_step_profile.py [--world 2] [--model mlp] [--epochs 4]
       [--samples 12000] [--batch 128] [--relay] [--ab keys|spin|wsum|merge|balance|claims]
``--relay`` adds a stand-in of the worker's chief callback (an event dict per batch);
``--ab NAME`` switches a change on in odd epochs and off in even ones (both ranks) and
prints each rank's medians per setting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "sdk"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

PHASES = ("forward", "loss", "backward", "metrics", "reduce_gradients", "apply",
          "reduce_logs", "callbacks")


class Timers:
    def __init__(self):
        self.wall = {p: 0.0 for p in PHASES}
        self.cpu = {p: 0.0 for p in PHASES}
        self.depth = 0

    def wrap(self, owner, name, phase):
        fn = getattr(owner, name)
        timers = self

        def timed(*args, **kwargs):
            if timers.depth:  # nested (e.g. a model's call inside the loss): count once
                return fn(*args, **kwargs)
            timers.depth += 1
            w, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                timers.wall[phase] += time.perf_counter() - w
                timers.cpu[phase] += time.thread_time() - c
                timers.depth -= 1
        setattr(owner, name, timed)


#: ``--ab NAME``: a change switched on in odd epochs (on both ranks), off in even ones.
AB = {}


def _ab_keys(on: bool) -> None:
    """Keyed draws decide ``compiled.pays`` on the global batch (on) or the replica's
    part (off, as before)."""
    from lamina.distribute import keys

    original = AB.setdefault("keys.batch_keys", keys.batch_keys)

    def part_only(epoch, rows, batch=None):
        return original(epoch, rows)
    keys.batch_keys = original if on else part_only


def _ab_spin(on: bool) -> None:
    """Barrier waits spin 0.5 ms yielding the core (on), or ~0.2 ms without yielding
    (off: about what 100 numpy counter checks took before)."""
    from lamina.distribute import shm

    shm._SPIN_SECONDS, shm._SPIN_YIELD = (5e-4, True) if on else (2e-4, False)


def _ab_wsum(on: bool) -> None:
    """The weighted chunk sum as one compiled pass (on) or numpy's blocks (off)."""
    import types

    from lamina.backend import compiled
    from lamina.distribute import shm

    shm.compiled = compiled if on else types.SimpleNamespace(pays=lambda elements: False)


def _ab_merge(on: bool) -> None:
    """A rank's contiguous update pieces merged into one (on) or one per variable."""
    from lamina.distribute import get_strategy, shared_state

    original = AB.setdefault("shared_state._merged", shared_state._merged)
    shared_state._merged = original if on else list
    shared = getattr(get_strategy(), "_shared", None)
    if shared is not None:
        shared._pieces = {}  # cut again on the next step


def _ab_balance(on: bool) -> None:
    """A large exchange's chunks sized by the ranks' measured speed (on: the shares
    learned in the last on-epoch kept) or equal (off)."""
    from lamina.distribute import get_strategy

    balance = get_strategy().collective.balance
    if not balance.enabled and not on:  # the first epoch: learn from equal shares
        balance.enabled = True
    if balance.enabled and not on:
        AB["balance.shares"] = list(balance.shares)
        balance.shares = [1.0 / balance.world] * balance.world
    elif on:
        balance.shares = AB.get("balance.shares", balance.shares)
    balance.enabled = on
    balance._bounds.clear()


def _ab_claims(on: bool) -> None:
    """A large exchange's work taken as claimed blocks from a queue, the first rank to
    arrive starting on what a late peer already landed (on), or a chunk per rank (off)."""
    from lamina.distribute import get_strategy

    get_strategy().collective.claims = on


AB_SWITCHES = {"keys": _ab_keys, "spin": _ab_spin, "wsum": _ab_wsum, "merge": _ab_merge,
               "balance": _ab_balance, "claims": _ab_claims}


def replica(kind: str, x, y, epochs: int, batch: int, relay: bool, ab: str = "") -> dict:
    from lamina_models import build
    from threadpoolctl import threadpool_limits

    import lamina
    from lamina.backend import threads
    from lamina.callbacks import Callback
    from lamina.callbacks.callback_list import CallbackList
    from lamina.distribute import get_strategy
    from lamina.models import trainer

    strategy = get_strategy()
    timers = Timers()
    steps: list[dict] = []

    class Clock(Callback):
        taken = 0  # the collective's claimed blocks at the last step's end

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = clock_epoch[0] = epoch
            self.last = None
            if ab:
                AB_SWITCHES[ab](bool(epoch % 2))

        def on_train_batch_begin(self, batch, logs=None):
            now = time.perf_counter()
            self.mark = (now, time.thread_time(), dict(timers.wall), dict(timers.cpu),
                         _switches())
            if self.last is not None:
                self.gap = now - self.last
            else:
                self.gap = None

        def on_train_batch_end(self, batch, logs=None):
            now, cpu = time.perf_counter(), time.thread_time()
            start, cstart, wall0, cpu0, switches = self.mark
            row = {"epoch": self.epoch, "step": now - start, "step_cpu": cpu - cstart,
                   "gap": self.gap}
            row["voluntary"], row["involuntary"], row["minflt"] = (
                b - a for a, b in zip(switches, _switches()))
            for p in PHASES:
                row[p] = timers.wall[p] - wall0[p]
                row[p + "_cpu"] = timers.cpu[p] - cpu0[p]
            collective = getattr(strategy, "collective", None)
            if collective is not None:
                row["wait"] = collective.wait_seconds
                taken = getattr(collective, "blocks_taken", 0)  # claimed blocks (shm)
                row["blocks"], self.taken = taken - self.taken, taken
                shared = getattr(strategy, "_shared", None)
                row["update"] = shared.update_seconds if shared is not None else 0.0
            steps.append(row)
            self.last = time.perf_counter()

    class RelayLike(Callback):
        def on_train_batch_end(self, batch, logs=None):
            event = {"type": "batch", "batch": batch, "logs": dict(logs or {}),
                     "samples": batch}
            self.events = getattr(self, "events", [])
            self.events.append(event)

    import gc

    gc_times = {0: [], 1: [], 2: []}
    clock_epoch = [0]
    gc_start = {}

    def gc_clock(phase, info):
        if phase == "start":
            gc_start["t"] = time.perf_counter()
        else:
            if clock_epoch[0] > 0:  # after the warm-up epoch (imports, compiles)
                gc_times[info["generation"]].append(time.perf_counter() - gc_start["t"])
    gc.callbacks.append(gc_clock)
    with threadpool_limits(1):
        threads.set_thread_policy(1)
        lamina.utils.set_random_seed(0)
        model = build(kind)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        cls = type(model)
        wrap = timers.wrap if os.environ.get("PROFILE_TIMERS", "1") == "1" else _skip
        wrap(cls, "__call__", "forward")
        wrap(cls, "compute_loss", "loss")
        wrap(trainer, "gradients", "backward")
        wrap(cls, "_update_metrics", "metrics")
        wrap(strategy, "reduce_gradients", "reduce_gradients")
        wrap(model.optimizer, "apply", "apply")  # the instance: pieces.supported checks the class
        wrap(strategy, "reduce_logs", "reduce_logs")
        wrap(CallbackList, "on_train_batch_begin", "callbacks")
        wrap(CallbackList, "on_train_batch_end", "callbacks")
        callbacks = [Clock()] + ([RelayLike()] if relay and strategy.is_chief else [])
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=callbacks)
        total = time.perf_counter() - start
    gc.callbacks.remove(gc_clock)
    gc_summary = {g: (len(t), round(1e3 * sum(t), 2), round(1e3 * max(t, default=0), 2))
                  for g, t in gc_times.items()}
    balance = getattr(getattr(strategy, "collective", None), "balance", None)
    shares = None if balance is None else AB.get("balance.shares", balance.shares)
    return {"rank": strategy.rank, "steps": steps, "total": total, "gc": gc_summary,
            "pays": _pays_state(),
            "shares": None if shares is None else [round(v, 4) for v in shares]}


def _skip(*args):
    """No timer (a sampling profiler's run: timers would be its leaf frames)."""


def _switches():
    import resource

    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_nvcsw, usage.ru_nivcsw, usage.ru_minflt


def _pays_state():
    from lamina.backend import compiled

    return {"enabled": bool(compiled.enabled()),
            "kernels": os.environ.get("LAMINA_KERNELS", "auto")}


def summarise(result: dict, keep=lambda r: r["epoch"] > 0) -> dict:
    rows = [r for r in result["steps"] if keep(r)]
    med = {}
    keys = ["step", "step_cpu", "gap"] + [p for p in PHASES] + [p + "_cpu" for p in PHASES]
    if "wait" in rows[0]:
        keys += ["wait", "update"]
    for key in keys:
        values = [r[key] for r in rows if r.get(key) is not None]
        med[key] = round(1e3 * statistics.median(values), 3) if values else None
    if med.get("wait") is not None:
        med["exchange_rest"] = round(med["reduce_gradients"] - med["wait"] - med["update"], 3)
    for key in ("voluntary", "involuntary", "minflt") + (("blocks",) if "blocks" in rows[0]
                                                          else ()):
        med[key + "_mean"] = round(statistics.mean(r[key] for r in rows), 2)
    med["accounted"] = round(sum(med[p] for p in PHASES), 3)
    med["loop"] = round(med["step"] - med["accounted"] + (med["gap"] or 0.0), 3)
    per_epoch = {}
    for key in ("step", "step_cpu", "reduce_gradients", "update", "wait"):
        if key in rows[0]:
            per_epoch[key] = [round(1e3 * statistics.median(
                r[key] for r in rows if r["epoch"] == e), 3)
                for e in sorted({r["epoch"] for r in rows})]
    return {"rank": result["rank"], "shares": result.get("shares"), "steps": len(rows),
            "ms": med, "per_epoch": per_epoch,
            "gc (count, total ms, max ms) by generation, after warm-up": result.get("gc")}


def main(argv=None) -> int:
    from common import mnist_like

    from lamina.distribute import local

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=12000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--relay", action="store_true")
    parser.add_argument("--ab", default="", choices=("",) + tuple(AB_SWITCHES),
                        help="alternate a change per epoch; medians per setting")
    args = parser.parse_args(argv)
    from lamina_models import build

    x, y = mnist_like(args.samples)
    size = sum(int(w.data.size) for w in build(args.model).trainable_weights)
    print("load before:", [round(v, 2) for v in os.getloadavg()], flush=True)
    fn_args = (args.model, x, y, args.epochs, args.batch, args.relay, args.ab)
    if args.world == 1 and os.environ.get("PROFILE_LOCAL", "1") == "1":
        results = [replica(*fn_args)]
    else:
        # As Ray starts a one-CPU actor: one BLAS thread from the start (the strategy's
        # defaults, e.g. buckets.overlap_pays, read it when the replica starts).
        os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = "1"
        results = local.launch(replica, args.world, *fn_args, n=size)
    for result in results:
        if args.ab:
            for on in (False, True):
                print(json.dumps({"ab": args.ab, "on": on, **summarise(
                    result, lambda r, on=on: r["epoch"] > 0 and bool(r["epoch"] % 2) == on)}))
        else:
            print(json.dumps(summarise(result)))
    print("load after:", [round(v, 2) for v in os.getloadavg()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
