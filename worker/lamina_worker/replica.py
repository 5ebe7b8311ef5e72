"""One model replica: the code a Ray actor runs (also usable in-process).

A replica holds a model built from the job's config through the safe
deserialiser, its optimizer and the job's data (passed once, as ObjectRefs the
actor resolves from the object store). The driver drives it step by step:

``step(index, weights, *grads)``
    first applies the averaged gradient of the previous step (``grads`` are the
    replicas' flat gradients in rank order, ``weights`` their shares of the global
    batch), then computes the flat gradient of the loss on the rows ``index`` of
    the training data. Returns ``(flat_gradient, stats)``; the driver passes the
    gradient refs on to every replica's next call, so gradients travel through
    the object store from replica to replica (allgather), never through the driver.
``finish(weights, *grads)``
    applies the last averaged gradient of an epoch (or of a stopped run).

Every replica sums the same arrays in the same (rank) order and applies the same
optimizer update, so the replicas stay bit-identical.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from lamina.backend import random as lamina_random
from lamina.backend.autodiff import gradients, no_grad
from lamina.models import data as data_utils


def weighted_mean(grads: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """``sum_i weights[i] * grads[i]`` in list order (deterministic, float32).

    Every replica (and the driver) calls this with the same arguments in the same
    order, so every one gets the same bits.
    """
    out = np.multiply(grads[0], np.float32(weights[0]))
    for grad, weight in zip(grads[1:], weights[1:]):
        out += np.multiply(grad, np.float32(weight))
    return out


def metric_state(metric) -> dict[str, Any]:
    """The additive state of a Lamina metric (floats and float arrays zeroed by a reset).

    Keras-style metrics accumulate sums (totals, counts, confusion-matrix counts), so
    the state of the union of two shards is the sum of their states. Attributes whose
    name mentions ``threshold`` are configuration, not state.
    """
    keys = getattr(metric, "_lamina_state_keys", None)
    if keys is None:
        keys = []
        for name, value in sorted(vars(metric).items()):
            if "threshold" in name or name.startswith("_"):
                continue
            if isinstance(value, float) or (
                    isinstance(value, np.ndarray) and value.dtype.kind == "f"):
                keys.append(name)
        metric._lamina_state_keys = keys
    return {k: np.array(getattr(metric, k)) if isinstance(getattr(metric, k), np.ndarray)
            else float(getattr(metric, k)) for k in keys}


def model_metrics_state(model) -> dict[str, Any]:
    """Loss tracker and compiled metric states of ``model``, by metric name."""
    out = {"loss": {"total": float(model._loss_tracker.total),
                    "count": float(model._loss_tracker.count)}}
    if model.compiled_metrics is not None:
        for metric in model.compiled_metrics.metrics:
            out[metric.name] = metric_state(metric)
    return out


def add_states(states: list[dict]) -> dict:
    """Sum metric states (``model_metrics_state`` dicts) in list order."""
    total: dict[str, dict] = {}
    for state in states:
        for name, fields in state.items():
            into = total.setdefault(name, {})
            for key, value in fields.items():
                into[key] = value if key not in into else into[key] + value
    return total


def build_model(model_config: dict, compile_config: dict):
    """The job's model through the safe deserialiser, compiled, optimizer built."""
    from lamina.models import model_from_config

    model = model_from_config(model_config, safe_mode=True)
    model.compile(**compile_config)
    model.optimizer.build(model.trainable_weights)
    return model


class Replica:
    """One replica of the job's model (see the module docstring).

    Args:
        model_config: the Keras JSON config of the model.
        compile_config: keyword arguments of ``model.compile``.
        rank: this replica's index (its own random stream is seeded ``seed + rank``).
        seed: the job's seed.
    """

    def __init__(self, model_config: dict, compile_config: dict, rank: int, seed: int) -> None:
        lamina_random.set_seed(int(seed) + 1000 * (rank + 1))
        self.rank = rank
        self.model = build_model(model_config, compile_config)
        self.variables = self.model.trainable_weights
        self._shapes = [v.data.shape for v in self.variables]
        self._sizes = [int(np.prod(s)) for s in self._shapes]
        self._offsets = np.concatenate([[0], np.cumsum(self._sizes)]).astype(int)
        self._train = None
        self._val = None

    # -- data and state -------------------------------------------------------------
    def ping(self) -> int:
        return self.rank

    def set_data(self, train, val=None) -> None:
        """Keep the training (and validation) ``(x, y, sample_weight)`` tuples."""
        self._train = train
        self._val = val

    def set_state(self, state: dict) -> None:
        """Assign weights, optimizer variables and (optionally) the random state."""
        for variable, value in zip(self.model.weights, state["weights"]):
            variable.assign(value)
        variables = self.model.optimizer.variables
        if len(variables) != len(state["optimizer"]):
            raise ValueError(f"optimizer state has {len(state['optimizer'])} variables, the "
                             f"replica's optimizer {len(variables)}")
        for variable, value in zip(variables, state["optimizer"]):
            variable.assign(value)
        rngs = state.get("replica_rng") or []
        if self.rank < len(rngs) and rngs[self.rank] is not None:
            lamina_random.set_state(rngs[self.rank])

    def get_state(self) -> dict:
        """Weights, optimizer variables and this replica's random state."""
        return {"weights": [np.array(v.data) for v in self.model.weights],
                "optimizer": [np.array(v.data) for v in self.model.optimizer.variables],
                "rng": lamina_random.get_state()}

    def flat_state(self) -> np.ndarray:
        """Trainable weights and float optimizer slots as one vector (local-SGD averaging)."""
        parts = [v.data.reshape(-1) for v in self.variables]
        parts += [v.data.reshape(-1) for v in self._float_slots()]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _float_slots(self) -> list:
        return [v for v in self.model.optimizer.variables[2:] if v.data.dtype.kind == "f"]

    def begin_epoch(self) -> None:
        """Reset the metric accumulators (each replica counts its own shard)."""
        self.model.reset_metrics()

    # -- synchronous steps ----------------------------------------------------------
    def _apply(self, weights: list[float], grads: tuple) -> float:
        if not grads:
            return 0.0
        start = time.perf_counter()
        mean = weighted_mean(list(grads), weights)
        views = [mean[a:b].reshape(s) for a, b, s in
                 zip(self._offsets[:-1], self._offsets[1:], self._shapes)]
        self.model.optimizer.apply(views, self.variables)
        return time.perf_counter() - start

    def _compute(self, index) -> tuple[np.ndarray, float]:
        model = self.model
        x, y, sample_weight = self._train
        n = len(index)
        if n == 0:
            return np.zeros(int(self._offsets[-1]), np.float32), 0.0
        batch = (data_utils.take(x, index), data_utils.take(y, index),
                 data_utils.take(sample_weight, index))
        model._clear_losses()
        y_pred = model(batch[0], training=True)
        loss = model.compute_loss(batch[0], batch[1], y_pred, batch[2], training=True)
        grads = gradients(loss, self.variables)
        flat = np.empty(int(self._offsets[-1]), np.float32)
        for grad, a, b in zip(grads, self._offsets[:-1], self._offsets[1:]):
            flat[a:b] = 0.0 if grad is None else np.asarray(grad).reshape(-1)
        model._update_metrics(loss, batch[1], y_pred, batch[2], batch[0])
        return flat, float(loss.data)

    def step(self, index, weights: list[float], *grads):
        """Apply the previous averaged gradient, then compute this step's gradient."""
        apply_s = self._apply(weights, grads)
        start = time.perf_counter()
        flat, loss = self._compute(index)
        stats = {"n": len(index), "loss": loss, "compute_s": time.perf_counter() - start,
                 "apply_s": apply_s, "metrics": model_metrics_state(self.model)}
        return flat, stats

    def finish(self, weights: list[float], *grads) -> float:
        """Apply the last averaged gradient; returns the time it took."""
        return self._apply(weights, grads)

    # -- local SGD (sync_every > 1) ----------------------------------------------------
    def local_step(self, index) -> dict:
        """Compute and apply this replica's own gradient (no communication)."""
        start = time.perf_counter()
        flat, loss = self._compute(index)
        compute_s = time.perf_counter() - start
        apply_s = self._apply([1.0], (flat,)) if len(index) else 0.0
        return {"n": len(index), "loss": loss, "compute_s": compute_s, "apply_s": apply_s,
                "metrics": model_metrics_state(self.model)}

    def average_state(self, weights: list[float], *states) -> None:
        """Replace weights and float slots by the weighted mean of every replica's."""
        mean = weighted_mean(list(states), weights)
        start = 0
        for variable in self.variables + self._float_slots():
            size = variable.data.size
            variable.assign(mean[start:start + size].reshape(variable.data.shape))
            start += size

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(self, start: int, stop: int, batch_size: int) -> dict:
        """Metric states of the validation rows ``[start, stop)`` (this replica's shard)."""
        model = self.model
        model.reset_metrics()
        x, y, sample_weight = self._val
        with no_grad():
            for lo in range(start, stop, batch_size):
                index = slice(lo, min(lo + batch_size, stop))
                model.test_step((data_utils.take(x, index), data_utils.take(y, index),
                                 data_utils.take(sample_weight, index)))
        state = model_metrics_state(model)
        model.reset_metrics()
        return state
