"""Neural-network ops on the fused primitives of ``backend/nn.py``: dense, dropout,
cross-entropies (Keras's ``ops.*_crossentropy``) and ``normalize``."""

from __future__ import annotations

import numpy as np

from lamina.backend import conv_ops as _conv_ops
from lamina.backend import nn as _nn
from lamina.backend.config import epsilon as _epsilon
from lamina.ops import activations as _activations
from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.activations import *  # noqa: F403
from lamina.ops.core import convert_to_tensor
from lamina.ops.ctc import ctc_decode, ctc_loss  # noqa: F401 - Keras's ops.nn names
from lamina.ops.manipulation import expand_dims, moveaxis
from lamina.ops.math import (
    abs,
    add,
    clip,
    divide,
    log,
    maximum,
    multiply,
    negative,
    power,
    rsqrt,
    square,
    subtract,
)
from lamina.ops.operation import dispatch_symbolic as _dispatch_symbolic
from lamina.ops.reduction import sum
from lamina.ops.special import polar  # noqa: F401 - Keras lists it under ops.nn

_OWN = [
    "adaptive_average_pool", "adaptive_max_pool", "fold", "unfold",
    "batch_normalization",
    "binary_crossentropy", "categorical_crossentropy", "dense",
    "depth_to_space", "dot_product_attention", "dropout", "layer_normalization", "moments",
    "multi_hot", "normalize", "one_hot", "psnr", "rms_normalization",
    "sigmoid_cross_entropy", "softmax_cross_entropy", "space_to_depth",
    "sparse_categorical_crossentropy",
]
# Keras files the activations and the convolutions under ops.nn too.
_ACTIVATIONS = list(_activations.__all__)
_CONV = list(_conv_ops.__all__)
__all__ = sorted(_OWN + _ACTIVATIONS + _CONV)
for _name in _CONV:
    globals()[_name] = _dispatch_symbolic(getattr(_conv_ops, _name))
del _name


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


def _same_shapes(target, output):
    if tuple(shape(target)) != tuple(shape(output)):
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. Received: "
            f"target.shape={shape(target)}, output.shape={shape(output)}")


def _logits_of(output):
    # Probabilities that came from sigmoid/softmax carry their logits (Keras's TF backend).
    return getattr(output, "_keras_logits", None)


def _targets(target, output):
    dtype = _data(output).dtype
    return convert_to_tensor(target, dtype=dtype if dtype.kind == "f" else None)


def binary_crossentropy(target, output, from_logits=False):
    """Elementwise binary cross-entropy, Keras's ``ops.binary_crossentropy``.

    Args:
        target: labels in ``[0, 1]``, the shape of ``output``.
        output: probabilities, or logits when ``from_logits``.
        from_logits: whether ``output`` holds logits.

    Returns:
        The loss of each element. Probabilities are clipped to ``[eps, 1 - eps]``.
    """
    output = convert_to_tensor(output)
    target = _targets(target, output)
    _same_shapes(target, output)
    logits = output if from_logits else _logits_of(output)
    if logits is not None:
        return sigmoid_cross_entropy(logits, target)
    eps = _epsilon()
    p = clip(output, eps, 1.0 - eps)
    return negative(add(multiply(target, log(p)),
                        multiply(subtract(1.0, target), log(subtract(1.0, p)))))


def _log_probs(output, axis):
    # Keras rescales probabilities to sum to 1, then clips before the log.
    eps = _epsilon()
    return log(clip(divide(output, sum(output, axis=axis, keepdims=True)), eps, 1.0 - eps))


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Cross-entropy against one-hot/probability targets, reduced over ``axis``.

    Args:
        target: targets, the shape of ``output``.
        output: probabilities, or logits when ``from_logits``.
        from_logits: whether ``output`` holds logits.
        axis: the class axis.

    Returns:
        The loss of each sample (``axis`` reduced).
    """
    output = convert_to_tensor(output)
    target = _targets(target, output)
    _same_shapes(target, output)
    logits = output if from_logits else _logits_of(output)
    if logits is not None:
        return softmax_cross_entropy(logits, target, axis=axis)
    return negative(sum(multiply(target, _log_probs(output, axis)), axis=axis))


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Cross-entropy against integer class ids, reduced over the class ``axis``.

    Args:
        target: class ids, the shape of ``output`` without ``axis`` (a trailing axis of
            size 1 is dropped).
        output: probabilities, or logits when ``from_logits``.
        from_logits: whether ``output`` holds logits.
        axis: the class axis.

    Returns:
        The loss of each sample.
    """
    output = convert_to_tensor(output)
    labels = np.asarray(_data(target))
    if labels.ndim == output.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    logits = output if from_logits else _logits_of(output)
    if axis not in (-1, output.ndim - 1):
        output = moveaxis(output, axis, -1)
        logits = None if logits is None else moveaxis(logits, axis, -1)
    if labels.shape != output.shape[:-1]:
        raise ValueError(
            "Argument `target` must have the shape of `output` without the class axis. "
            f"Received: target.shape={labels.shape}, output.shape={output.shape}")
    labels = labels.astype(np.intp)
    if logits is not None:
        return softmax_cross_entropy(logits, labels, sparse=True)
    hot = one_hot(labels, output.shape[-1], dtype=output.dtype)
    return negative(sum(multiply(hot, _log_probs(output, -1)), axis=-1))


def normalize(x, axis=-1, order=2, epsilon=None):
    """``x`` divided by its ``order``-norm along ``axis`` (Keras's ``ops.normalize``).

    Args:
        x: input tensor.
        axis: the axis normalised.
        order: an int >= 1; 2 is the euclidean norm.
        epsilon: lower bound of the norm (``keras.backend.epsilon()`` by default).

    Returns:
        The normalised tensor, the shape of ``x``.

    Raises:
        ValueError: when ``order`` is not an int >= 1.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an int >= 1. Received: order={order!r}")
    if len(shape(x)) == 0:
        x = expand_dims(x, 0)
    eps = _epsilon() if epsilon is None else epsilon
    if order == 2:
        # rsqrt(max(s, eps**2)) == min(rsqrt(s), 1/eps), Keras's bound, without a 1/0.
        return multiply(x, rsqrt(maximum(sum(square(x), axis=axis, keepdims=True), eps**2)))
    if order == 1:
        norm = sum(abs(x), axis=axis, keepdims=True)
    else:
        norm = power(sum(power(abs(x), float(order)), axis=axis, keepdims=True), 1.0 / order)
    return divide(x, maximum(norm, eps))


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """One-hot encode integer ``x`` along a new ``axis`` (negative ids give zero rows).

    Raises:
        ValueError: for ``sparse=True`` (Lamina has no sparse tensors).
    """
    if sparse:
        raise ValueError(f"Lamina has no sparse tensors. Received: sparse={sparse!r}")
    from lamina.backend.config import standardize_dtype
    from lamina.backend.tensor import Tensor

    ids = np.asarray(_data(x)).astype(np.intp)
    out = (ids[..., None] == np.arange(num_classes)).astype(standardize_dtype(dtype))
    return Tensor(np.moveaxis(out, -1, axis))


def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False):
    """Multi-hot encode integer labels: 1 for each class present in a sample (Keras's
    reduction runs over axis 1 of batched inputs, axis 0 of a 1-D input)."""
    if num_classes is None:
        raise ValueError("Argument `num_classes` must be set. Received: num_classes=None")
    ids = np.asarray(_data(inputs))
    hot = _data(one_hot(ids, num_classes, axis=axis, dtype=dtype, sparse=sparse))
    from lamina.backend.tensor import Tensor

    return Tensor(np.max(hot, axis=1 if ids.ndim > 1 else 0))


def moments(x, axes, keepdims=False, synchronized=False):
    """Mean and (biased) variance of ``x`` over ``axes``.

    Raises:
        NotImplementedError: for ``synchronized=True`` (no distributed runtime).
    """
    from lamina.ops.reduction import mean

    if synchronized:
        raise NotImplementedError(
            f"Lamina runs on one device. Received: synchronized={synchronized!r}")
    axes = tuple(axes) if isinstance(axes, (list, tuple)) else (axes,)
    m = mean(x, axis=axes, keepdims=True)
    v = mean(square(subtract(x, m)), axis=axes, keepdims=True)
    if not keepdims:
        m, v = _squeeze(m, axes), _squeeze(v, axes)
    return m, v


def _squeeze(x, axes):
    from lamina.ops.manipulation import squeeze

    return squeeze(x, axis=axes)


def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    """``(x - mean) / sqrt(variance + epsilon) * scale + offset``, the 1-D statistics and
    parameters laid along ``axis`` (Keras's formula, term for term)."""
    from lamina.ops.manipulation import reshape

    bshape = [1] * len(shape(x))
    bshape[axis] = shape(mean)[0]
    inv = rsqrt(add(reshape(variance, bshape), epsilon))
    if scale is not None:
        inv = multiply(inv, reshape(scale, bshape))
    res = multiply(negative(reshape(mean, bshape)), inv)
    if offset is not None:
        res = add(res, reshape(offset, bshape))
    return add(multiply(x, inv), res)


def _broadcast_param(v, x, axis):
    from lamina.ops.manipulation import reshape

    if v is None:
        return None
    ndims = len(shape(x))
    if len(shape(v)) == ndims or list(axis) == [ndims - 1]:
        return v
    b = [1] * ndims
    for a in axis:
        b[a] = shape(x)[a]
    return reshape(v, b)


def _norm_axes(x, axis):
    n = len(shape(x))
    axis = [axis] if isinstance(axis, int) else list(axis)
    return sorted(a % n for a in axis)


def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None):
    """Normalise ``x`` to zero mean, unit variance over ``axis``; then ``* gamma + beta``."""
    eps = _epsilon() if epsilon is None else epsilon
    x = convert_to_tensor(x)
    axis = _norm_axes(x, axis)
    m, v = moments(x, axis, keepdims=True)
    inv = rsqrt(add(v, eps))
    gamma, beta = _broadcast_param(gamma, x, axis), _broadcast_param(beta, x, axis)
    if gamma is not None:
        inv = multiply(inv, gamma)
    res = multiply(negative(m), inv)
    if beta is not None:
        res = add(res, beta)
    return add(multiply(x, inv), res)


def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    """``x / sqrt(mean(x**2, axis) + epsilon) * scale``."""
    from lamina.ops.reduction import mean

    eps = _epsilon() if epsilon is None else epsilon
    x = convert_to_tensor(x)
    if len(shape(x)) == 0:
        x = expand_dims(x, 0)
    axis = tuple(_norm_axes(x, axis))
    out = multiply(x, rsqrt(add(mean(square(x), axis=axis, keepdims=True), eps)))
    return out if scale is None else multiply(out, scale)


def psnr(x1, x2, max_val):
    """Peak signal-to-noise ratio ``20 log10(max_val) - 10 log10(mse)``, in dB.

    Raises:
        ValueError: when the shapes of ``x1`` and ``x2`` differ.
    """
    from lamina.ops.reduction import mean

    if tuple(shape(x1)) != tuple(shape(x2)):
        raise ValueError(f"Input shapes {shape(x1)} and {shape(x2)} must match for PSNR "
                         "calculation.")
    mse = mean(square(subtract(x1, x2)))
    return add(multiply(log(mse), -10.0 / float(np.log(10.0))),
               20.0 * float(np.log10(max_val)))


def _check_block(x, block_size, data_format):
    if len(shape(x)) != 4:
        raise ValueError(f"Input must be 4-D. Received: x.shape={shape(x)}")
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("data_format must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")


def depth_to_space(x, block_size, data_format="channels_last"):
    """Move blocks of channels to space (pixel shuffle), Keras's layout."""
    from lamina.ops.manipulation import reshape, transpose

    _check_block(x, block_size, data_format)
    b = block_size
    if data_format == "channels_last":
        n, h, w, c = shape(x)
        y = transpose(reshape(x, (n, h, w, b, b, c // b**2)), (0, 1, 3, 2, 4, 5))
        return reshape(y, (n, h * b, w * b, c // b**2))
    n, c, h, w = shape(x)
    y = transpose(reshape(x, (n, c // b**2, b, b, h, w)), (0, 1, 4, 2, 5, 3))
    return reshape(y, (n, c // b**2, h * b, w * b))


def space_to_depth(x, block_size, data_format="channels_last"):
    """Move ``block_size`` x ``block_size`` spatial blocks to channels (pixel unshuffle)."""
    from lamina.ops.manipulation import reshape, transpose

    _check_block(x, block_size, data_format)
    b = block_size
    if data_format == "channels_last":
        n, h, w, c = shape(x)
        y = transpose(reshape(x, (n, h // b, b, w // b, b, c)), (0, 1, 3, 2, 4, 5))
        return reshape(y, (n, h // b, w // b, c * b * b))
    n, c, h, w = shape(x)
    y = transpose(reshape(x, (n, c, h // b, b, w // b, b)), (0, 1, 3, 5, 2, 4))
    return reshape(y, (n, c * b * b, h // b, w // b))


def dot_product_attention(query, key, value, bias=None, mask=None, scale=None,
                          is_causal=False, flash_attention=None, attn_logits_soft_cap=None):
    """``softmax(q k^T * scale + bias, masked) v`` on ``(batch, seq, heads, dim)`` inputs.

    ``key``/``value`` may have fewer heads than ``query`` (grouped-query attention: the
    query heads are split into groups, each sharing one key/value head).

    Raises:
        ValueError: for ``flash_attention=True`` (no flash kernel on numpy).
    """
    from lamina.ops.activations import softmax
    from lamina.ops.linalg import einsum
    from lamina.ops.manipulation import reshape
    from lamina.ops.math import tanh, where

    if flash_attention:
        raise ValueError("Flash attention is not supported by Lamina. "
                         f"Received: flash_attention={flash_attention!r}")
    b, t, n, h = shape(query)
    k = shape(key)[2]
    s = shape(key)[1]
    g = n // k
    scale = 1.0 / float(np.sqrt(h)) if scale is None else scale
    q = reshape(query, (b, t, k, g, h))
    logits = multiply(einsum("btkgh,bskh->bkgts", q, key), scale)
    if bias is not None:
        logits = add(logits, reshape(_grouped(bias, n, k), (-1, k, g, t, s)))
    if attn_logits_soft_cap is not None:
        logits = multiply(tanh(divide(logits, attn_logits_soft_cap)), attn_logits_soft_cap)
    keep = np.ones((1, 1, 1, t, s), dtype=bool)
    if mask is not None:
        keep = keep & np.asarray(_data(_grouped(mask, n, k))).reshape(-1, k, g, t, s)
    if is_causal:
        keep = keep & np.tril(np.ones((t, s), dtype=bool))
    if mask is not None or is_causal:
        big = -0.7 * np.finfo(_data(logits).dtype).max
        logits = where(keep, logits, big)
    probs = softmax(logits, axis=-1)
    return reshape(einsum("bkgts,bskh->btkgh", probs, value), (b, t, n, h))


def _grouped(t, n, k):
    """Bring a bias/mask to ``(B, N, T, S)`` rank-4 (Keras's rules) then to heads."""
    from lamina.ops.manipulation import broadcast_to

    while len(shape(t)) < 4:
        if len(shape(t)) == 3 and shape(t)[1] == n:
            t = expand_dims(t, 2)
        else:
            t = expand_dims(t, 1)
    tb, tn, tt, ts = shape(t)
    if tn == 1:
        return broadcast_to(t, (tb, n, tt, ts))
    if tn != n:
        raise ValueError(f"Expected a bias or mask of shape (B, 1, T, S) or (B, {n}, T, S). "
                         f"Received: shape={shape(t)}")
    return t


def _adaptive_pool(inputs, output_size, data_format, reduce):
    from lamina.backend.config import image_data_format
    from lamina.ops.manipulation import concatenate, getitem

    data_format = image_data_format() if data_format is None else data_format
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("data_format must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    ndim = len(shape(inputs))
    n = ndim - 2
    sizes = (output_size,) * n if isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != n:
        raise ValueError(f"output_size must have {n} entries for a rank-{ndim} input. "
                         f"Received: output_size={output_size!r}")
    first = 1 if data_format == "channels_last" else 2
    x = inputs
    # Windows are rectangular, so the mean/max over one is taken one axis at a time.
    for i, out in enumerate(sizes):
        axis = first + i
        length = shape(x)[axis]
        parts = []
        for j in range(out):
            start, end = (j * length) // out, -((-(j + 1) * length) // out)
            index = (slice(None),) * axis + (slice(start, end),)
            parts.append(reduce(getitem(x, index), axis=axis, keepdims=True))
        x = concatenate(parts, axis=axis)
    return x


def adaptive_average_pool(inputs, output_size, data_format=None):
    """Average pooling to a fixed ``output_size`` (PyTorch's windows: ``floor(i*L/out)``
    to ``ceil((i+1)*L/out)``), on 1-D, 2-D or 3-D inputs."""
    from lamina.ops.reduction import mean

    return _adaptive_pool(inputs, output_size, data_format, mean)


def adaptive_max_pool(inputs, output_size, data_format=None):
    """Max pooling to a fixed ``output_size``, windows as :func:`adaptive_average_pool`."""
    from lamina.ops.reduction import max as _max

    return _adaptive_pool(inputs, output_size, data_format, _max)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding ``kernel_size`` blocks of an NCHW batch as columns: ``(N, C*kH*kW, L)``
    (PyTorch's ``unfold`` / im2col, channel-major rows)."""
    from lamina.ops.manipulation import getitem, pad, reshape

    if len(shape(x)) != 4:
        raise ValueError(f"unfold takes a 4-D (N, C, H, W) input. Received: x.shape={shape(x)}")
    (kh, kw), (dh, dw) = _pair(kernel_size), _pair(dilation)
    (ph, pw), (sh, sw) = _pair(padding), _pair(stride)
    if ph or pw:
        x = pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, w = shape(x)
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    rows = np.arange(kh)[:, None] * dh + np.arange(oh)[None, :] * sh
    cols = np.arange(kw)[:, None] * dw + np.arange(ow)[None, :] * sw
    patches = getitem(x, (slice(None), slice(None), rows[:, None, :, None],
                          cols[None, :, None, :]))
    return reshape(patches, (n, c * kh * kw, oh * ow))


def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns ``(N, C*kH*kW, L)`` back into an NCHW batch ``(N, C, *output_size)``:
    the adjoint of :func:`unfold` (PyTorch's ``fold`` / col2im; overlaps add up)."""
    from lamina.ops.manipulation import getitem, pad, reshape

    if len(shape(x)) != 3:
        raise ValueError(f"fold takes a 3-D (N, C*kH*kW, L) input. Received: x.shape={shape(x)}")
    (oh, ow), (kh, kw), (dh, dw) = _pair(output_size), _pair(kernel_size), _pair(dilation)
    (ph, pw), (sh, sw) = _pair(padding), _pair(stride)
    n, ckk, _ = shape(x)
    c = ckk // (kh * kw)
    hp, wp = oh + 2 * ph, ow + 2 * pw
    nh, nw = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    blocks = reshape(x, (n, c, kh, kw, nh, 1, nw, 1))
    # Spread each block's values ``stride`` apart: pad every value with stride-1 zeros.
    spread = reshape(pad(blocks, ((0, 0),) * 5 + ((0, sh - 1), (0, 0), (0, sw - 1))),
                     (n, c, kh, kw, nh * sh, nw * sw))
    spread = getitem(spread, (Ellipsis, slice(0, (nh - 1) * sh + 1), slice(0, (nw - 1) * sw + 1)))
    out = None
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            bottom, right = hp - top - (nh - 1) * sh - 1, wp - left - (nw - 1) * sw - 1
            term = pad(getitem(spread, (slice(None), slice(None), i, j)),
                       ((0, 0), (0, 0), (top, bottom), (left, right)))
            out = term if out is None else add(out, term)
    return getitem(out, (Ellipsis, slice(ph, ph + oh), slice(pw, pw + ow)))


export(globals(), _OWN)
