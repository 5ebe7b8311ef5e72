"""The driver of a job's replica group: start it, watch it, handle failure, commit
checkpoints. It is not on the per-step path.

Each of the ``N`` Ray actors (:class:`~lamina_worker.replica.Replica`, named
``<job>-t<token>-r<rank>-g<generation>``) runs the job's ``Model.fit`` itself (SPMD)
on a :class:`lamina.distribute.DataParallel` strategy. Each generation is placed by a
Ray placement group (:mod:`lamina_worker.placement`: ``pack`` on this worker's node, or
``spread`` one replica per node), and the placement decides the all-reduce: on this
node a shared-memory file (:mod:`lamina.distribute.shm`) that this driver creates per
generation and removes, across nodes a TCP ring (:mod:`lamina.distribute.ring`). The
transport is logged; each epoch event carries the generation and its node count.
The job's arrays go to Ray's object store once (``ray.put``). The actors are created
and watched through the worker's :mod:`~lamina_worker.raylink` (a Ray driver in this
process, or in the worker's driver child, so that a restart of the Ray head ends the
attempt, which is retried from the newest checkpoint, and not the worker).

The chief (rank 0) runs the job's callbacks on global logs and relays events; the
driver long-polls them (:meth:`Replica.poll`, in the actor's ``control`` thread) and
runs the worker's own callbacks on them (lease, progress, Prometheus, cancel/SIGTERM,
checkpoint): ``on_epoch_begin``, ``on_train_batch_end`` with the global logs,
``on_epoch_end``. A worker callback that raises
:class:`~lamina_worker.errors.TrainingStopped` becomes a control request to the chief
(``cancel``, ``fenced``, ``preempt``), which ends the run on every replica at the next
exchange; ``preempt`` first hands over a mid-epoch checkpoint, which the driver writes.

Checkpoints are written here (fencing check first, and again before each rename in
:func:`checkpoint.write`) from
the chief's states. A replica that dies (``RayActorError`` & co.) aborts the
collective; the driver kills the group and starts generation ``g + 1`` from the newest
checkpoint, at most ``max_restarts`` times (placed again: a lost node's replicas move
to the nodes that are left, see :mod:`lamina_worker.placement`). At the end every
replica's weights and optimizer digest must equal the chief's (bit-identical
replicas), or the job fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from lamina.backend import random as lamina_random
from lamina.callbacks.callback_list import CallbackList
from lamina.distribute import shm
from lamina.distribute.metric_state import additive_fields
from lamina.models import data as data_utils
from lamina_worker import checkpoint as ckpt
from lamina_worker import metrics, raylink
from lamina_worker.errors import NonFiniteLoss, TrainingStopped, replica_errors
from lamina_worker.placement import PLACEMENTS
from lamina_worker.replica import assign_state, build_model

log = logging.getLogger("lamina_worker")

#: Meta slots of the collective beyond the metric accumulators (control code, learning
#: rate, the global generator's state at epoch boundaries: lamina.distribute.strategy).
_META_SPARE = 16


class ReplicasDiverged(RuntimeError):
    """Replicas ended with different weights (a broken all-reduce or nondeterminism)."""


class DataParallelTrainer:
    """Train one job's model on ``replicas`` Ray actors (see the module docstring).

    Args:
        model_config: the Keras JSON config of the model.
        compile_config: keyword arguments of ``model.compile`` (optimizer as a config).
        train: ``(x, y, sample_weight)`` training arrays (validation already split off).
        val: ``(x, y, sample_weight)`` validation arrays or None.
        epochs, batch_size, shuffle: as in ``fit``.
        seed: seeds the global generator before the model is built (initial weights,
            shuffles), exactly as ``lamina.utils.set_random_seed`` before local ``fit``.
        replicas: number of Ray actors.
        checkpoint_dir: where checkpoints go (and are resumed from).
        checkpoint_every: also checkpoint every that many steps (0: epoch ends only).
        replica_cpus: ``num_cpus`` of each actor.
        max_restarts: group restarts allowed per attempt.
        name: prefix of the actors' names (the job id), for operators and tests.
        callbacks_spec: the job spec's allowlisted callbacks (built on the chief).
        initial_epoch: as in ``fit``.
        job_id: the ``job`` label of per-job metrics (default: ``name``).
        initial_weights: a flat float32 vector of all the model's weights to start from
            (the client's model, as Keras's ``fit`` continues from its weights), or None
            for the seeded initialisation; a checkpoint, when there is one, wins.
        placement: ``"pack"`` (every replica on this worker's node) or ``"spread"`` (one
            per node of the Ray cluster): :mod:`lamina_worker.placement`.
    """

    def __init__(self, model_config, compile_config, train, val=None, *, epochs=1,
                 batch_size=32, shuffle=True, seed=0, replicas=1, checkpoint_dir=None,
                 checkpoint_every=0, replica_cpus=1.0, max_restarts=2, name="job",
                 validation_batch_size=None, initial_epoch=0, callbacks_spec=(), job_id=None,
                 initial_weights=None, placement="pack"):
        if replicas < 1:
            raise ValueError(f"replicas must be >= 1. Received: replicas={replicas}")
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}. Received: "
                             f"placement={placement!r}")
        self.placement = placement
        self.model_config, self.compile_config = model_config, compile_config
        self.train, self.val = train, val
        self.epochs, self.batch_size, self.shuffle = epochs, batch_size, shuffle
        self.seed, self.n_replicas = int(seed), replicas
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.checkpoint_every, self.replica_cpus = checkpoint_every, replica_cpus
        self.max_restarts, self.name = max_restarts, name
        self.validation_batch_size = validation_batch_size
        self.initial_epoch = int(initial_epoch)
        self.callbacks_spec = list(callbacks_spec or [])
        self.job_id = job_id or name
        self._nonfinite = "non-finite loss"
        lamina_random.set_seed(self.seed)
        self.model = build_model(model_config, compile_config)
        # A flat vector of the model's weights to start from (None: the seeded init);
        # assigned here first so that a mismatch fails before any replica starts.
        self.initial_weights = initial_weights
        if initial_weights is not None:
            from lamina_worker.spec import assign_initial_weights

            assign_initial_weights(self.model, initial_weights)
        self.n_train = data_utils.num_samples(*train)
        self.steps = -(-self.n_train // batch_size)
        self.callbacks: list = []
        self._group = None  # raylink.Group (or its proxy): the replicas of a generation
        self.restarts = 0
        self.generation = 0
        self.epoch = 0
        self.step = 0
        self.resumed_from: tuple[int, int] | None = None
        self.fence_check = None  # asked before and within every checkpoint write (fence=)
        self.digests: list[str] = []
        # Per replica of the last run: {"threads": Lamina's threads, "bucket_cap_mb": ...}.
        self.replica_threads: list[dict] = []
        self._epoch_state: dict | None = None
        self._collective: Path | None = None  # the shared-memory file (shm transport)
        self.transport: str | None = None  # the running generation's all-reduce
        self.nodes = 0  # the Ray nodes the running generation's replicas are on

    @property
    def actors(self) -> list:
        """The current generation's Ray actor handles (empty when they live in the
        worker's Ray driver process: :mod:`lamina_worker.raylink`)."""
        return self._group.actors if self._group is not None else []

    def replica_pid(self, rank: int) -> int:
        """Process id of replica ``rank`` of the running generation."""
        return self._group.pid(rank)

    # -- the group ----------------------------------------------------------------------
    def _sizes(self) -> tuple[int, int]:
        """Gradient floats and metric accumulators of the model (the collective's n, m)."""
        from lamina.backend.autodiff import no_grad

        n = sum(int(np.prod(v.data.shape)) for v in self.model.trainable_weights)
        x, y, _ = self.train
        compiled = self.model.compiled_metrics
        if compiled is not None and not compiled.built:
            with no_grad():
                y_pred = self.model(data_utils.take(x, slice(0, 1)), training=False)
            compiled.build(data_utils.take(y, slice(0, 1)), y_pred)
        fields = additive_fields(self.model)
        m = sum(int(np.size(getattr(obj, name))) for obj, name in fields)
        return n, m + _META_SPARE

    @staticmethod
    def remove_stale_collectives(folder: Path = Path("/dev/shm")) -> None:
        """Delete collective files of worker processes that died without cleaning up
        (SIGKILL): their name ends with the dead driver's pid."""
        for path in folder.glob("lamina-*-g*-*"):
            pid = path.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shm.remove(path)

    def _start(self, state: dict | None) -> None:
        if self._group is None:
            self._group = raylink.current().group()
            self._group.put(self.train, self.val)
        n, m = self._sizes()
        where = self._group.place(self.n_replicas, self.replica_cpus, self.placement)
        self.transport, self.nodes = where["transport"], len(set(where["nodes"]))
        log.info("%s: generation %d: %d replica(s) on %d node(s) (%s), all-reduce over "
                 "%s%s", self.name, self.generation, self.n_replicas, self.nodes,
                 where["strategy"], self.transport,
                 f"; {where['note']}" if where["note"] else "")
        if self.transport == "shm":
            self.remove_stale_collectives()
            self._collective = shm.create(
                Path("/dev/shm") / f"lamina-{self.name}-g{self.generation}-{os.getpid()}",
                self.n_replicas, n, m)
            collective = {"transport": "shm", "path": str(self._collective)}
        else:
            collective = {"transport": "ring", "n": n, "m": m}
        fit = {"epochs": self.epochs, "batch_size": self.batch_size, "shuffle": self.shuffle,
               "validation_batch_size": self.validation_batch_size}
        ranks = range(self.n_replicas)
        self._group.start([{
            "model_config": self.model_config, "compile_config": self.compile_config,
            "seed": self.seed, "rank": rank, "world": self.n_replicas,
            "collective": collective, "fit": fit,
            "callbacks": self.callbacks_spec if rank == 0 else [],
            "folder": str(self.checkpoint_dir or "."),
            "checkpoint_every": self.checkpoint_every,
            "initial_epoch": self.initial_epoch,
            "initial_weights": self.initial_weights,
            "cpus": self.replica_cpus} for rank in ranks],
            [{"num_cpus": self.replica_cpus,
              "name": f"{self.name}-r{rank}-g{self.generation}"} for rank in ranks],
            state)

    def shutdown(self, release: bool = False) -> None:
        """Abort the collective, kill the replicas, remove their placement group and
        the file (idempotent); ``release`` also drops the job's arrays from Ray's
        object store."""
        if self._collective is not None:
            shm.abort(self._collective)
        if self._group is not None:
            with contextlib.suppress(Exception):  # Ray may be gone (raylink.RayUnavailable)
                self._group.close() if release else self._group.kill()
            if release:
                self._group = None
        if self._collective is not None:
            shm.remove(self._collective)
            self._collective = None

    # -- checkpoints --------------------------------------------------------------------
    def save_checkpoint(self, epoch_end: bool = True, state: dict | None = None) -> Path | None:
        """Write the chief's newest state (an epoch end's unless ``state`` is given)."""
        state = state if state is not None else self._epoch_state
        if self.checkpoint_dir is None or state is None:
            return None
        if self.fence_check is not None:
            self.fence_check()
        start = time.perf_counter()
        metrics_state = state.get("metrics")
        path = ckpt.write(self.checkpoint_dir, ckpt.State(
            epoch=int(state["epoch"]), step=int(state["step"]), weights=state["weights"],
            optimizer=state["optimizer"], rng_state=state["rng_state"],
            callbacks=state.get("callbacks") or [],
            metrics={} if metrics_state is None else
            {"accumulators": {"values": np.asarray(metrics_state, np.float64)}},
            stopped=bool(state.get("stopped"))), fence=self.fence_check)
        metrics.CHECKPOINT_SECONDS.observe(time.perf_counter() - start)
        return path

    def _initial_state(self) -> dict:
        return {**{"weights": [np.array(v.data) for v in self.model.weights],
                   "optimizer": [np.array(v.data) for v in self.model.optimizer.variables]},
                "epoch": self.initial_epoch, "step": 0,
                "rng_state": lamina_random.get_state(), "callbacks": [], "metrics": None,
                "stopped": False}

    def _restore(self) -> dict | None:
        """The newest checkpoint as the replicas' start state (None: a fresh start)."""
        found = ckpt.latest(self.checkpoint_dir) if self.checkpoint_dir else None
        if found is None:
            return None
        state, path = found
        self.resumed_from = (state.epoch, state.step)
        log.info("%s: resuming from %s", self.name, path.name)
        values = state.metrics.get("accumulators", {}).get("values")
        return {"weights": state.weights, "optimizer": state.optimizer,
                "epoch": state.epoch, "step": state.step, "rng_state": state.rng_state,
                "callbacks": state.callbacks, "stopped": state.stopped,
                "metrics": None if values is None else np.asarray(values).tolist()}

    # -- the loop -----------------------------------------------------------------------
    def fit(self, callbacks=None):
        """Train (resuming from the newest checkpoint if any); returns the History.

        A replica that dies restarts the group from the newest checkpoint (at most
        ``max_restarts`` times); Ray itself going away (:class:`raylink.RayUnavailable`)
        ends the attempt, which the worker retries."""
        errors = (*replica_errors(), raylink.ReplicaLost)
        callback_list = CallbackList(
            list(callbacks or []), add_history=True, model=self.model, verbose=0,
            epochs=self.epochs, steps=self.steps)
        self.callbacks = callback_list.callbacks
        for cb in self.callbacks:
            if hasattr(cb, "trainer"):
                cb.trainer = self
        self.model.stop_training = False
        callback_list.on_train_begin()
        try:
            while True:
                try:
                    logs = self._attempt(callback_list)
                    break
                except errors as exc:
                    self.shutdown()
                    self.restarts += 1
                    self.generation += 1
                    metrics.JOB_RETRIES.inc()
                    if self.restarts > self.max_restarts:
                        raise RuntimeError(f"replicas died {self.restarts} times; last: "
                                           f"{exc}") from exc
                    log.warning("%s: a replica died (%s: %s); restarting from the last "
                                "checkpoint (%d/%d)", self.name, type(exc).__name__,
                                str(exc)[:300], self.restarts, self.max_restarts)
            callback_list.on_train_end(logs)
        finally:
            self.shutdown(release=True)
        return self.model.history

    def _attempt(self, callback_list) -> dict:
        state = self._restore()
        if state is None:
            state = self._initial_state()
            if self.checkpoint_dir is not None:
                self.save_checkpoint(state=state)  # the initial state, step 0
            state = None
        self._start(state)
        group = self._group
        stop: TrainingStopped | None = None
        control = None
        logs: dict = {}
        done = False
        while not done:
            events = group.poll(control, 0.2)  # raises when a replica died
            for event in events:
                if event["type"] == "done":
                    done = True
                    continue
                if stop is not None:
                    # Preempted: the state the chief hands over still becomes a checkpoint
                    # (an epoch end also runs the callbacks: its history row, then the
                    # CheckpointCallback). Cancelled or fenced: nothing more is written.
                    if stop.checkpoint and event["type"] == "checkpoint":
                        self.save_checkpoint(state=event["state"])
                    elif stop.checkpoint and event["type"] == "epoch_end":
                        with contextlib.suppress(TrainingStopped):
                            self._dispatch(event, callback_list)
                    continue
                try:
                    logs = self._dispatch(event, callback_list) or logs
                except TrainingStopped as exc:
                    stop, control = exc, _CONTROL.get(type(exc).__name__, "cancel")
        results = group.results()
        if stop is not None:
            raise stop
        self.digests = [r["digest"] for r in results]
        self.replica_threads = [r.get("ran_with") for r in results]
        if results[0]["aborted"] == "nonfinite":
            raise NonFiniteLoss(self._nonfinite)
        if len(set(self.digests)) != 1:
            raise ReplicasDiverged(f"replica digests differ: {self.digests}")
        assign_state(self.model, results[0])
        return logs

    def _dispatch(self, event: dict, callback_list) -> dict | None:
        kind = event["type"]
        if kind == "epoch_begin":
            self.epoch = event["epoch"]
            self.model.stop_training = False
            self._step_s = self._exchange_s = 0.0  # this epoch's sums, for epoch_perf
            callback_list.on_epoch_begin(self.epoch)
        elif kind == "batch":
            self.step = event["batch"]
            metrics.TRAIN_STEPS.inc()
            metrics.TRAIN_SAMPLES.inc(event["samples"])
            metrics.STEP_SECONDS.observe(event["step_s"])
            metrics.ALLREDUCE_SECONDS.observe(event["exchange_s"])
            self._step_s = getattr(self, "_step_s", 0.0) + event["step_s"]
            self._exchange_s = getattr(self, "_exchange_s", 0.0) + event["exchange_s"]
            callback_list.on_train_batch_end(self.step, event["logs"])
            return event["logs"]
        elif kind == "checkpoint":
            self.save_checkpoint(state=event["state"])
        elif kind == "nonfinite":
            self._nonfinite = (f"non-finite loss ({event['loss']}) at epoch "
                               f"{event['epoch'] + 1}, batch {event['batch'] + 1}; training "
                               "stopped, no checkpoint holds the non-finite weights")
        elif kind == "epoch_end":
            self._epoch_state = event["state"]
            assign_state(self.model, event["state"])
            if event["seconds"] > 0:
                metrics.JOB_SAMPLES_PER_SECOND.labels(self.job_id).set(
                    event["samples"] / event["seconds"])
            # measured throughput and all-reduce share of this epoch (Progress publishes it)
            step_s = getattr(self, "_step_s", 0.0)
            self.epoch_perf = {
                "samples_per_second": (event["samples"] / event["seconds"]
                                       if event["seconds"] > 0 else None),
                "allreduce_share": (getattr(self, "_exchange_s", 0.0) / step_s
                                    if step_s > 0 else None),
                "nodes": self.nodes, "generation": self.generation}
            callback_list.on_epoch_end(event["epoch"], event["logs"])
            return event["logs"]
        return None


_CONTROL = {"Cancelled": "cancel", "Fenced": "fenced", "Preempted": "preempt"}
