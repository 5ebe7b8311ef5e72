"""Hashing and HashedCrossing: bucket values (or crosses of values) by a fixed hash."""

from __future__ import annotations

import numpy as np

from lamina.backend.config import floatx
from lamina.layers.preprocessing import hash_functions
from lamina.layers.preprocessing.data_layer import DataLayer, encode_categorical, encoded_shape


def _standardize_salt(salt, who):
    if salt is None:
        return None
    if isinstance(salt, (tuple, list)) and len(salt) == 2:
        return [int(s) for s in salt]
    if isinstance(salt, (int, np.integer)) and not isinstance(salt, bool):
        return [int(salt), int(salt)]
    raise ValueError(f"The `salt` argument for `{who}` can only be a tuple of size 2 "
                     f"integers, or a single integer. Received: salt={salt}.")


class Hashing(DataLayer):
    """Hashes values (strings, integers, floats truncated to integers) into bins.

    Bins come from FarmHash64 (``salt=None``) or SipHash-2-4 keyed by ``salt``, on the
    value's text, exactly as Keras (through TensorFlow) computes them, so a model keeps
    its bins when it moves between Keras and Lamina.

    Args:
        num_bins: number of hash bins (including the mask bin, if any).
        mask_value: a value that maps to bin 0; the others use bins ``1..num_bins-1``.
        salt: None, an int, or a pair of ints: keys the strong hash.
        output_mode: ``"int"``, ``"one_hot"``, ``"multi_hot"`` or ``"count"``.
        sparse: must be False (no sparse tensors in Lamina).

    Input shape:
        Any; ``one_hot`` expects a trailing axis of 1 or none.

    Output shape:
        Same as the input for ``"int"``; else the last axis becomes ``num_bins``.

    Example:
        >>> import numpy as np
        >>> from lamina import layers
        >>> layers.Hashing(num_bins=3)(np.array([["A"], ["B"], ["C"]])).numpy().ravel()
        array([1, 0, 1])
    """

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False,
                 **kwargs):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64" if output_mode == "int" else floatx()
        super().__init__(**kwargs)
        if num_bins is None or num_bins <= 0:
            raise ValueError("The `num_bins` for `Hashing` cannot be `None` or non-positive "
                             f"values. Received: num_bins={num_bins}.")
        if output_mode == "int" and self.dtype not in ("int32", "int64"):
            raise ValueError('When `output_mode="int"`, `dtype` should be an integer type, '
                             f"'int32' or 'in64'. Received: dtype={kwargs['dtype']}")
        accepted = ("int", "one_hot", "multi_hot", "count")
        if output_mode not in accepted:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             f"{accepted}. Received: output_mode={output_mode}")
        if sparse:
            raise ValueError("`sparse=True` is not supported: Lamina has no sparse tensors. "
                             f"Received: sparse={sparse}")
        self.num_bins = num_bins
        self.mask_value = mask_value
        self.strong_hash = salt is not None
        self.output_mode = output_mode
        self.sparse = sparse
        self.salt = _standardize_salt(salt, "Hashing")
        self.built = True

    def _hash(self, values: np.ndarray) -> np.ndarray:
        bins = self.num_bins
        mask = None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            mask = values == self.mask_value
        if values.dtype.kind == "f":
            values = values.astype("int64")
        out = hash_functions.hash_buckets(values, bins, self.salt)
        if mask is not None:
            out = np.where(mask, 0, out + 1)
        return out

    def call(self, inputs):
        values = self._np(inputs)
        if self.output_mode == "one_hot" and values.ndim and values.shape[-1] == 1:
            values = values[..., 0]
        indices = self._hash(values)
        return self._tensor(encode_categorical(indices, self.output_mode, self.num_bins,
                                               dtype=self.dtype))

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        if len(input_shape) == 0:
            return (self.num_bins,)
        return tuple(input_shape[:-1]) + (self.num_bins,)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "salt": self.salt,
                "mask_value": self.mask_value, "output_mode": self.output_mode,
                "sparse": self.sparse}


class HashedCrossing(DataLayer):
    """Crosses two or more categorical features into hashed bins (``tf.sparse.cross_hashed``).

    Args:
        num_bins: number of hash bins.
        output_mode: ``"int"`` or ``"one_hot"``.
        sparse: must be False.

    Input shape:
        A list of tensors of equal shape ``()``, ``(batch,)`` or ``(batch, 1)``, of
        integers or strings.

    Output shape:
        The inputs' shape (``"int"``), or with a last axis of ``num_bins``.
    """

    def __init__(self, num_bins, output_mode="int", sparse=False, name=None, dtype=None,
                 **kwargs):
        if output_mode == "int" and dtype is None:
            dtype = "int64"
        super().__init__(name=name, dtype=dtype, **kwargs)
        if output_mode not in ("int", "one_hot"):
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             f"('int', 'one_hot'). Received: output_mode={output_mode}")
        if sparse:
            raise ValueError("`sparse=True` is not supported: Lamina has no sparse tensors. "
                             f"Received: sparse={sparse}")
        self.num_bins = num_bins
        self.output_mode = output_mode
        self.sparse = sparse
        self.built = True

    def _check(self, arrays):
        if len(arrays) < 2:
            raise ValueError("`HashedCrossing` should be called on at least two inputs. "
                             f"Received: inputs={arrays}")
        first = tuple(arrays[0].shape)
        if len(first) > 2 or (len(first) == 2 and first[-1] != 1):
            raise ValueError("All `HashedCrossing` inputs should have shape `()`, "
                             f"`(batch_size)` or `(batch_size, 1)`. Received: shape={first}")
        if any(tuple(a.shape) != first for a in arrays[1:]):
            raise ValueError("All `HashedCrossing` inputs should have equal shape. "
                             f"Received: shapes={[tuple(a.shape) for a in arrays]}")
        for a in arrays:
            if a.dtype.kind not in "iuUSO":
                raise ValueError("All `HashedCrossing` inputs should have an integer or "
                                 f"string dtype. Received: dtype={a.dtype}")

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError("`HashedCrossing` should be called on a list or tuple of "
                             f"inputs. Received: inputs={inputs}")
        arrays = [self._np(x) for x in inputs]
        self._check(arrays)
        shape = arrays[0].shape
        crossed = hash_functions.cross_hash(arrays, self.num_bins).reshape(shape)
        out = encode_categorical(crossed, self.output_mode, self.num_bins, dtype=self.dtype)
        return self._tensor(out)

    def compute_output_shape(self, input_shape):
        if not (len(input_shape) >= 2 and all(isinstance(s, tuple) for s in input_shape)):
            raise ValueError("Expected as input a list/tuple of 2 tensors. Received "
                             f"input_shape={input_shape}")
        first = tuple(input_shape[0])
        return encoded_shape(first, self.output_mode, self.num_bins)

    def get_config(self):
        return {"num_bins": self.num_bins, "output_mode": self.output_mode,
                "sparse": self.sparse, "name": self.name, "dtype": self.dtype}
