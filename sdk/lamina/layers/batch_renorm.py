"""Batch renormalization (Ioffe, 2017) for ``BatchNormalization(renorm=True)``, as Keras,
and BatchNormalization's masked training path (:func:`masked_batch_norm`).

In training the batch-normalized values are corrected towards the moving statistics:
``x_hat * r + d`` with ``r = std_batch / renorm_stddev`` and ``d = (mean_batch -
renorm_mean) / renorm_stddev`` (both clipped by ``renorm_clipping`` and treated as
constants by the gradient), folded into ``gamma`` and ``beta``. Extra non-trainable
weights, in Keras's order after ``moving_variance``: ``moving_stddev``, ``renorm_mean``,
``renorm_stddev``. ``moving_variance`` is kept as ``relu(moving_stddev**2 - epsilon)``.
"""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.backend.normalization import normalize

_CLIP_KEYS = ("rmax", "rmin", "dmax")


def check_renorm_clipping(renorm, renorm_clipping):
    """Validate ``renorm_clipping`` (``{}`` when renorm is on and none was given)."""
    if not renorm:
        return renorm_clipping
    clipping = dict(renorm_clipping or {})
    if set(clipping) - set(_CLIP_KEYS):
        raise ValueError("Received invalid keys for `renorm_clipping` argument: "
                         f"{renorm_clipping}. Supported values: {list(_CLIP_KEYS)}.")
    rmax, rmin, dmax = (clipping.get(k) for k in _CLIP_KEYS)
    if rmax is not None and rmin is not None and rmax < rmin:
        raise ValueError("rmax should be greater than rmin in the `renorm_clipping` argument. "
                         f"Received: rmax={rmax}, rmin={rmin}.")
    if dmax is not None and dmax < 0:
        raise ValueError("dmax should be non-negative in the `renorm_clipping` argument. "
                         f"Received: dmax={dmax}.")
    return clipping


def add_renorm_weights(layer, dim):
    """Create ``moving_stddev``, ``renorm_mean`` and ``renorm_stddev`` on ``layer``."""
    from lamina import initializers

    def stddev_init(shape, dtype=None):
        fresh = initializers.get(initializers.serialize(layer.moving_variance_initializer))
        return np.sqrt(np.asarray(fresh(shape, dtype=dtype)))

    mean_init = initializers.get(initializers.serialize(layer.moving_mean_initializer))
    layer.moving_stddev = layer.add_weight(name="moving_stddev", shape=(dim,),
                                           initializer=stddev_init, trainable=False)
    layer.renorm_mean = layer.add_weight(name="renorm_mean", shape=(dim,),
                                         initializer=mean_init, trainable=False)
    layer.renorm_stddev = layer.add_weight(name="renorm_stddev", shape=(dim,),
                                           initializer=stddev_init, trainable=False)


def _moments(inputs, mask, reduce_axes):
    x = inputs.data
    if mask is None:
        return x.mean(axis=reduce_axes), x.var(axis=reduce_axes)
    weights = np.asarray(getattr(mask, "data", mask), dtype=x.dtype)
    while weights.ndim < x.ndim:
        weights = weights[..., None]
    total = np.sum(weights, axis=reduce_axes, keepdims=True) + 1e-7
    mean = np.sum(x * weights, axis=reduce_axes, keepdims=True) / total
    variance = np.sum(np.square(x * weights - mean) * weights, axis=reduce_axes,
                      keepdims=True) / total
    return mean.reshape(-1), variance.reshape(-1)


def masked_batch_norm(inputs, mask, gamma, beta, reduce_axes, epsilon):
    """Batch norm with Keras's weighted moments: masked positions get zero weight.

    Returns:
        ``(output, batch mean, batch variance)``, the statistics as ndarrays.
    """
    weights = np.asarray(mask.data if hasattr(mask, "data") else mask,
                         dtype=inputs.data.dtype)
    while weights.ndim < inputs.ndim:
        weights = weights[..., None]
    total = np.sum(weights, axis=reduce_axes, keepdims=True) + 1e-7
    weighted = ops.multiply(inputs, weights)
    mean = ops.divide(ops.sum(weighted, axis=reduce_axes, keepdims=True), total)
    sq = ops.multiply(ops.square(ops.subtract(weighted, mean)), weights)
    variance = ops.divide(ops.sum(sq, axis=reduce_axes, keepdims=True), total)
    out = ops.multiply(ops.subtract(inputs, mean),
                       ops.divide(1.0, ops.sqrt(ops.add(variance, epsilon))))
    if gamma is not None:
        out = ops.multiply(out, gamma)
    if beta is not None:
        out = ops.add(out, beta)
    return out, mean.data, variance.data


def renorm_training_call(layer, inputs, mask, gamma, beta, reduce_axes, bshape):
    """The training output of a renorm BatchNormalization; updates its statistics."""
    mean, variance = _moments(inputs, mask, reduce_axes)
    dtype = inputs.data.dtype
    eps = layer.epsilon
    stddev = np.sqrt(variance + eps)
    renorm_stddev = np.maximum(layer.renorm_stddev.data, np.sqrt(eps))
    r = stddev / renorm_stddev
    d = (mean - layer.renorm_mean.data) / renorm_stddev
    clip = layer.renorm_clipping
    if clip.get("rmin") is not None:
        r = np.maximum(r, clip["rmin"])
    if clip.get("rmax") is not None:
        r = np.minimum(r, clip["rmax"])
    if clip.get("dmax") is not None:
        d = np.clip(d, -clip["dmax"], clip["dmax"])
    r, d = r.astype(dtype).reshape(bshape), d.astype(dtype).reshape(bshape)
    # (x_hat * r + d) * gamma + beta, with r and d constants (stop_gradient in Keras).
    scale = r if gamma is None else ops.multiply(gamma, r)
    offset = d if gamma is None else ops.multiply(gamma, d)
    if beta is not None:
        offset = ops.add(offset, beta)
    if mask is None:
        out, _, _ = normalize(inputs, scale, offset, axes=reduce_axes, epsilon=eps)
    else:
        out, _, _ = masked_batch_norm(inputs, mask, scale, offset, reduce_axes, eps)
    _update(layer, mean, stddev)
    return out


def _update(layer, mean, stddev):
    rm, m = layer.renorm_momentum, layer.momentum
    layer.renorm_mean.assign(layer.renorm_mean.data * rm + mean * (1.0 - rm))
    layer.renorm_stddev.assign(layer.renorm_stddev.data * rm + stddev * (1.0 - rm))
    layer.moving_mean.assign(layer.moving_mean.data * m + mean * (1.0 - m))
    new_stddev = layer.moving_stddev.data * m + stddev * (1.0 - m)
    layer.moving_stddev.assign(new_stddev)
    layer.moving_variance.assign(np.maximum(new_stddev * new_stddev - layer.epsilon, 0.0))
