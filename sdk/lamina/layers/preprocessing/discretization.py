"""Discretization: bucket continuous values by boundaries (given, or learned by ``adapt``).

``adapt`` keeps Keras's approximate quantile summary: each batch is sorted and thinned to
about ``1/epsilon`` weighted points, summaries merge by re-compressing, and the
boundaries are the summary's interpolated ``1/num_bins`` quantiles.
"""

from __future__ import annotations

import numpy as np

from lamina.layers.preprocessing.data_layer import DataLayer, encode_categorical, encoded_shape


def summarize(values, epsilon):
    """A weighted quantile summary ``[[points], [weights]]`` of ``values``."""
    values = np.sort(np.reshape(values, [-1]))
    step = max(values.size / (1.0 / epsilon), 1)
    boundaries = values[int(step - 1)::int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def compress_summary(summary, epsilon):
    """Re-sample ``summary`` at the ``epsilon`` quantiles (if it has more points)."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_percents, summary[0])
    cum_weights = np.interp(percents, cum_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")


def merge_summaries(prev_summary, next_summary, epsilon):
    """Merge two summaries and compress the result."""
    merged = np.concatenate((prev_summary, next_summary), axis=1)
    merged = np.take(merged, np.argsort(merged[0]), axis=1)
    return compress_summary(merged, epsilon)


class Discretization(DataLayer):
    """Maps each value to the index of its bin (``bin_boundaries`` are right-open).

    Args:
        bin_boundaries: sorted boundaries; ``[0., 1.]`` gives bins ``(-inf, 0)``,
            ``[0, 1)``, ``[1, inf)``.
        num_bins: the number of bins to learn with :meth:`adapt` (instead of boundaries).
        epsilon: error tolerance of the learned quantiles (smaller: more memory).
        output_mode: ``"int"``, ``"one_hot"``, ``"multi_hot"`` or ``"count"``.
        sparse: must be False.
        dtype: dtype of encoded outputs.
        name: layer name.

    Input shape:
        Any float array.

    Output shape:
        Same (``"int"``, int32 indices), else with a last axis of ``len(boundaries) + 1``.

    Example:
        >>> import numpy as np
        >>> from lamina import layers
        >>> layers.Discretization(bin_boundaries=[0.0, 1.0])(np.array([-2.0, 0.5, 7.0])).numpy()
        array([0, 1, 2], dtype=int32)
    """

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
                 sparse=False, dtype=None, name=None):
        super().__init__(name=name, dtype=dtype)
        if sparse:
            raise ValueError("`sparse=True` is not supported: Lamina has no sparse tensors. "
                             f"Received: sparse={sparse}")
        if output_mode not in ("int", "one_hot", "multi_hot", "count"):
            raise ValueError("Unkown value for `output_mode`. Allowed values are: int, "
                             f"one_hot, multi_hot, count. Received: output_mode={output_mode}")
        if num_bins is not None and num_bins < 0:
            raise ValueError("`num_bins` must be greater than or equal to 0. "
                             f"Received: `num_bins={num_bins}`")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError("Both `num_bins` and `bin_boundaries` should not be set. "
                             f"Received: `num_bins={num_bins}` and "
                             f"`bin_boundaries={bin_boundaries}`")
        if num_bins is None and bin_boundaries is None:
            raise ValueError("You need to set either `num_bins` or `bin_boundaries`.")
        self.bin_boundaries = bin_boundaries
        self.num_bins = num_bins
        self.epsilon = epsilon
        self.output_mode = output_mode
        self.sparse = sparse
        self.summary = None if bin_boundaries else np.array([[], []], dtype="float32")
        self.built = True

    def adapt(self, data, steps=None):
        """Learn ``num_bins`` quantile boundaries from ``data`` (array or batch iterable).

        Raises:
            ValueError: if the layer was given ``bin_boundaries``.
        """
        if self.num_bins is None:
            raise ValueError("Cannot adapt a Discretization layer that has been initialized "
                             "with `bin_boundaries`, use `num_bins` instead.")
        self._adapt_batches(data, steps, columns=False)

    def update_state(self, data):
        """Merge one batch into the quantile summary."""
        data = np.array(self._np(data)).astype("float32")
        self.summary = merge_summaries(summarize(data, self.epsilon), self.summary,
                                       self.epsilon)

    def finalize_state(self):
        """Turn the summary into ``bin_boundaries``."""
        if self.num_bins is None:
            return
        self.bin_boundaries = compress_summary(self.summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def reset_state(self):
        """Forget the summary."""
        if self.num_bins is not None:
            self.summary = np.array([[], []], dtype="float32")

    def _depth(self):
        return len(self.bin_boundaries) + 1 if self.bin_boundaries is not None else self.num_bins

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError("You need to either pass the `bin_boundaries` argument at "
                             "construction time or call `adapt(dataset)` before you can start "
                             "using the `Discretization` layer.")
        values = self._np(inputs).astype(self.dtype if self.dtype.startswith("float")
                                         else "float32")
        indices = np.digitize(values, np.asarray(self.bin_boundaries, dtype=values.dtype))
        return self._tensor(encode_categorical(indices.astype("int32"), self.output_mode,
                                               self._depth(), dtype=self._output_dtype_name()))

    def _output_dtype_name(self):
        return self.dtype if self.output_mode != "int" else "int32"

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.output_mode in ("multi_hot", "count") and len(input_shape) >= 2:
            return (input_shape[0],) + input_shape[2:] + (self._depth(),)
        if self.output_mode == "one_hot" and len(input_shape) == 1:
            return input_shape + (self._depth(),)
        return encoded_shape(input_shape, self.output_mode, self._depth())

    def get_config(self):
        return {"bin_boundaries": self.bin_boundaries, "num_bins": self.num_bins,
                "epsilon": self.epsilon, "output_mode": self.output_mode,
                "sparse": self.sparse, "name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            boundaries = config.pop("bin_boundaries")
            layer = cls(**config)
            layer.bin_boundaries = boundaries
            return layer
        return cls(**config)
