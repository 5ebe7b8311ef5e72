"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot,
and their functional forms ``add(inputs)``, ``concatenate(inputs)``, ...

Elementwise merges share one base, :class:`Merge`, which validates the list of inputs,
broadcasts inputs of lower rank (size-1 axes inserted after the batch axis, as Keras
does) and combines output masks with a logical AND; members override ``_merge``.
"""

from __future__ import annotations

import functools

import numpy as np

from lamina import ops
from lamina.layers.layer import Layer


def _is_shape_list(shapes) -> bool:
    return isinstance(shapes, (list, tuple)) and all(isinstance(s, (list, tuple))
                                                     for s in shapes)


def _mask_data(m):
    return None if m is None else np.asarray(getattr(m, "data", m), dtype=bool)


class Merge(Layer):
    """Base of the elementwise merge layers; subclasses implement ``_merge(inputs)``."""

    _min_inputs = 1

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _output_shape(self, shapes):
        if not _is_shape_list(shapes):
            raise ValueError(
                f"A merge layer should be called on a list of inputs. Received: "
                f"input_shape={shapes} (not a list of shapes)")
        if len(shapes) < self._min_inputs:
            raise ValueError(
                f"A merge layer should be called on a list of at least {self._min_inputs} "
                f"input(s). Got {len(shapes)} inputs. Full input_shape received: {shapes}")
        batch_sizes = {s[0] for s in shapes if s and s[0] is not None}
        if len(batch_sizes) > 1:
            raise ValueError(
                "Cannot merge tensors with different batch sizes. Received tensors with "
                f"shapes {[tuple(s) for s in shapes]}")
        rank = max(len(s) for s in shapes)
        out = _expanded(shapes[0], rank)[1:]
        for s in shapes[1:]:
            out = _broadcast_dims(out, _expanded(s, rank)[1:], shapes)
        batch = next(iter(batch_sizes)) if batch_sizes else None
        return (batch, *out)

    def build(self, input_shape):
        self._output_shape(input_shape)
        self.built = True

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"A merge layer should be called on a list of inputs. Received: "
                f"inputs={inputs} (not a list of tensors)")
        self._output_shape([tuple(x.shape) for x in inputs])
        rank = max(x.ndim for x in inputs)
        inputs = [ops.reshape(x, _expanded(x.shape, rank)) if x.ndim < rank else x
                  for x in inputs]
        return self._merge(inputs)

    def _merge(self, inputs):  # pragma: no cover - interface
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)):
            raise ValueError(f"`mask` should be a list. Received: mask={mask}")
        masks = [_mask_data(m) for m in mask if m is not None]
        if not masks:
            return None
        return functools.reduce(np.logical_and, masks)


def _expanded(shape, rank):
    """Insert size-1 axes after the batch axis until ``shape`` has ``rank`` axes."""
    shape = tuple(shape)
    return shape[:1] + (1,) * (rank - len(shape)) + shape[1:]


def _broadcast_dims(a, b, shapes):
    out = []
    for x, y in zip(a, b):
        if x is None or y is None:
            out.append(y if x in (None, 1) else x)
        elif x == 1 or y == 1 or x == y:
            out.append(max(x, y))
        else:
            raise ValueError(
                f"Inputs have incompatible shapes. Received shapes {[tuple(s) for s in shapes]}")
    return tuple(out)


class Add(Merge):
    """Adds a list of inputs elementwise (all of the same, or broadcastable, shape).

    Input shape:
        A list of tensors ``(batch_size, ...)``.

    Output shape:
        The broadcast shape of the inputs.
    """

    def _merge(self, inputs):
        return functools.reduce(ops.add, inputs)


class Subtract(Merge):
    """Subtracts two inputs: ``inputs[0] - inputs[1]``.

    Input shape:
        A list of exactly two tensors.

    Output shape:
        The broadcast shape of the inputs.
    """

    _min_inputs = 2

    def _output_shape(self, shapes):
        if _is_shape_list(shapes) and len(shapes) != 2:
            raise ValueError(
                f"A `Subtract` layer should be called on exactly 2 inputs. Received: "
                f"input_shape={shapes}")
        return super()._output_shape(shapes)

    def _merge(self, inputs):
        return ops.subtract(inputs[0], inputs[1])


class Multiply(Merge):
    """Multiplies a list of inputs elementwise.

    Input shape:
        A list of tensors ``(batch_size, ...)``.

    Output shape:
        The broadcast shape of the inputs.
    """

    def _merge(self, inputs):
        return functools.reduce(ops.multiply, inputs)


class Average(Merge):
    """Averages a list of inputs elementwise.

    Input shape:
        A list of tensors ``(batch_size, ...)``.

    Output shape:
        The broadcast shape of the inputs.
    """

    def _merge(self, inputs):
        return ops.divide(functools.reduce(ops.add, inputs),
                          np.asarray(len(inputs), dtype=inputs[0].data.dtype))


class Maximum(Merge):
    """Elementwise maximum of a list of inputs.

    Input shape:
        A list of tensors ``(batch_size, ...)``.

    Output shape:
        The broadcast shape of the inputs.
    """

    def _merge(self, inputs):
        return functools.reduce(ops.maximum, inputs)


class Minimum(Merge):
    """Elementwise minimum of a list of inputs.

    Input shape:
        A list of tensors ``(batch_size, ...)``.

    Output shape:
        The broadcast shape of the inputs.
    """

    def _merge(self, inputs):
        return functools.reduce(ops.minimum, inputs)


class Concatenate(Layer):
    """Concatenates a list of inputs along ``axis``.

    Args:
        axis: the concatenation axis (``-1``).

    Input shape:
        A list of tensors with equal shapes except along ``axis``.

    Output shape:
        The common shape, with the sizes along ``axis`` summed.

    The output mask (when any input has one) is, as in Keras, the inputs' masks
    (all-True for inputs without one) concatenated along ``axis`` and reduced with a
    logical OR over the last axis.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.supports_masking = True

    def _output_shape(self, shapes):
        if not _is_shape_list(shapes) or len(shapes) < 1:
            raise ValueError(
                "A `Concatenate` layer should be called on a list of at least 1 input. "
                f"Received: input_shape={shapes}")
        ranks = {len(s) for s in shapes}
        rank = len(shapes[0])
        axis = self.axis % rank if rank else 0
        reduced = [tuple(d for i, d in enumerate(s) if i != axis) for s in shapes]
        compatible = len(ranks) == 1 and all(
            all(a is None or b is None or a == b for a, b in zip(reduced[0], r))
            for r in reduced[1:])
        if not compatible:
            raise ValueError(
                "A `Concatenate` layer requires inputs with matching shapes except for the "
                f"concatenation axis. Received: input_shape={[tuple(s) for s in shapes]}")
        sizes = [s[axis] for s in shapes]
        out = list(shapes[0])
        for i in range(rank):
            if i != axis:
                known = [s[i] for s in shapes if s[i] is not None]
                out[i] = known[0] if known else None
        out[axis] = None if any(d is None for d in sizes) else int(sum(sizes))
        return tuple(out)

    def build(self, input_shape):
        self._output_shape(input_shape)
        self.built = True

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                "A `Concatenate` layer should be called on a list of inputs. Received: "
                f"inputs={inputs}")
        self._output_shape([tuple(x.shape) for x in inputs])
        return ops.concatenate(list(inputs), axis=self.axis)

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)):
            raise ValueError(f"`mask` should be a list. Received mask={mask}")
        if len(mask) != len(inputs):
            raise ValueError(
                f"The lists `inputs` and `mask` should have the same length. Received: "
                f"inputs={len(inputs)} tensors, mask={len(mask)} masks")
        if all(m is None for m in mask):
            return None
        masks = []
        for x, m in zip(inputs, mask):
            m = _mask_data(m)
            if m is None:
                masks.append(np.ones(x.shape, dtype=bool))
            elif m.ndim < x.ndim:
                masks.append(np.broadcast_to(m[..., None], x.shape))
            else:
                masks.append(m)
        return np.any(np.concatenate(masks, axis=self.axis), axis=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _l2_normalize(x, axis):
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.divide(x, ops.sqrt(ops.maximum(square_sum, 1e-12)))


class Dot(Layer):
    """Dot product of two batched tensors along ``axes`` (Keras's ``batch_dot``).

    Args:
        axes: int or pair of ints: the axis of each input to contract (the batch axis
            0 excluded; negative values count from the end).
        normalize: if True, L2-normalize both inputs along ``axes`` first, so the output
            is the cosine similarity.

    Input shape:
        A list of two tensors ``(batch_size, ...)`` whose sizes along ``axes`` agree.

    Output shape:
        The remaining axes of the first input, then those of the second; ``(batch, 1)``
        when both inputs are 2D.
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (int, np.integer)):
            axes = [int(axes), int(axes)]
        elif isinstance(axes, (list, tuple)) and len(axes) == 2 and all(
                isinstance(a, (int, np.integer)) for a in axes):
            axes = [int(a) for a in axes]
        else:
            raise TypeError(
                "Invalid format for argument `axes`: expected an int or a list/tuple of 2 "
                f"ints. Received: axes={axes!r}")
        self.axes = axes
        self.normalize = bool(normalize)
        self.supports_masking = False

    def _resolve(self, shapes):
        if not _is_shape_list(shapes) or len(shapes) != 2:
            raise ValueError(
                f"A `Dot` layer should be called on a list of 2 inputs. Received: "
                f"input_shape={shapes}")
        a, b = shapes
        axes = [self.axes[0] % len(a), self.axes[1] % len(b)]
        if 0 in axes:
            raise ValueError(f"`Dot` cannot contract the batch axis. Received: axes={self.axes}")
        if a[axes[0]] is not None and b[axes[1]] is not None and a[axes[0]] != b[axes[1]]:
            raise ValueError(
                f"Incompatible input shapes: axis values {a[axes[0]]} (at axis {axes[0]}) != "
                f"{b[axes[1]]} (at axis {axes[1]}). Full input shapes: {tuple(a)}, {tuple(b)}")
        rest = [d for i, d in enumerate(a) if i not in (0, axes[0])] + [
            d for i, d in enumerate(b) if i not in (0, axes[1])]
        out = (a[0] if a[0] is not None else b[0], *rest)
        return axes, out if len(out) > 1 else (out[0], 1)

    def build(self, input_shape):
        self._resolve(input_shape)
        self.built = True

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"A `Dot` layer should be called on a list of 2 inputs. "
                             f"Received: inputs={inputs}")
        (ax1, ax2), out_shape = self._resolve([tuple(x.shape) for x in inputs])
        x1, x2 = inputs
        if self.normalize:
            x1, x2 = _l2_normalize(x1, ax1), _l2_normalize(x2, ax2)
        n, k = x1.shape[0], x1.shape[ax1]
        # (batch, rest1, k) @ (batch, k, rest2): one batched matmul.
        x1 = ops.reshape(ops.moveaxis(x1, ax1, -1), (n, -1, k))
        x2 = ops.reshape(ops.moveaxis(x2, ax2, 1), (n, k, -1))
        return ops.reshape(ops.matmul(x1, x2), (n, *out_shape[1:]))

    def compute_output_shape(self, input_shape):
        return self._resolve(input_shape)[1]

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _functional(cls, name):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)

    merge.__name__ = name
    merge.__doc__ = (f"Functional interface to :class:`{cls.__name__}`: "
                     f"``{name}(inputs, **kwargs)`` is ``{cls.__name__}(**kwargs)(inputs)``.")
    return merge


add = _functional(Add, "add")
subtract = _functional(Subtract, "subtract")
multiply = _functional(Multiply, "multiply")
average = _functional(Average, "average")
maximum = _functional(Maximum, "maximum")
minimum = _functional(Minimum, "minimum")


def concatenate(inputs, axis=-1, **kwargs):
    """Functional interface to :class:`Concatenate`."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Functional interface to :class:`Dot`."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
