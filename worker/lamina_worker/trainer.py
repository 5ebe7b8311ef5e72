"""Synchronous data-parallel ``fit`` over N Ray actors (one model replica each).

The driver (the worker process) runs the epoch loop and the Lamina callbacks on
a driver-side copy of the model; the replicas do the arithmetic:

* the job's arrays go to Ray's object store **once** (``ray.put``); replicas get
  the ObjectRefs and slice rows locally by index;
* each global batch (drawn exactly as local ``fit`` draws it: the same
  ``BatchIterator`` on the same global generator) is cut into ``N`` contiguous
  slices; replica ``i`` computes the gradient of its slice's mean loss;
* all-reduce = allgather through the object store: the driver hands every
  replica the refs of all ``N`` gradients (rank order) and the slice shares
  ``n_i / B``; each replica sums ``share_i * grad_i`` in rank order and applies
  the same optimizer update, so the replicas stay bit-identical. The apply is
  folded into the next step's call, one Ray round trip per step;
* metrics: each replica returns its accumulators (loss total/count and every
  metric's additive state); the driver sums them and computes the logs, so
  every callback sees the global, sample-weighted values and decides once;
* at each epoch end the driver pulls the state of replica 0 (weights, optimizer
  variables), runs validation sharded over the replicas, then the callbacks
  (EarlyStopping, ReduceLROnPlateau, ..., the worker's reporting, the
  checkpoint callback last). At each epoch begin it pushes its state back, so
  anything a callback changed (a learning rate, restored weights) reaches every
  replica.

``sync_every=K > 1`` is local SGD: replicas apply their own gradients and the
driver averages weights and optimizer slots every K steps. It sends K times
less but is **not** equivalent to single-process training.

A replica that dies (``RayActorError``) makes the trainer kill the others,
start fresh replicas and resume from the newest checkpoint, at most
``max_restarts`` times.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import numpy as np

from lamina.backend import random as lamina_random
from lamina.backend.random import get_rng
from lamina.callbacks.callback_list import CallbackList
from lamina.models import data as data_utils
from lamina_worker import checkpoint as ckpt
from lamina_worker import metrics
from lamina_worker.errors import NonFiniteLoss, TrainingStopped, replica_errors
from lamina_worker.replica import Replica, add_states, build_model, weighted_mean

log = logging.getLogger("lamina_worker")


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
        sync_every: 1 = synchronous SGD; K > 1 = average weights every K steps.
        checkpoint_every: also checkpoint every that many steps (0: epoch ends only).
        replica_cpus: ``num_cpus`` of each actor.
        max_restarts: replica restarts allowed per attempt.
        name: prefix of the actors' names (the job id), for operators and tests.
        timeout: seconds to wait for one step before treating the replicas as lost.
        allreduce: ``"allgather"`` (replicas read each other's gradients from the object
            store; the default) or ``"driver"`` (the driver fetches, averages and puts
            the mean; kept for the benchmark).
    """

    def __init__(self, model_config, compile_config, train, val=None, *, epochs=1,
                 batch_size=32, shuffle=True, seed=0, replicas=1, checkpoint_dir=None,
                 sync_every=1, checkpoint_every=0, replica_cpus=1.0, max_restarts=2,
                 name="job", timeout=600.0, validation_batch_size=None, initial_epoch=0,
                 allreduce="allgather"):
        if allreduce not in ("allgather", "driver"):
            raise ValueError(f"allreduce must be 'allgather' or 'driver'; received {allreduce!r}")
        self.allreduce = allreduce
        if replicas < 1 or sync_every < 1:
            raise ValueError(f"replicas and sync_every must be >= 1; received "
                             f"replicas={replicas}, sync_every={sync_every}")
        self.model_config, self.compile_config = model_config, compile_config
        self.train, self.val = train, val
        self.epochs, self.batch_size, self.shuffle = epochs, batch_size, shuffle
        self.seed, self.n_replicas, self.sync_every = int(seed), replicas, sync_every
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.checkpoint_every, self.replica_cpus = checkpoint_every, replica_cpus
        self.max_restarts, self.name, self.timeout = max_restarts, name, timeout
        self.validation_batch_size = validation_batch_size or batch_size
        lamina_random.set_seed(self.seed)
        self.model = build_model(model_config, compile_config)
        self.n_train = data_utils.num_samples(*train)
        self.iterator = data_utils.BatchIterator(self.n_train, batch_size, shuffle, get_rng())
        self.callbacks: list = []
        self.actors: list = []
        self.restarts = 0
        self.generation = 0
        self.epoch = 0
        self.step = 0
        self.resumed_from: tuple[int, int] | None = None
        self.fence_check = None  # called before every checkpoint write; raises if fenced
        self.initial_epoch = int(initial_epoch)
        self.timings = {"steps": 0, "wall": 0.0, "compute": 0.0, "apply": 0.0}
        self._pending: tuple[list, list] = ([], [])
        self._unsynced: list[int] = []
        self._metric_totals: dict = {}
        self._epoch_rng = None
        self._base_metrics: dict = {}
        self._replica_rng: list = []
        self._data_refs = None

    # -- replicas ---------------------------------------------------------------------
    def _start_replicas(self) -> None:
        import ray

        actor_cls = ray.remote(Replica)
        if self._data_refs is None:
            self._data_refs = (ray.put(self.train),
                               ray.put(self.val) if self.val is not None else None)
        self.actors = [
            actor_cls.options(num_cpus=self.replica_cpus,
                              name=f"{self.name}-r{rank}-g{self.generation}",
                              max_restarts=0).remote(
                self.model_config, self.compile_config, rank, self.seed)
            for rank in range(self.n_replicas)]
        ray.get([a.set_data.remote(*self._data_refs) for a in self.actors],
                timeout=self.timeout)
        self._pending = ([], [])
        self._unsynced = []

    def shutdown(self) -> None:
        """Kill the replicas (idempotent)."""
        import ray

        for actor in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self.actors = []

    def _get(self, refs):
        import ray

        return ray.get(refs, timeout=self.timeout)

    # -- state ------------------------------------------------------------------------
    def _push_state(self) -> None:
        import ray

        state = {"weights": [np.array(v.data) for v in self.model.weights],
                 "optimizer": [np.array(v.data) for v in self.model.optimizer.variables],
                 "replica_rng": self._replica_rng}
        ref = ray.put(state)
        self._get([a.set_state.remote(ref) for a in self.actors])
        self._replica_rng = []

    def _flush(self) -> None:
        """Apply the pending averaged gradient on every replica (end of epoch/stop)."""
        weights, grads = self._pending
        if grads:
            self._get([a.finish.remote(weights, *grads) for a in self.actors])
        self._pending = ([], [])

    def pull_state(self) -> None:
        """Make the driver's model equal to the replicas' (flushes pending updates)."""
        self._flush()
        if self._unsynced:
            self._average_weights(self._unsynced)
        states = self._get([a.get_state.remote() for a in self.actors])
        for variable, value in zip(self.model.weights, states[0]["weights"]):
            variable.assign(value)
        for variable, value in zip(self.model.optimizer.variables, states[0]["optimizer"]):
            variable.assign(value)
        self._replica_rng = [s["rng"] for s in states]

    def replica_states(self) -> list[dict]:
        """Every replica's state (tests check that they are bit-identical)."""
        self._flush()
        return self._get([a.get_state.remote() for a in self.actors])

    def _checkpoint_state(self, epoch: int, step: int, rng_state: dict) -> ckpt.State:
        return ckpt.State(
            epoch=epoch, step=step, weights=[np.array(v.data) for v in self.model.weights],
            optimizer=[np.array(v.data) for v in self.model.optimizer.variables],
            rng_state=rng_state, replica_rng=list(self._replica_rng),
            callbacks=ckpt.callback_states(self.callbacks),
            metrics=add_states([self._base_metrics, self._metric_totals])
            if step else {}, stopped=bool(self.model.stop_training))

    def save_checkpoint(self, epoch_end: bool) -> Path | None:
        """Pull the state and write a checkpoint (epoch end, or mid-epoch at this step)."""
        if self.checkpoint_dir is None:
            return None
        if self.fence_check is not None:
            self.fence_check()
        start = time.perf_counter()
        if epoch_end:
            state = self._checkpoint_state(self.epoch + 1, 0, lamina_random.get_state())
        else:
            self.pull_state()
            state = self._checkpoint_state(self.epoch, self.step, self._epoch_rng)
        path = ckpt.write(self.checkpoint_dir, state)
        metrics.CHECKPOINT_SECONDS.observe(time.perf_counter() - start)
        return path

    def _restore(self) -> tuple[int, int, bool]:
        found = ckpt.latest(self.checkpoint_dir) if self.checkpoint_dir else None
        if found is None:
            return self.initial_epoch, 0, False
        state, path = found
        for variable, value in zip(self.model.weights, state.weights):
            variable.assign(value)
        for variable, value in zip(self.model.optimizer.variables, state.optimizer):
            variable.assign(value)
        lamina_random.set_state(state.rng_state)
        self._replica_rng = state.replica_rng if len(state.replica_rng) == self.n_replicas \
            else []
        ckpt.restore_callbacks(self.callbacks, state.callbacks)
        self._base_metrics = state.metrics
        self.model.stop_training = state.stopped
        self.resumed_from = (state.epoch, state.step)
        log.info("%s: resuming from %s", self.name, path.name)
        return state.epoch, state.step, state.stopped

    # -- metrics ----------------------------------------------------------------------
    def _build_driver_metrics(self) -> None:
        compiled = self.model.compiled_metrics
        if compiled is None or compiled.built:
            return
        from lamina.backend.autodiff import no_grad

        x, y, _ = self.train
        with no_grad():
            y_pred = self.model(data_utils.take(x, slice(0, 1)), training=False)
        compiled.build(data_utils.take(y, slice(0, 1)), y_pred)

    def _logs(self, state: dict) -> dict:
        """Set the driver model's metrics to ``state`` and return its logs."""
        model = self.model
        tracker = model._loss_tracker
        tracker.total = state.get("loss", {}).get("total", 0.0)
        tracker.count = state.get("loss", {}).get("count", 0.0)
        if model.compiled_metrics is not None:
            for metric in model.compiled_metrics.metrics:
                for key, value in state.get(metric.name, {}).items():
                    setattr(metric, key, value)
        return model.get_metrics_result()

    # -- one step ---------------------------------------------------------------------
    def _slices(self, index) -> list:
        if isinstance(index, slice):
            index = np.arange(index.start, index.stop)
        return np.array_split(np.asarray(index), self.n_replicas)

    def _run_step(self, index) -> dict:
        start = time.perf_counter()
        parts = self._slices(index)
        total = float(sum(len(p) for p in parts))
        if self.sync_every == 1:
            weights, grads = self._pending
            calls = [a.step.options(num_returns=2).remote(p, weights, *grads)
                     for a, p in zip(self.actors, parts)]
            stats = self._get([c[1] for c in calls])
            live = [i for i, p in enumerate(parts) if len(p)]
            self._pending = ([len(parts[i]) / total for i in live], [calls[i][0] for i in live])
            if self.allreduce == "driver":
                import ray

                mean = weighted_mean(self._get(self._pending[1]), self._pending[0])
                self._pending = ([1.0], [ray.put(mean)])
        else:
            stats = self._get([a.local_step.remote(p) for a, p in zip(self.actors, parts)])
            self._unsynced = [u + len(p) for u, p in zip(self._unsynced or [0] * len(parts),
                                                         parts)]
            if (self.step + 1) % self.sync_every == 0:
                self._average_weights(self._unsynced)
        wall = time.perf_counter() - start
        compute = max(s["compute_s"] for s in stats)
        apply_s = max(s["apply_s"] for s in stats)
        self.timings["steps"] += 1
        self.timings["wall"] += wall
        self.timings["compute"] += compute
        self.timings["apply"] += apply_s
        metrics.TRAIN_STEPS.inc()
        metrics.TRAIN_SAMPLES.inc(total)
        metrics.STEP_SECONDS.observe(wall)
        metrics.ALLREDUCE_SECONDS.observe(max(wall - compute - apply_s, 0.0))
        self._metric_totals = add_states([s["metrics"] for s in stats])
        logs = self._logs(add_states([self._base_metrics, self._metric_totals]))
        if not np.isfinite(logs.get("loss", 0.0)):
            raise NonFiniteLoss(f"non-finite loss ({logs['loss']}) at epoch {self.epoch + 1}, "
                                f"batch {self.step + 1}; training stopped, no checkpoint "
                                "holds the non-finite weights")
        return logs

    def _average_weights(self, counts: list[int]) -> None:
        """Local SGD: weights and slots := their mean weighted by samples since the last sync."""
        live = [i for i, c in enumerate(counts) if c]
        total = float(sum(counts[i] for i in live))
        refs = [self.actors[i].flat_state.remote() for i in live]
        shares = [counts[i] / total for i in live]
        self._get([a.average_state.remote(shares, *refs) for a in self.actors])
        self._unsynced = []

    # -- validation -------------------------------------------------------------------
    def _validate(self) -> dict:
        n = data_utils.num_samples(*self.val)
        bounds = np.linspace(0, n, self.n_replicas + 1).astype(int)
        states = self._get([a.evaluate.remote(int(lo), int(hi), self.validation_batch_size)
                            for a, lo, hi in zip(self.actors, bounds[:-1], bounds[1:])])
        logs = self._logs(add_states(states))
        return {"val_" + k: v for k, v in logs.items()}

    # -- the loop ---------------------------------------------------------------------
    def fit(self, callbacks=None):
        """Train (resuming from the newest checkpoint if any); returns the History."""
        errors = replica_errors()
        self.callbacks = list(callbacks or [])
        callback_list = CallbackList(
            self.callbacks, add_history=True, model=self.model, verbose=0,
            epochs=self.epochs, steps=self.iterator.num_batches)
        self.callbacks = callback_list.callbacks
        for cb in self.callbacks:
            if hasattr(cb, "trainer"):
                cb.trainer = self
        self._build_driver_metrics()
        self.model.stop_training = False
        callback_list.on_train_begin()
        try:
            while True:
                try:
                    self._start_replicas()
                    logs = self._train(callback_list)
                    break
                except errors as exc:
                    self.shutdown()
                    self.restarts += 1
                    self.generation += 1
                    metrics.JOB_RETRIES.inc()
                    if self.restarts > self.max_restarts:
                        raise RuntimeError(f"replicas died {self.restarts} times; last: "
                                           f"{exc}") from exc
                    log.warning("%s: a replica died (%s); restarting from the last "
                                "checkpoint (%d/%d)", self.name, type(exc).__name__,
                                self.restarts, self.max_restarts)
            callback_list.on_train_end(logs)
        finally:
            self.shutdown()
        return self.model.history

    def _train(self, callback_list) -> dict:
        start_epoch, start_step, stopped = self._restore()
        if self.resumed_from is None and self.checkpoint_dir is not None:
            self.epoch = start_epoch - 1
            self.save_checkpoint(epoch_end=True)  # the initial state, step 0
        logs: dict = {}
        if stopped:
            return logs
        for epoch in range(start_epoch, self.epochs):
            self.epoch = epoch
            self._epoch_rng = lamina_random.get_state()
            if epoch != start_epoch or not start_step:
                self._base_metrics = {}
            self._metric_totals = {}
            self.model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            self._push_state()
            self._get([a.begin_epoch.remote() for a in self.actors])
            batches = list(self.iterator.epoch())
            logs = {}
            for step, index in enumerate(batches):
                if epoch == start_epoch and step < start_step:
                    continue
                self.step = step
                callback_list.on_train_batch_begin(step)
                logs = self._run_step(index)
                try:
                    callback_list.on_train_batch_end(step, logs)
                except TrainingStopped as stop:
                    if stop.checkpoint:
                        self.step = step + 1
                        self.save_checkpoint(epoch_end=False)
                    raise
                if self.checkpoint_every and (step + 1) % self.checkpoint_every == 0 \
                        and step + 1 < len(batches):
                    self.step = step + 1
                    self.save_checkpoint(epoch_end=False)
                if self.model.stop_training:
                    break
            self.pull_state()
            if not logs and self._base_metrics:  # resumed after the epoch's last batch
                logs = self._logs(self._base_metrics)
            epoch_logs = dict(logs)
            if self.val is not None:
                epoch_logs.update(self._validate())
            callback_list.on_epoch_end(epoch, epoch_logs)
            logs = epoch_logs
            if self.model.stop_training:
                break
        return logs
