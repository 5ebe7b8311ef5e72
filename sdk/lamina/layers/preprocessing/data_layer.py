"""Shared pieces of the non-differentiable preprocessing layers (lookup, hashing, text).

These layers take strings or integers and return integer indices or encodings; they
have no gradient, so they compute on numpy arrays and return constant tensors. Their
symbolic outputs carry the right dtype (``int64`` indices, ``float32`` encodings,
``string`` for an inverted ``StringLookup``).
"""

from __future__ import annotations

import numpy as np

from lamina.backend.keras_tensor import KerasTensor
from lamina.backend.tensor import Tensor
from lamina.layers.layer import Layer

_ENCODINGS = ("int", "one_hot", "multi_hot", "count")


def to_numpy(x) -> np.ndarray:
    """An ndarray view of a Tensor, list or array (strings stay strings)."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(getattr(x, "data", x))


def is_string_array(array: np.ndarray) -> bool:
    """Whether ``array`` holds text (``str``/``bytes`` dtype or objects that are text)."""
    if array.dtype.kind in "US":
        return True
    if array.dtype.kind == "O":
        flat = array.reshape(-1)
        return flat.size > 0 and isinstance(flat[0], (str, bytes))
    return False


def decode_strings(array: np.ndarray, encoding: str = "utf-8") -> np.ndarray:
    """An object array of ``str`` (bytes decoded with ``encoding``), same shape."""
    flat = [v.decode(encoding) if isinstance(v, bytes) else str(v)
            for v in np.asarray(array).reshape(-1).tolist()]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(np.shape(array))


def encode_categorical(indices, output_mode: str, depth: int, dtype="float32",
                       count_weights=None) -> np.ndarray:
    """Keras's ``numerical_utils.encode_categorical_inputs`` on numpy arrays.

    ``one_hot`` encodes every element (dropping a trailing axis of size 1);
    ``multi_hot`` and ``count`` reduce over axis 1 (axis 0 for 1-D input), so a batch of
    samples ``(batch, n)`` gives ``(batch, depth)``. Indices outside ``[0, depth)``
    encode as all zeros.
    """
    indices = np.asarray(indices)
    if output_mode == "int":
        return indices.astype(dtype)
    if indices.ndim == 0:
        indices = indices[None]
    if output_mode == "one_hot" and indices.ndim > 1 and indices.shape[-1] == 1:
        indices = indices[..., 0]
    valid = (indices >= 0) & (indices < depth)
    one_hot = (indices[..., None] == np.arange(depth)) & valid[..., None]
    if output_mode == "one_hot":
        return one_hot.astype(dtype)
    axis = 1 if indices.ndim > 1 else 0
    if output_mode == "multi_hot":
        return np.any(one_hot, axis=axis).astype(dtype)
    if count_weights is not None:
        weights = np.asarray(count_weights)
        return np.sum(one_hot * weights[..., None], axis=axis).astype(weights.dtype)
    return np.sum(one_hot, axis=axis).astype(dtype)


def encoded_shape(input_shape, output_mode: str, depth):
    """Output shape of :func:`encode_categorical` for ``input_shape``."""
    input_shape = tuple(input_shape)
    if output_mode == "int":
        return input_shape
    if not input_shape:
        return (depth,)
    if output_mode == "one_hot":
        if len(input_shape) > 1 and input_shape[-1] == 1:
            return input_shape[:-1] + (depth,)
        return input_shape + (depth,)
    return input_shape[:-1] + (depth,)


def is_batch_iterable(data) -> bool:
    """Whether ``adapt`` reads ``data`` batch by batch (a generator, a dataset), not as
    one array (an ndarray, a list, a Tensor, a string)."""
    return hasattr(data, "__iter__") and not isinstance(
        data, (list, tuple, np.ndarray, str, bytes)) and not hasattr(data, "data")


class DataLayer(Layer):
    """Base of the preprocessing layers that compute on numpy values, not gradients.

    Subclasses implement ``call`` on ndarrays (``self._np(x)``) and
    ``_output_dtype_name()``; symbolic calls carry that dtype.
    """

    def __call__(self, inputs, *args, **kwargs):
        # A plain list of scalars (["a", "b"], [[1], [2]]) is one input, not many.
        if isinstance(inputs, (list, tuple)) and not any(
                isinstance(t, (Tensor, np.ndarray, KerasTensor))
                for t in inputs):
            inputs = np.asarray(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def _convert_input(self, x):
        if isinstance(x, Tensor) or x is None:
            return x
        return Tensor(np.asarray(x))

    def _symbolic_call(self, inputs, *args, **kwargs):
        outputs = super()._symbolic_call(inputs, *args, **kwargs)
        for out in outputs if isinstance(outputs, list) else [outputs]:
            out.dtype = self._output_dtype_name()
        return outputs

    def _output_dtype_name(self) -> str:
        return self.dtype

    @staticmethod
    def _np(x) -> np.ndarray:
        return to_numpy(x)

    def _adapt_batches(self, data, steps=None, columns=True):
        """Keras's ``adapt`` loop: ``reset_state``; ``update_state`` on each batch of an
        iterable (at most ``steps`` of them) or once on a whole array or list (with
        ``columns``, a 1-D one as a column: one value per document); ``finalize_state``."""
        self.reset_state()
        if is_batch_iterable(data):
            for i, batch in enumerate(data):
                if steps is not None and i >= steps:
                    break
                self.update_state(batch)
        else:
            if columns:
                data = self._np(data)
                if data.ndim == 1:
                    data = data[:, None]
            self.update_state(data)
        self.finalize_state()

    @staticmethod
    def _tensor(array) -> Tensor:
        return Tensor(np.asarray(array))
