"""One replica of a job: the code a Ray actor runs (SPMD; also usable in-process).

Every replica runs the job's own training loop, ``Model.fit``, under a
:class:`lamina.distribute.DataParallel` strategy: it computes its slice of each global
batch and all-reduces the gradients with its peers before each update (see
:mod:`lamina.distribute`), through a shared-memory file when the replicas share the
driver's node, or a TCP ring when they do not (:mod:`lamina_worker.placement` chooses:
a ring replica first binds its endpoint, :meth:`Replica.listen`, and gets the ring's
addresses in rank order with :meth:`Replica.run`). The chief (rank 0) also runs the
job's callbacks (EarlyStopping, ReduceLROnPlateau, ...) on the global logs and, as its
last callback, a :class:`Relay` that

* hands the driver an event per batch (global logs, step time, exchange time), per
  epoch begin/end, and the checkpoint state at epoch ends and every
  ``checkpoint_every`` steps (weights, optimizer, the generator at the epoch's start,
  callback states, the epoch's metric accumulators);
* takes the driver's control requests (``cancel``, ``fenced``, ``preempt``): the run
  ends on every replica at the next exchange (``preempt`` first hands over a
  mid-epoch checkpoint).

The driver reads events with :meth:`Replica.poll`, which runs in the actor's
``control`` concurrency group (a second thread), so it never waits for a step.
"""

from __future__ import annotations

import collections
import gc
import hashlib
import math
import os
import threading
import time

import numpy as np

from lamina.backend import random as lamina_random
from lamina.backend import threads as lamina_threads
from lamina.callbacks.callback import Callback
from lamina.distribute import Aborted, CollectiveAborted, DataParallel, set_strategy
from lamina.distribute.shm import SharedMemoryCollective

#: Seconds a ring replica waits for its neighbours (set-up and each exchange), as long
#: as the shared-memory collective's default: a peer that dies fails the ring at once
#: (its connections drop), and the driver aborts it when Ray reports a lost peer.
RING_TIMEOUT = 600.0

#: The chief stops producing events (and so training) while this many are unread.
MAX_PENDING_EVENTS = 512
#: The driver's poll hands over batch and epoch-begin events at most this often (epoch
#: ends, checkpoints and the end wake it at once). Each poll is a Ray call into the
#: chief that takes the chief's GIL, on the CPUs the replicas train on: at every 50 ms,
#: the MLP's 2-replica all-reduce share was 9.0-12.5% (median 11.4%, 45-48k samples/s),
#: at every 250 ms 9.9-12.5% (median 10.0%, 47-59k). A live progress bar then moves 4
#: times a second. An epoch's begin is the next batch's news.
BATCH_EVENT_WAKE = 0.25
#: The events the poll hands over at most every BATCH_EVENT_WAKE seconds.
LAZY_EVENTS = frozenset({"batch", "epoch_begin"})


def build_model(model_config: dict, compile_config: dict):
    """The job's model through the safe deserialiser, compiled, optimizer built."""
    from lamina.models import model_from_config

    model = model_from_config(model_config, safe_mode=True)
    model.compile(**compile_config)
    model.optimizer.build(model.trainable_weights)
    return model


def model_state(model) -> dict:
    """Copies of the weights and optimizer variables."""
    return {"weights": [np.array(v.data) for v in model.weights],
            "optimizer": [np.array(v.data) for v in model.optimizer.variables]}


def digest(model) -> str:
    """sha256 of every weight and optimizer variable (replicas must agree bit for bit)."""
    h = hashlib.sha256()
    for v in list(model.weights) + list(model.optimizer.variables):
        h.update(np.ascontiguousarray(v.data).tobytes())
    return h.hexdigest()


def assign_state(model, state: dict) -> None:
    """Assign weights and optimizer variables saved by :func:`model_state`."""
    for variable, value in zip(model.weights, state["weights"]):
        variable.assign(value)
    variables = model.optimizer.variables
    if len(variables) != len(state["optimizer"]):
        raise ValueError(f"optimizer state has {len(state['optimizer'])} variables, the "
                         f"model's optimizer {len(variables)}")
    for variable, value in zip(variables, state["optimizer"]):
        variable.assign(value)


class Digest(Callback):
    """First callback of every replica: the weights' digest when training ends, before
    any callback (EarlyStopping's ``restore_best_weights``) changes the chief's."""

    value = None

    def on_train_end(self, logs=None):
        self.value = digest(self.model)


class Relay(Callback):
    """The chief's last callback: events to the driver, control from it (module doc)."""

    def __init__(self, replica: Replica, job_callbacks: list, checkpoint_every: int) -> None:
        super().__init__()
        self.replica, self.job_callbacks = replica, job_callbacks
        self.checkpoint_every = checkpoint_every
        self.epoch = 0
        self._epoch_rng = None
        self._last = None
        self._epoch_start = 0.0
        self._samples = 0

    def _strategy(self) -> DataParallel:
        return self.replica.strategy

    def _state(self, epoch: int, step: int, rng_state, metrics) -> dict:
        from lamina_worker import checkpoint as ckpt

        return {**model_state(self.model), "epoch": epoch, "step": step,
                "rng_state": rng_state, "callbacks": ckpt.callback_states(self.job_callbacks),
                "metrics": metrics, "stopped": bool(self.model.stop_training)}

    def _control(self, step: int | None) -> None:
        """Act on the driver's request after batch ``step - 1`` (None: at an epoch end,
        whose event already carries the checkpoint state)."""
        request = self.replica.control
        strategy = self._strategy()
        if request is None or strategy.abort_reason is not None:
            return
        if request == "preempt" and step is not None:
            if step == (self.params or {}).get("steps"):
                return  # the epoch's end comes next: stop after it, not before
            metrics = strategy.global_metric_state()
            self.replica.emit({"type": "checkpoint", "state": self._state(
                self.epoch, step, self._epoch_rng,
                None if metrics is None else metrics.tolist())})
        strategy.abort(request)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._epoch_rng = lamina_random.get_state()  # it draws this epoch's shuffle next
        self._epoch_start = time.perf_counter()
        self._last = self._epoch_start
        self._samples = 0
        self.replica.emit({"type": "epoch_begin", "epoch": epoch})

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        strategy = self._strategy()
        self._samples += strategy.step_samples
        logs = dict(logs or {})
        self.replica.emit({"type": "batch", "epoch": self.epoch, "batch": batch,
                           "logs": logs, "samples": strategy.step_samples,
                           "step_s": now - self._last,
                           "exchange_s": strategy.exchange_seconds})
        self._last = now
        if not np.isfinite(logs.get("loss", 0.0)):
            self.replica.emit({"type": "nonfinite", "epoch": self.epoch, "batch": batch,
                               "loss": logs["loss"]})
            strategy.abort("nonfinite")
            return
        steps = (self.params or {}).get("steps")
        if self.checkpoint_every and (batch + 1) % self.checkpoint_every == 0 \
                and (steps is None or batch + 1 < steps):
            metrics = strategy.global_metric_state()
            self.replica.emit({"type": "checkpoint", "state": self._state(
                self.epoch, batch + 1, self._epoch_rng,
                None if metrics is None else metrics.tolist())})
        self._control(batch + 1)
        self.replica.wait_for_reader()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._epoch_start
        state = self._state(epoch + 1, 0, lamina_random.get_state(), None)
        self.replica.emit({"type": "epoch_end", "epoch": epoch, "logs": dict(logs or {}),
                           "seconds": seconds, "samples": self._samples, "state": state})
        self._control(None)


class Replica:
    """One replica of a job's model (see the module docstring).

    Args:
        job: ``model_config``, ``compile_config``, ``seed``, ``rank``, ``world``,
            ``collective`` (``{"transport": "shm", "path": <the shared-memory file>}``
            or ``{"transport": "ring", "n": <floats>, "m": <meta floats>}``), ``fit``
            (keyword arguments of ``fit``: epochs, batch_size, shuffle,
            validation_batch_size),
            ``callbacks`` (the job spec's allowlisted callbacks, chief only),
            ``folder`` (their files), ``checkpoint_every`` and ``cpus`` (the actor's
            ``num_cpus``, or None in-process: see :func:`use_cpus`).
    """

    def __init__(self, job: dict) -> None:
        self.job = job
        self.rank = int(job["rank"])
        self.model = None
        self.strategy: DataParallel | None = None
        self.control: str | None = None
        self._events: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._returned = 0.0  # when poll last returned
        self._urgent = False  # an event that wakes the poll at once is pending
        self._endpoint = None  # the ring's listening socket (listen, before run)

    def ping(self) -> int:
        return self.rank

    def pid(self) -> int:
        """The actor's process id (operators and fault-injection tests signal it)."""
        return os.getpid()

    def listen(self, host: str | None = None) -> list:
        """Bind this replica's ring endpoint (before :meth:`run`); returns its
        ``[host, port]`` for the driver to hand out.

        Args:
            host: the address peers connect to (None: this Ray node's address, or
                loopback outside Ray).
        """
        from lamina.distribute import ring

        if host is None:
            try:
                import ray

                host = ray.util.get_node_ip_address()
            except Exception:  # noqa: BLE001 - not in a Ray worker: in-process use
                host = "127.0.0.1"
        self._endpoint = ring.listen(host)
        return list(self._endpoint.address)

    def _collective(self, peers: list | None):
        spec = self.job["collective"]
        if spec["transport"] == "shm":
            return SharedMemoryCollective(spec["path"], self.rank)
        from lamina.distribute import ring

        if self._endpoint is None or peers is None:
            raise ValueError("a ring replica needs listen() before run(..., peers)")
        endpoint, self._endpoint = self._endpoint, None  # the collective owns it now
        try:
            return ring.RingCollective(endpoint, [tuple(a) for a in peers], self.rank,
                                       int(spec["n"]), int(spec["m"]), timeout=RING_TIMEOUT)
        except (ConnectionError, TimeoutError) as exc:
            raise CollectiveAborted(f"rank {self.rank}: ring set-up failed: {exc}") from exc

    # -- events (control concurrency group) ------------------------------------------------
    def emit(self, event: dict) -> None:
        """Queue an event for the driver's poll: at once for all but the frequent
        :data:`LAZY_EVENTS`, which :meth:`poll` hands over at most every
        :data:`BATCH_EVENT_WAKE` s (a Ray call per step would cost the step time)."""
        now = time.monotonic()
        with self._cond:
            self._events.append(event)
            if event["type"] not in LAZY_EVENTS:
                self._urgent = True
                self._cond.notify_all()
            elif now - self._returned >= BATCH_EVENT_WAKE:
                self._cond.notify_all()

    def wait_for_reader(self) -> None:
        """Block while the driver is :data:`MAX_PENDING_EVENTS` events behind (paused)."""
        with self._cond:
            while len(self._events) > MAX_PENDING_EVENTS and self.control is None:
                self._cond.wait(0.5)

    def poll(self, control: str | None = None, timeout: float = 0.2) -> list[dict]:
        """Take a control request (kept until the run ends) and return the pending
        events: at once when one of them is not lazy (:data:`LAZY_EVENTS`), else once
        :data:`BATCH_EVENT_WAKE` s have passed since the last poll returned; after
        ``timeout`` seconds at most (with what is pending, maybe nothing).

        A poll that found batch events pending used to return them at once: the
        driver, calling again as soon as it had handled them, polled 13-15 times a
        second on the MLP's 0.25 s epochs, each a Ray call into the chief.
        """
        with self._cond:
            if control is not None and self.control is None:
                self.control = control
            deadline = time.monotonic() + timeout
            while True:
                now = time.monotonic()
                due = self._returned + BATCH_EVENT_WAKE
                if self._urgent or (self._events and now >= due) or now >= deadline:
                    break
                self._cond.wait((min(due, deadline) if self._events else deadline) - now)
            events = list(self._events)
            self._events.clear()
            self._urgent = False
            self._returned = time.monotonic()
            self._cond.notify_all()
        return events

    # -- the run --------------------------------------------------------------------------
    @staticmethod
    def use_cpus(cpus) -> None:
        """Hold Lamina's threads to the CPUs Ray gave this actor (at least one).

        Ray tells an actor its CPUs through ``OMP_NUM_THREADS``, which it sets in the
        actor's process only once the actor is placed there, after the worker process
        imported numpy: OpenBLAS read its thread count (the machine's cores) at that
        import. Lamina's pool takes that count as the cap its user chose
        (:func:`lamina.backend.blas_threads.usable_threads`), so a one-CPU replica ran a
        pool worker and, taking the second core for granted, reduced its gradients in
        buckets on a second thread (:func:`lamina.distribute.buckets.overlap_pays`),
        on the core its peer trains on. The policy says it instead. (Lamina's first use
        in a process also caps its threads at the environment's count,
        :func:`lamina.backend.blas_threads.environment_threads`; this holds too where
        Lamina ran in the worker process before Ray set the variable.)
        """
        if cpus is not None:
            lamina_threads.set_thread_policy(max(1, math.floor(float(cpus))))

    def run(self, train: tuple, val: tuple | None, state: dict | None,
            peers: list | None = None) -> dict:
        """Run ``fit`` from ``state`` (a checkpoint's, or None for a fresh start).

        Args:
            train, val: the job's arrays.
            state: a checkpoint's state, or None.
            peers: every rank's ring address in rank order (ring transport only).

        Returns:
            ``{"rank", "digest", "aborted", "collective_failed", "ran_with"}``
            (``collective_failed``: the all-reduce itself failed, a peer died or was
            lost, not a control request; ``ran_with``: ``{"threads", "bucket_cap_mb"}``,
            the threads Lamina ran on and the bucket size the strategy chose) and, from
            the chief, the final ``weights`` and ``optimizer``.
        """
        from lamina_worker import checkpoint as ckpt
        from lamina_worker.spec import build_callbacks

        job = self.job
        self.use_cpus(job.get("cpus"))
        lamina_random.set_seed(int(job["seed"]))
        model = self.model = build_model(job["model_config"], job["compile_config"])
        resume_at, base_metrics, initial_epoch = None, None, int(job.get("initial_epoch", 0))
        if state is None and job.get("initial_weights") is not None:
            from lamina_worker.spec import assign_initial_weights

            assign_initial_weights(model, job["initial_weights"])
        if state is not None:
            assign_state(model, state)
            lamina_random.set_state(state["rng_state"])
            initial_epoch = int(state["epoch"])
            if state["step"]:
                resume_at = (initial_epoch, int(state["step"]))
                if state.get("metrics") is not None:
                    base_metrics = np.asarray(state["metrics"], np.float64)
        try:
            collective = self._collective(peers)
        except CollectiveAborted as exc:
            if self.rank == 0:
                self.emit({"type": "done", "aborted": str(exc)})
            return {"rank": self.rank, "digest": digest(model), "aborted": str(exc),
                    "collective_failed": True}
        self.strategy = DataParallel(collective, resume_at=resume_at,
                                     base_metrics=base_metrics)
        final = Digest()
        callbacks = []
        if self.rank == 0:
            callbacks = build_callbacks({"callbacks": job.get("callbacks") or []},
                                        job["folder"])
            if state is not None:
                ckpt.restore_callbacks(callbacks, state.get("callbacks") or [])
            callbacks = [*callbacks, Relay(self, callbacks, int(job.get("checkpoint_every")
                                                                or 0))]
        callbacks = [final, *callbacks]
        x, y, sample_weight = train
        fit = dict(job["fit"])
        aborted, failed = None, False
        set_strategy(self.strategy)
        # What the process holds by now (its modules, Ray's and numba's, the model) lives
        # as long as the run: frozen, a full collection no longer walks it. Unfrozen, each
        # replica's first one (~45-50 ms on the MLP, in its second epoch) stalled its
        # peer at the next exchange: ~95 ms an MLP job lost, 2026-12-06. A process that
        # froze objects itself is left as it is (unfreezing would give back its own).
        froze = gc.get_freeze_count() == 0
        if froze:
            gc.collect()
            gc.freeze()
        try:
            if state is not None and state.get("stopped"):
                model.stop_training = True
            else:
                model.fit(x, y, sample_weight=sample_weight, verbose=0, callbacks=callbacks,
                          validation_data=val if self.rank == 0 else None,
                          initial_epoch=initial_epoch, **fit)
        except (Aborted, CollectiveAborted) as exc:
            aborted = self.strategy.abort_reason or str(exc) or "aborted"
            failed = isinstance(exc, CollectiveAborted) and self.strategy.abort_reason is None
        finally:
            if froze:
                gc.unfreeze()
            set_strategy(None)
            collective.close()
        out = {"rank": self.rank, "digest": final.value or digest(model), "aborted": aborted,
               "collective_failed": failed,
               "ran_with": {"threads": lamina_threads.worker_count() + 1,
                            "bucket_cap_mb": self.strategy.bucket_cap_mb}}
        if self.rank == 0:
            out.update(model_state(model))
            self.emit({"type": "done", "aborted": aborted})
        return out
