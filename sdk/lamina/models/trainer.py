"""The training API shared by every model: compile, fit, evaluate, predict.

One step is ``train_step``: forward, loss (plus regularisation losses), gradients
by reverse-mode autodiff, optimizer update, metric update. Callbacks are the only
way to extend the loop (``lamina.callbacks``).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from lamina import ops
from lamina.backend import interrupts
from lamina.backend.autodiff import gradient_destinations, gradients, no_grad
from lamina.backend.memory import keep_freed_memory
from lamina.backend.random import get_rng
from lamina.backend.tensor import Tensor
from lamina.distribute import get_strategy
from lamina.distribute.strategy import Strategy
from lamina.layers.symbolic import flatten, map_structure
from lamina.models import data as data_utils
from lamina.models import data_adapters
from lamina.models.compile_utils import CompileLoss, CompileMetrics, LossTracker, pythonify


class Trainer:
    """Mixin with Keras's training methods; ``Model`` inherits it."""

    def __init__(self):
        self._compiled = False
        self.optimizer = None
        self.compiled_loss = None
        self.compiled_metrics = None
        self.stop_training = False
        self.history = None
        self._loss_tracker = LossTracker()

    # -- compile ---------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Configure the model for training.

        Args:
            optimizer: name (``"adam"``), config dict or optimizer instance.
            loss: name, function, ``Loss`` instance, or a list/dict with one per output.
            loss_weights: optional list/dict of scalar weights of the per-output losses.
            metrics: list of metric names/instances (or a list/dict per output).
            weighted_metrics: metrics that also take ``sample_weight``.

        Raises:
            ValueError: for an unknown optimizer, loss or metric name (naming it).
        """
        from lamina import optimizers

        self.optimizer = optimizers.get(optimizer)
        names = self._output_names()
        self.compiled_loss = CompileLoss(loss, loss_weights, names) if loss is not None else None
        self.compiled_metrics = CompileMetrics(metrics, weighted_metrics, names)
        if metrics is not None:
            # Resolve names now so that a typo fails at compile, not mid-fit.
            from lamina import metrics as metrics_module

            for item in flatten(metrics):
                if isinstance(item, str) and item not in ("accuracy", "acc"):
                    metrics_module.get(item)
        self._compile_config = {
            "optimizer": optimizer if isinstance(optimizer, str) else None, "loss": loss,
            "loss_weights": loss_weights, "metrics": metrics, "weighted_metrics": weighted_metrics,
        }
        self._compiled = True
        self.stop_training = False

    def get_compile_config(self):
        """The ``compile`` arguments as a serialisable dict (``None`` if not compiled)."""
        if not self._compiled:
            return None
        from lamina.saving.compile_config import compile_config

        return compile_config(self)

    def compile_from_config(self, config):
        """Compile from what :meth:`get_compile_config` returned."""
        from lamina.saving.compile_config import compile_from_config

        compile_from_config(self, config)

    @property
    def compiled(self) -> bool:
        return self._compiled

    def _output_names(self):
        names = getattr(self, "output_names", None)
        if names and len(getattr(self, "outputs", [])) > 1:
            return list(names)
        return ["output"]

    def _require_compiled(self, what: str):
        if not self._compiled:
            raise RuntimeError(f"You must call `compile()` before using `{what}()` on "
                               f"model '{self.name}'.")

    @property
    def metrics(self) -> list:
        """Keras 3's list: the loss tracker, the compiled metrics' container
        (``compile_metrics``, whose ``result()`` is a dict), then the ``Metric`` objects
        assigned as attributes of the model and its layers."""
        out = [self._loss_tracker] if self._compiled else []
        if self.compiled_metrics is not None and any(
                spec is not None for spec in self.compiled_metrics.specs):
            out.append(self.compiled_metrics)
        if self.compiled_loss is not None:
            out.extend(self.compiled_loss.metrics)
        return out + self._tracked_metrics()

    @property
    def metrics_names(self) -> list:
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        """Reset every metric of ``metrics`` (``fit`` does at each epoch's start)."""
        self._loss_tracker.reset_state()
        if self.compiled_metrics is not None:
            self.compiled_metrics.reset_state()
        for metric in self.metrics:
            metric.reset_state()

    # -- one step ----------------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Compiled loss plus the model's regularisation losses, as a scalar Tensor."""
        loss = None
        if self.compiled_loss is not None and y is not None:
            loss, _ = self.compiled_loss(y, y_pred, sample_weight)
        extra = self.losses
        if extra:
            total = extra[0]
            for term in extra[1:]:
                total = ops.add(total, term)
            loss = total if loss is None else ops.add(loss, total)
        if loss is None:
            raise ValueError("No loss to compute: pass `loss` to `compile()` or add losses "
                             "with `add_loss()` in a layer.")
        return loss

    def train_step(self, data):
        """Forward, loss, gradients, optimizer update and metric update for one batch.

        Override it to customise ``fit`` (Keras 3's pattern, with Lamina's gradients)::

            def train_step(self, data):
                x, y = data  # (x, y, sample_weight) when fit got sample weights
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
                grads = keras.backend.gradients(loss, self.trainable_variables)
                self.optimizer.apply(grads, self.trainable_variables)
                for metric in self.metrics:
                    if metric.name == "loss":
                        metric.update_state(loss)
                    else:
                        metric.update_state(y, y_pred)
                return {m.name: m.result() for m in self.metrics}

        Args:
            data: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, as Keras packs
                a batch (``keras.utils.unpack_x_y_sample_weight`` takes it apart).

        Returns:
            A dict of logs; values may be Tensors or nested dicts (flattened by ``fit``).
        """
        x, y, sample_weight = data_utils.unpack_x_y_sample_weight(data)
        strategy = get_strategy()
        variables = self.trainable_weights
        if strategy.world_size > 1 and flatten(x)[0].shape[0] == 0:
            # This replica's part of a short last batch is empty (fewer samples than
            # replicas): it adds nothing to the gradients or the metrics, and still
            # takes part in the step's exchange and update.
            grads = [np.zeros_like(v.data) for v in variables]
            logs = self.get_metrics_result()
        else:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight, training=True)
            local = type(strategy) is Strategy or strategy.world_size == 1
            # One process (or one replica: nothing to exchange): backward writes the
            # gradients into the optimizer's flat buffer when its update reads them
            # there (no copy; the same bits).
            views = self.optimizer.gradient_views(variables) if local and hasattr(
                self.optimizer, "gradient_views") else None
            with gradient_destinations(views) if views else contextlib.nullcontext():
                grads = gradients(loss, variables)
            # Metrics first (they read y_pred and loss only): a replica's reduction
            # carries them with the gradients (lamina.distribute).
            logs = self._update_metrics(loss, y, y_pred, sample_weight, x)
        grads = strategy.reduce_gradients(self, grads)
        if grads is not None:  # None: the chief stopped training; skip this update
            self.optimizer.apply(grads, variables)
        return logs

    def test_step(self, data):
        x, y, sample_weight = data_utils.unpack_x_y_sample_weight(data)
        with no_grad():
            y_pred = self(x, training=False)
            loss = self.compute_loss(x, y, y_pred, sample_weight, training=False)
        return self._update_metrics(loss, y, y_pred, sample_weight, x)

    def predict_step(self, data):
        x, _, _ = data_utils.unpack_x_y_sample_weight(data)
        with no_grad():
            return self(x, training=False)

    def _update_metrics(self, loss, y, y_pred, sample_weight, x):
        value = float(loss.data)
        if not math.isfinite(value):
            self._last_nonfinite = True
        batch = flatten(x)[0].shape[0]
        self._loss_tracker.update_state(value, batch)
        if self.compiled_metrics is not None and y is not None:
            self.compiled_metrics.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    def _get_metrics_result_or_logs(self, logs) -> dict:
        # A custom test_step may log keys that are not metrics: then its logs stand.
        metric_logs = self.get_metrics_result()
        if not logs or set(logs) == set(metric_logs):
            return metric_logs
        return logs

    def get_metrics_result(self) -> dict:
        """The current result of every metric of ``metrics``, as Python floats."""
        logs = {}
        for metric in self.metrics:
            result = metric.result()
            if isinstance(result, dict):
                logs.update(result)
            else:
                logs[metric.name] = result
        return pythonify(logs)

    # -- data --------------------------------------------------------------------------
    def _prepare(self, x, y, sample_weight, check=True):
        x = data_utils.standardize(x)
        y = data_utils.standardize(y)
        sample_weight = data_utils.standardize(sample_weight)
        n = data_utils.num_samples(x, y, sample_weight)
        if check:
            data_utils.check_finite(x, "x")
            data_utils.check_finite(y, "y")
        return x, y, sample_weight, n

    def _epoch_iterator(self, x, y, sample_weight, batch_size, steps, check=True):
        """Batches of one pass for ``evaluate``/``predict``: arrays in order, or a source.

        ``keras.config.set_max_steps_per_epoch`` caps these passes too, as in Keras.
        """
        steps = _capped(1, steps)[1]
        if data_adapters.is_array_data(x):
            x, y, sample_weight, n = self._prepare(x, y, sample_weight, check=check)
            return data_adapters.EpochIterator(data_adapters.ArrayAdapter(
                x, y, sample_weight, n, batch_size, steps=steps))
        _refuse_with_batches(x, y=y, sample_weight=sample_weight)
        return data_adapters.EpochIterator(data_adapters.get_adapter(x), steps)

    @staticmethod
    def _batch_size(batch_size, what="batch_size"):
        if batch_size is None:
            return 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"`{what}` must be a positive integer. Received: "
                             f"{what}={batch_size!r}")
        return int(batch_size)

    # -- fit ---------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train the model for a number of epochs; returns a ``History``.

        ``x`` is arrays (a list or dict of them for several inputs, with ``y``), a
        ``keras.utils.PyDataset``, a generator or iterator of batches, or any iterable of
        batches (``tf.data``-like, ``DataLoader``-like); batches are ``(x,)``, ``(x, y)``
        or ``(x, y, sample_weight)``.

        Semantics follow Keras exactly: ``epochs`` is the final epoch index;
        ``validation_split`` takes the last fraction before shuffling; ``verbose``
        is 0 (silent), 1 (progress bar) or 2 (one line per epoch).

        Raises:
            RuntimeError: if the model is not compiled.
            ValueError: for mismatched lengths, NaN/inf in the data, or bad arguments.
        """
        from lamina.callbacks.callback_list import CallbackList

        self._require_compiled("fit")
        keep_freed_memory()
        batch_size = self._batch_size(batch_size)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(
                f"`epochs` must be a non-negative integer. Received: epochs={epochs!r}")
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"`shuffle` must be True, False or 'batch'. Received: "
                             f"shuffle={shuffle!r}")
        epochs, steps_per_epoch = _capped(epochs, steps_per_epoch)
        if data_adapters.is_array_data(x):
            x, y, sample_weight, n = self._prepare(x, y, sample_weight)
            if validation_data is None and validation_split:
                (x, y, sample_weight), (vx, vy, vsw) = data_utils.train_validation_split(
                    (x, y, sample_weight), validation_split)
                validation_data = (vx, vy, vsw)
                n = data_utils.num_samples(x, y, sample_weight)
            if class_weight is not None:
                cw = data_utils.class_weight_to_sample_weight(y, class_weight)
                sample_weight = cw if sample_weight is None else sample_weight * cw
            adapter = data_adapters.ArrayAdapter(x, y, sample_weight, n, batch_size, shuffle,
                                                 get_rng(), steps_per_epoch)
            iterator = data_adapters.EpochIterator(adapter)
        else:
            _refuse_with_batches(x, y=y, sample_weight=sample_weight,
                                 validation_split=validation_split)
            iterator = data_adapters.EpochIterator(
                data_adapters.get_adapter(x, shuffle, class_weight, get_rng()), steps_per_epoch)
        if validation_data is not None and data_adapters.is_array_data(validation_data):
            validation_data = data_utils.unpack(validation_data)
        else:
            validation_data = (validation_data, None, None) if validation_data is not None \
                else None
        verbose = 1 if verbose == "auto" else int(verbose)
        callback_list = CallbackList(
            callbacks, add_history=True, add_progbar=verbose != 0, model=self, verbose=verbose,
            epochs=epochs, steps=iterator.num_batches)
        self.stop_training = False
        self._eval_cache = None
        callback_list.on_train_begin()
        epoch_logs = {}
        initial_epoch = getattr(self, "_initial_epoch", None) or initial_epoch
        self._initial_epoch = None
        strategy = get_strategy()  # one process, or one SPMD replica (lamina.distribute)
        with interrupts.watch(), contextlib.closing(iterator):
            for epoch in range(initial_epoch, epochs):
                self.reset_metrics()
                callback_list.on_epoch_begin(epoch)
                strategy.sync(self)
                logs = {}
                for step, batch in strategy.batches(self, iterator, epoch):
                    callback_list.on_train_batch_begin(step)
                    logs = strategy.reduce_logs(self, pythonify(self.train_step(batch)))
                    callback_list.on_train_batch_end(step, logs)
                    interrupts.check()
                    if strategy.stop_requested(self):
                        break
                if iterator.exhausted:
                    self.stop_training = True
                    break
                epoch_logs = dict(logs)
                if validation_data is not None and _should_eval(epoch, validation_freq):
                    val_logs = self.evaluate(
                        validation_data[0], validation_data[1], sample_weight=validation_data[2],
                        batch_size=validation_batch_size or batch_size, steps=validation_steps,
                        verbose=0, return_dict=True, callbacks=callback_list, _internal=True)
                    epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
                callback_list.on_epoch_end(epoch, epoch_logs)
                strategy.sync(self)
                if self.stop_training:
                    break
        callback_list.on_train_end(epoch_logs)
        return self.history

    # -- evaluate / predict -------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, _internal=False, **kwargs):
        """Loss and metrics on the data; a scalar, a list, or a dict (``return_dict``)."""
        from lamina.callbacks.callback_list import CallbackList

        self._require_compiled("evaluate")
        batch_size = self._batch_size(batch_size)
        iterator = self._epoch_iterator(x, y, sample_weight, batch_size, steps,
                                        check=not _internal)
        verbose = 1 if verbose == "auto" else int(verbose)
        if isinstance(callbacks, CallbackList):
            # Validation inside fit: the fit's callbacks see on_test_* hooks, as in Keras.
            callback_list = callbacks
        else:
            callback_list = CallbackList(callbacks, add_progbar=verbose != 0, model=self,
                                         verbose=verbose, epochs=1, steps=iterator.num_batches)
        self.reset_metrics()
        callback_list.on_test_begin()
        logs = {}
        with interrupts.watch(), contextlib.closing(iterator):
            for step, batch in iterator.epoch():
                callback_list.on_test_batch_begin(step)
                logs = pythonify(self.test_step(batch))
                callback_list.on_test_batch_end(step, logs)
                interrupts.check()
        logs = self._get_metrics_result_or_logs(logs)
        callback_list.on_test_end(logs)
        if return_dict:
            return logs
        return self._flatten_in_order(logs)

    def _flatten_in_order(self, logs):
        """Log values as ``evaluate`` returns them in Keras: the metrics of ``metrics``
        in order (loss, per-output losses, ...), then the remaining keys sorted."""
        names = [m.name for m in self.metrics]
        values = [logs[n] for n in names if n in logs]
        values += [logs[k] for k in sorted(logs) if k not in names]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for ``x``, computed in batches, as ndarrays."""
        from lamina.callbacks.callback_list import CallbackList

        batch_size = self._batch_size(batch_size)
        iterator = self._epoch_iterator(x, None, None, batch_size, steps, check=False)
        verbose = 1 if verbose == "auto" else int(verbose)
        callback_list = CallbackList(callbacks, add_progbar=verbose != 0, model=self,
                                     verbose=verbose, epochs=1, steps=iterator.num_batches)
        callback_list.on_predict_begin()
        outputs = []
        with interrupts.watch(), contextlib.closing(iterator):
            for step, batch in iterator.epoch():
                callback_list.on_predict_batch_begin(step)
                x_batch = data_utils.unpack_x_y_sample_weight(batch)[0]
                out = self.predict_step((x_batch,))
                outputs.append(map_structure(lambda t: t.data if isinstance(t, Tensor) else t,
                                             out))
                callback_list.on_predict_batch_end(step, {"outputs": outputs[-1]})
                interrupts.check()
        callback_list.on_predict_end()
        if not outputs:
            raise ValueError("Unexpected result of `predict()`: no batch was run.")
        first = outputs[0]
        if isinstance(first, np.ndarray):
            return np.concatenate(outputs, axis=0)
        return _concat_structures(outputs)

    # -- single batches -------------------------------------------------------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on one batch; returns the loss/metrics of that batch."""
        self._require_compiled("train_on_batch")
        keep_freed_memory()
        x, y, sample_weight, _ = self._prepare(x, y, sample_weight)
        if class_weight is not None:
            cw = data_utils.class_weight_to_sample_weight(y, class_weight)
            sample_weight = cw if sample_weight is None else sample_weight * cw
        self.reset_metrics()
        logs = pythonify(self.train_step(data_utils.pack_x_y_sample_weight(x, y, sample_weight)))
        return logs if return_dict else self._flatten_in_order(logs)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        x, y, sample_weight, _ = self._prepare(x, y, sample_weight)
        self.reset_metrics()
        logs = pythonify(self.test_step(data_utils.pack_x_y_sample_weight(x, y, sample_weight)))
        return logs if return_dict else self._flatten_in_order(logs)

    def predict_on_batch(self, x):
        out = self.predict_step((data_utils.standardize(x),))
        return map_structure(lambda t: t.data if isinstance(t, Tensor) else t, out)


def _refuse_with_batches(x, **arguments):
    """Arguments that only arrays take, refused for a source of batches (as Keras does)."""
    for name, value in arguments.items():
        if value is None or (isinstance(value, (int, float)) and not value):
            continue
        shown = f"an array of shape {np.shape(value)}" if hasattr(value, "shape") else repr(value)
        raise ValueError(
            f"`{name}` is only supported when `x` is arrays; the data here is a "
            f"{type(x).__name__} that yields batches, which carry their own {name} "
            f"(or none). Received: {name}={shown}")


def _concat_structures(outputs):
    first = outputs[0]
    if isinstance(first, dict):
        return {k: np.concatenate([o[k] for o in outputs]) for k in first}
    return [np.concatenate([o[i] for o in outputs]) for i in range(len(first))]


def _should_eval(epoch: int, validation_freq) -> bool:
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return (epoch + 1) in validation_freq


def _capped(epochs, steps_per_epoch):
    """``keras.config.set_max_epochs``/``set_max_steps_per_epoch`` applied to one fit."""
    from lamina import config

    if config.max_epochs() is not None:
        epochs = min(epochs, config.max_epochs())
    cap = config.max_steps_per_epoch()
    if cap is not None:
        steps_per_epoch = cap if steps_per_epoch is None else min(steps_per_epoch, cap)
    return epochs, steps_per_epoch
