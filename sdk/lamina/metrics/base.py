"""Metric base and the reducing metrics (Mean, Sum, MeanMetricWrapper).

Metrics are plain numpy (no autodiff): they accept arrays or Tensors and keep their state
as Python floats (float64 accumulation, so long epochs do not lose precision).
"""

from __future__ import annotations

import numpy as np


def to_numpy(x) -> np.ndarray:
    """Return ``x`` (array, Tensor, list, scalar) as an ndarray without copying arrays."""
    return np.asarray(getattr(x, "data", x))


def reduce_to_samplewise(values, sample_weight):
    """Apply ``sample_weight`` as Keras's ``reduce_to_samplewise_values`` does.

    Extra trailing dimensions of ``values`` are averaged away down to the weight's rank;
    the weight is then broadcast to ``values``.

    Returns:
        ``(weighted_values, weights)``; ``weights`` is None when ``sample_weight`` is None.
    """
    values = to_numpy(values)
    if sample_weight is None:
        return values, None
    weight = to_numpy(sample_weight).astype(np.float64)
    while weight.ndim > values.ndim and weight.shape[-1] == 1:
        weight = weight[..., 0]
    if weight.ndim == values.ndim + 1 and values.ndim >= 0:
        values = values[..., None]
    if weight.ndim < values.ndim:
        if weight.ndim >= 1 and values.shape[:weight.ndim] == weight.shape:
            axes = tuple(range(weight.ndim, values.ndim))
            values = values.mean(axis=axes)
    weight = np.broadcast_to(weight, values.shape)
    return values * weight, weight


class Metric:
    """Base class: ``update_state``, ``result`` and ``reset_state``.

    Args:
        name: the metric's name (its logs key).
        dtype: accepted for Keras compatibility (results are float).

    Attributes:
        _direction: ``"up"`` if larger is better, ``"down"`` if smaller is (used by
            ``EarlyStopping(mode="auto")``).
    """

    _direction = "up"

    def __init__(self, name=None, dtype=None):
        self.name = name or _snake(self.__class__.__name__)
        self.dtype = dtype or "float32"
        self._variables = []

    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum",
                     name=None):
        """Create a state variable (Keras 3's way for custom metrics to keep state).

        Args:
            shape: tuple of ints; ``()`` for a scalar.
            initializer: an initializer name or instance; zeros by default.
            dtype: dtype name; the metric's dtype by default.
            aggregation: accepted for compatibility (replicas sum additive states).
            name: short name of the variable.

        Returns:
            A non-trainable :class:`~lamina.backend.Variable`; update it with
            ``assign``/``assign_add``. The default :meth:`reset_state` sets it back to zeros.
        """
        from lamina import initializers
        from lamina.backend.tensor import Variable

        shape = tuple(int(d) for d in shape)
        dtype = dtype or self.dtype
        value = initializers.get(initializer)(shape, dtype=dtype)
        variable = Variable(value, trainable=False, name=name or "variable", dtype=dtype)
        variable.path = f"{self.name}/{variable.name}"
        if not hasattr(self, "_variables"):
            self._variables = []
        self._variables.append(variable)
        return variable

    def add_weight(self, shape=(), initializer="zeros", dtype=None, aggregation="sum",
                   name=None):
        """Same as :meth:`add_variable` (the Keras 2 name)."""
        return self.add_variable(shape, initializer, dtype, aggregation, name)

    @property
    def variables(self) -> list:
        """The state variables created with :meth:`add_variable`."""
        return list(getattr(self, "_variables", []))

    def update_state(self, *args, **kwargs):
        """Accumulate statistics from one batch."""
        raise NotImplementedError

    def result(self):
        """Return the metric's current value."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Clear the accumulated statistics: every state variable back to zeros."""
        variables = self.variables
        if not variables:
            raise NotImplementedError(
                f"Metric {type(self).__name__} keeps no variables (`add_variable`); "
                "override `reset_state()` to clear its state.")
        for variable in variables:
            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} name={self.name}>"


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z][a-z])|(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class Sum(Metric):
    """The (weighted) sum of the values passed to ``update_state(values, sample_weight)``."""

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self) -> None:
        self.total = 0.0

    def update_state(self, values, sample_weight=None):
        values, _ = reduce_to_samplewise(values, sample_weight)
        self.total += float(np.sum(values, dtype=np.float64))

    def result(self):
        return np.float32(self.total)


class Mean(Metric):
    """The (weighted) mean of the values passed to ``update_state(values, sample_weight)``."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        values, weight = reduce_to_samplewise(values, sample_weight)
        # The method, not np.sum: the same reduction without numpy's Python dispatch.
        self.total += float(values.sum(dtype=np.float64))
        self.count += float(values.size if weight is None else np.sum(weight))

    def result(self):
        return np.float32(self.total / self.count) if self.count else np.float32(0.0)


class MeanMetricWrapper(Mean):
    """Mean over batches of a per-sample function ``fn(y_true, y_pred, **kwargs)``.

    Args:
        fn: function returning per-sample values.
        name: metric name.
        dtype: accepted for compatibility.
        **kwargs: extra keyword arguments passed to ``fn``.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "mean_metric_wrapper"),
                         dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(to_numpy(y_true), to_numpy(y_pred), **self._fn_kwargs)
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self) -> dict:
        config = {"name": self.name, "dtype": self.dtype}
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
