"""Differentiable operations with Keras's names (``keras.ops``), on numpy.

Every function accepts Tensors, ndarrays or Python numbers and returns a Tensor.
Primitives come from :mod:`lamina.backend.primitives` and :mod:`lamina.backend.nn`;
everything else here is composed from them and never hand-writes a gradient.
Functions that are not differentiable (comparisons, argmax, one_hot) return
Tensors that carry no gradient.

Example:
    >>> from lamina import ops
    >>> x = ops.convert_to_tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> ops.sum(ops.square(x)).item()
    30.0
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend import nn as _nn
from lamina.backend import primitives as _p
from lamina.backend.config import floatx, standardize_dtype
from lamina.backend.keras_tensor import KerasTensor, dispatch_symbolic
from lamina.backend.tensor import Tensor, Variable

__all__ = [
    "abs", "add", "argmax", "argmin", "broadcast_to", "cast", "clip", "concatenate",
    "convert_to_numpy", "convert_to_tensor", "cos", "dense", "divide", "dot", "dropout",
    "elu", "equal", "erf", "exp", "expand_dims", "gelu", "getitem", "greater",
    "greater_equal", "hard_sigmoid", "hard_silu", "leaky_relu", "less", "less_equal",
    "log", "log1p", "log_sigmoid", "log_softmax", "logsumexp", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mish", "moveaxis", "multiply", "negative", "norm", "not_equal",
    "one_hot", "ones", "ones_like", "pad", "power", "relu", "relu6", "repeat", "reshape",
    "selu", "shape", "sigmoid", "sign", "silu", "sin", "softmax", "softmax_cross_entropy",
    "softplus", "softsign", "split", "sqrt", "square", "squeeze", "stack", "std", "subtract",
    "sum", "swapaxes", "swish", "take", "tanh", "tile", "transpose", "true_divide", "var",
    "where", "zeros", "zeros_like",
]


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def convert_to_tensor(x, dtype=None) -> Tensor:
    """Return ``x`` as a Tensor; floats become ``floatx()`` unless ``dtype`` says otherwise."""
    if isinstance(x, Tensor):
        if dtype is None or x.dtype == standardize_dtype(dtype):
            return x
        return cast(x, dtype)
    array = np.asarray(x)
    if dtype is not None:
        array = array.astype(standardize_dtype(dtype), copy=False)
    elif array.dtype == np.float64 or array.dtype == np.float16:
        array = array.astype(floatx(), copy=False)
    return Tensor(array)


def convert_to_numpy(x) -> np.ndarray:
    """Return the value of ``x`` as an ndarray."""
    return np.asarray(_data(x))


def shape(x) -> tuple:
    """The shape of ``x``; ``None`` for the unknown sizes of a symbolic tensor."""
    if isinstance(x, KerasTensor):
        return x.shape
    return np.shape(_data(x))


# -- elementwise ------------------------------------------------------------------
def add(x1, x2):
    return _p.Add.apply(x1, x2)


def subtract(x1, x2):
    return _p.Subtract.apply(x1, x2)


def multiply(x1, x2):
    return _p.Multiply.apply(x1, x2)


def divide(x1, x2):
    return _p.Divide.apply(x1, x2)


true_divide = divide


def power(x1, x2):
    return _p.Power.apply(x1, x2)


def maximum(x1, x2):
    return _p.Maximum.apply(x1, x2)


def minimum(x1, x2):
    return _p.Minimum.apply(x1, x2)


def negative(x):
    return _p.Negative.apply(x)


def exp(x):
    return _p.Exp.apply(x)


def log(x):
    return _p.Log.apply(x)


def log1p(x):
    return _p.Log1p.apply(x)


def sqrt(x):
    return _p.Sqrt.apply(x)


def square(x):
    return multiply(x, x)


def abs(x):  # noqa: A001 - Keras's name
    return _p.Abs.apply(x)


def sign(x):
    return Tensor(np.sign(_data(x)))


def tanh(x):
    return _p.Tanh.apply(x)


def sin(x):
    return _p.Sin.apply(x)


def cos(x):
    return _p.Cos.apply(x)


def erf(x):
    return _p.Erf.apply(x)


def clip(x, x_min, x_max):
    return _p.Clip.apply(x, x_min, x_max)


def where(condition, x1, x2):
    return _p.Where.apply(_data(condition), x1, x2)


def cast(x, dtype):
    dtype = standardize_dtype(dtype)
    if isinstance(x, Tensor) and x.dtype == dtype:
        return x
    return _p.Cast.apply(x, dtype)


# -- activations ------------------------------------------------------------------
def relu(x):
    return _p.Relu.apply(x)


def relu6(x):
    return clip(x, 0.0, 6.0)


def sigmoid(x):
    out = _p.Sigmoid.apply(x)
    # As with softmax: binary cross-entropy recovers the logits for a stable fused loss.
    out._keras_logits = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    return out


def softplus(x):
    return _p.Softplus.apply(x)


def softsign(x):
    return divide(x, add(abs(x), 1.0))


def silu(x):
    return multiply(x, sigmoid(x))


swish = silu


def log_sigmoid(x):
    return negative(softplus(negative(x)))


def leaky_relu(x, negative_slope=0.2):
    return maximum(x, multiply(x, negative_slope)) if negative_slope <= 1 else where(
        _data(x) > 0, x, multiply(x, negative_slope))


def elu(x, alpha=1.0):
    d = _data(x)
    return where(d > 0, x, multiply(subtract(exp(minimum(x, 0.0)), 1.0), alpha))


def selu(x):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return multiply(elu(x, alpha), scale)


def gelu(x, approximate=True):
    if approximate:
        inner = multiply(add(x, multiply(power(x, 3.0), 0.044715)), math.sqrt(2 / math.pi))
        return multiply(multiply(x, 0.5), add(tanh(inner), 1.0))
    return multiply(multiply(x, 0.5), add(erf(multiply(x, 1 / math.sqrt(2))), 1.0))


def hard_sigmoid(x):
    return clip(add(divide(x, 6.0), 0.5), 0.0, 1.0)


def hard_silu(x):
    return multiply(x, hard_sigmoid(x))


def mish(x):
    return multiply(x, tanh(softplus(x)))


def softmax(x, axis=-1):
    out = _nn.Softmax.apply(x, axis=axis)
    out._keras_logits = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    return out


def log_softmax(x, axis=-1):
    return _nn.LogSoftmax.apply(x, axis=axis)


def softmax_cross_entropy(logits, labels, sparse=False, axis=-1):
    """Per-sample cross-entropy of ``softmax(logits)`` against ``labels``, fused."""
    return _nn.SoftmaxCrossEntropy.apply(logits, labels, sparse=sparse, axis=axis)


def sigmoid_cross_entropy(logits, labels):
    """Elementwise binary cross-entropy of ``sigmoid(logits)`` against ``labels``."""
    return _nn.SigmoidCrossEntropy.apply(logits, labels)


def dense(x, kernel, bias=None, activation=None):
    """``x @ kernel + bias`` as one fused node (with ReLU fused when asked)."""
    if activation == "relu":
        return _nn.ReluDense.apply(x, kernel, bias)
    return _nn.Dense.apply(x, kernel, bias)


def dropout(x, rate, noise_shape=None, rng=None):
    """Inverted dropout: zero a fraction ``rate`` and scale the rest by ``1/(1-rate)``."""
    from lamina.backend.random import get_rng

    rng = rng or get_rng()
    d = _data(x)
    shape_ = d.shape if noise_shape is None else tuple(
        n if n is not None else d.shape[i] for i, n in enumerate(noise_shape))
    keep = rng.random(shape_, dtype=np.float32) >= rate
    mask = keep.astype(d.dtype) * np.asarray(1.0 / (1.0 - rate), dtype=d.dtype)
    return _nn.Dropout.apply(x, mask)


# -- reductions ---------------------------------------------------------------------
def sum(x, axis=None, keepdims=False):  # noqa: A001
    return _p.Sum.apply(x, axis=_axis(axis), keepdims=keepdims)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _count(x, axis):
    s = shape(x)
    if axis is None:
        return int(np.prod(s)) if s else 1
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([s[a] for a in axes]))


def mean(x, axis=None, keepdims=False):
    axis = _axis(axis)
    return divide(sum(x, axis=axis, keepdims=keepdims),
                  np.asarray(_count(x, axis), dtype=_float_dtype(x)))


def _float_dtype(x):
    dt = np.result_type(_data(x))
    return dt if np.issubdtype(dt, np.floating) else np.dtype(floatx())


def max(x, axis=None, keepdims=False):  # noqa: A001
    return _p.Max.apply(x, axis=_axis(axis), keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    return negative(max(negative(x), axis=axis, keepdims=keepdims))


def var(x, axis=None, keepdims=False):
    centered = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centered), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def logsumexp(x, axis=None, keepdims=False):
    axis = _axis(axis)
    shift = np.max(_data(x), axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)
    out = add(log(sum(exp(subtract(x, shift)), axis=axis, keepdims=True)), shift)
    if keepdims:
        return out
    return squeeze(out, axis=axis if axis is not None else tuple(range(len(shape(x)))))


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    if ord not in (None, 2, "euclidean", "fro"):
        raise ValueError(f"norm supports the euclidean norm only. Received: ord={ord!r}")
    return sqrt(sum(square(x), axis=axis, keepdims=keepdims))


def argmax(x, axis=-1):
    return Tensor(np.argmax(_data(x), axis=axis))


def argmin(x, axis=-1):
    return Tensor(np.argmin(_data(x), axis=axis))


# -- comparisons (no gradient) --------------------------------------------------------
def equal(x1, x2):
    return Tensor(np.equal(_data(x1), _data(x2)))


def not_equal(x1, x2):
    return Tensor(np.not_equal(_data(x1), _data(x2)))


def greater(x1, x2):
    return Tensor(np.greater(_data(x1), _data(x2)))


def greater_equal(x1, x2):
    return Tensor(np.greater_equal(_data(x1), _data(x2)))


def less(x1, x2):
    return Tensor(np.less(_data(x1), _data(x2)))


def less_equal(x1, x2):
    return Tensor(np.less_equal(_data(x1), _data(x2)))


# -- shape --------------------------------------------------------------------------
def reshape(x, newshape):
    return _p.Reshape.apply(x, tuple(newshape) if isinstance(newshape, list) else newshape)


def transpose(x, axes=None):
    return _p.Transpose.apply(x, None if axes is None else tuple(axes))


def swapaxes(x, axis1, axis2):
    axes = list(range(len(shape(x))))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, axes)


def moveaxis(x, source, destination):
    axes = list(range(len(shape(x))))
    src = source % len(axes)
    axes.pop(src)
    axes.insert(destination % len(shape(x)), src)
    return transpose(x, axes)


def expand_dims(x, axis):
    return reshape(x, np.expand_dims(np.empty(shape(x), dtype=bool), axis).shape)


def squeeze(x, axis=None):
    return reshape(x, np.squeeze(np.empty(shape(x), dtype=bool), axis=axis).shape)


def broadcast_to(x, newshape):
    return _p.BroadcastTo.apply(x, tuple(newshape))


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return _p.GetItem.apply(x, index)


def concatenate(xs, axis=0):
    return _p.Concatenate.apply(*xs, axis=axis)


def stack(xs, axis=0):
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


def split(x, indices_or_sections, axis=0):
    size = shape(x)[axis]
    if isinstance(indices_or_sections, int):
        step = size // indices_or_sections
        bounds = list(range(step, size, step))[: indices_or_sections - 1]
    else:
        bounds = list(indices_or_sections)
    edges = [0, *bounds, size]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        index = [slice(None)] * len(shape(x))
        index[axis] = slice(lo, hi)
        out.append(getitem(x, tuple(index)))
    return out


def tile(x, repeats):
    reps = (repeats,) if isinstance(repeats, int) else tuple(repeats)
    s = shape(x)
    # Like np.tile: more repetitions than dimensions prepend axes of size 1.
    out = reshape(x, (1,) * (len(reps) - len(s)) + s) if len(reps) > len(s) else x
    reps = (1,) * (len(shape(out)) - len(reps)) + reps
    for axis, r in enumerate(reps):
        if r != 1:
            out = concatenate([out] * r, axis=axis)
    return out if isinstance(out, Tensor) else convert_to_tensor(out)


def repeat(x, repeats, axis=None):
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    index = [slice(None)] * len(shape(x))
    index[axis] = np.repeat(np.arange(shape(x)[axis]), repeats)
    return getitem(x, tuple(index))


def pad(x, pad_width, constant_values=0):
    width = tuple((int(lo), int(hi)) for lo, hi in pad_width)
    return _p.Pad.apply(x, width, constant_values=constant_values)


def take(x, indices, axis=None):
    indices = np.asarray(_data(indices))
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return _p.Take.apply(x, indices.astype(np.intp, copy=False), axis=axis % len(shape(x)))


def one_hot(x, num_classes, dtype=None):
    ids = np.asarray(_data(x)).astype(np.intp)
    out = np.zeros(ids.shape + (num_classes,), dtype=standardize_dtype(dtype))
    np.put_along_axis(out, ids[..., None], 1, axis=-1)
    return Tensor(out)


# -- linear algebra -------------------------------------------------------------------
def matmul(x1, x2):
    a_vec, b_vec = len(shape(x1)) == 1, len(shape(x2)) == 1
    if a_vec:
        x1 = reshape(x1, (1, -1))
    if b_vec:
        x2 = reshape(x2, (-1, 1))
    out = _p.MatMul.apply(x1, x2)
    if a_vec:
        out = squeeze(out, axis=-2)
    if b_vec:
        out = squeeze(out, axis=-1)
    return out


def dot(x1, x2):
    return matmul(x1, x2)


# -- constructors (no gradient) --------------------------------------------------------
def zeros(shape_, dtype=None):
    return Tensor(np.zeros(shape_, dtype=standardize_dtype(dtype)))


def ones(shape_, dtype=None):
    return Tensor(np.ones(shape_, dtype=standardize_dtype(dtype)))


def zeros_like(x, dtype=None):
    return Tensor(np.zeros_like(_data(x), dtype=dtype))


def ones_like(x, dtype=None):
    return Tensor(np.ones_like(_data(x), dtype=dtype))


__all__ += ["Tensor", "Variable", "sigmoid_cross_entropy"]

# On KerasTensors every op records a node of the functional graph, as in Keras 3.
for _name in __all__:
    if _name not in ("Tensor", "Variable", "convert_to_numpy", "convert_to_tensor", "shape"):
        globals()[_name] = dispatch_symbolic(globals()[_name])
del _name
