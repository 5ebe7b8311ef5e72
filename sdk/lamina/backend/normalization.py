"""Fused normalization primitive: ``(x - mean) / sqrt(var + eps) * gamma + beta`` in one node.

One :class:`Normalize` serves BatchNormalization (statistics over the batch and spatial
axes; ``gamma`` per channel), LayerNormalization (statistics over the feature axes) and
GroupNormalization (statistics per group, on a grouped view of the input). With batch
statistics the backward differentiates through the mean and the variance; with given
statistics (BatchNormalization at inference) it is an affine map.

A graph of small ops would take about a dozen full passes over the activations each
way; this takes five or six forward and five backward.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import Function


def _mean(x, axes, count, other=None):
    """``mean(x * other)`` (``other`` optional) over ``axes``, keepdims.

    Over trailing axes of a C-contiguous array (LayerNormalization) the rows are summed
    by a BLAS matrix-vector product or einsum: numpy's reduction over a short innermost
    axis is several times slower.
    """
    ndim = x.ndim
    # float16 stays with np.mean, which accumulates in float32.
    if (axes != tuple(range(ndim - len(axes), ndim)) or not x.flags.c_contiguous
            or x.dtype not in (np.float32, np.float64)
            or (other is not None and (other.shape != x.shape
                                       or not other.flags.c_contiguous))):
        return np.mean(x if other is None else x * other, axis=axes, keepdims=True)
    kept = x.shape[:ndim - len(axes)] + (1,) * len(axes)
    rows = x.reshape(-1, count)
    if other is None:
        return (rows @ np.full(count, 1.0 / count, dtype=x.dtype)).reshape(kept)
    total = np.einsum("ij,ij->i", rows, other.reshape(-1, count))
    total *= np.asarray(1.0 / count, dtype=total.dtype)
    return total.reshape(kept)


def _param_grad(g, param_shape, other=None):
    """``g * other`` summed to ``param_shape``, or None to let the walk unbroadcast it.

    For a parameter that spans the trailing axes (LayerNormalization's gamma and beta)
    the sum over the leading rows is one BLAS product or einsum, not an elementwise
    product plus numpy's column reduction.
    """
    dims = tuple(param_shape)
    while dims and dims[0] == 1:
        dims = dims[1:]
    lead = g.ndim - len(dims)
    if (not dims or lead < 1 or g.shape[lead:] != dims or not g.flags.c_contiguous
            or g.dtype not in (np.float32, np.float64)
            or (other is not None and (other.shape != g.shape or other.dtype != g.dtype
                                       or not other.flags.c_contiguous))):
        return None
    rows = g.reshape(-1, int(np.prod(dims)))
    if other is None:
        total = np.ones(rows.shape[0], dtype=g.dtype) @ rows
    else:
        total = np.einsum("ij,ij->j", rows, other.reshape(rows.shape))
    return total.reshape(param_shape)


def _stats_broadcast_over(param_shape, ndim, axes) -> bool:
    """True when a parameter of ``param_shape`` is constant along every axis in ``axes``."""
    aligned = (1,) * (ndim - len(param_shape)) + tuple(param_shape)
    return all(aligned[a] == 1 for a in axes)


class Normalize(Function):
    """Normalize ``x`` over ``axes`` and apply ``gamma`` and ``beta`` (both optional).

    ``gamma`` and ``beta`` must broadcast against ``x``. Without ``mean``/``variance``
    the batch statistics over ``axes`` are used (biased variance) and written to the
    ``stats`` dict when one is given, so that a layer can update moving averages.
    """

    __slots__ = ("xhat", "inv_std", "gamma", "beta_shape", "axes", "batch_stats", "count")

    def forward(self, x, gamma=None, beta=None, axes=(0,), epsilon=1e-3, mean=None,
                variance=None, stats=None):
        self.axes = tuple(a % x.ndim for a in axes)
        self.batch_stats = mean is None
        self.count = int(np.prod([x.shape[a] for a in self.axes]))
        if self.batch_stats:
            mean = _mean(x, self.axes, self.count)
            centered = x - mean
            variance = _mean(centered, self.axes, self.count, centered)
            if stats is not None:
                stats["mean"], stats["variance"] = mean, variance
        else:
            mean = np.asarray(mean, dtype=x.dtype)
            variance = np.asarray(variance, dtype=x.dtype)
            centered = x - mean
        inv_std = 1.0 / np.sqrt(variance + np.asarray(epsilon, dtype=x.dtype))
        centered *= inv_std
        self.xhat, self.inv_std, self.gamma = centered, inv_std, gamma
        self.beta_shape = None if beta is None else beta.shape
        if gamma is None:
            out = centered.copy() if beta is not None else centered
        else:
            out = centered * gamma
        if beta is not None:
            out += beta
        return out

    def backward(self, g):
        xhat, gamma, axes = self.xhat, self.gamma, self.axes
        ggamma = gbeta = None
        if self.needs[1]:
            ggamma = _param_grad(g, gamma.shape, xhat)
            if ggamma is None:
                ggamma = g * xhat
        if self.needs[2]:
            gbeta = _param_grad(g, self.beta_shape)
            if gbeta is None:
                gbeta = g
        gx = None
        if self.needs[0]:
            if not self.batch_stats:
                gx = g * (self.inv_std if gamma is None else gamma * self.inv_std)
            elif gamma is None or _stats_broadcast_over(gamma.shape, g.ndim, axes):
                # BatchNorm layout: gamma is constant over the reduced axes, so the two
                # reductions are those of g itself (and serve gamma's and beta's sums too).
                mean_g = np.mean(g, axis=axes, keepdims=True)
                mean_gx = np.mean(ggamma if ggamma is not None and ggamma.shape == g.shape
                                  else g * xhat, axis=axes, keepdims=True)
                scale = self.inv_std if gamma is None else gamma * self.inv_std
                gx = g - mean_g
                gx -= xhat * mean_gx
                gx *= scale
            else:
                ghat = g * gamma
                mean_g = _mean(ghat, axes, self.count)
                mean_gx = _mean(ghat, axes, self.count, xhat)
                gx = ghat
                gx -= mean_g
                gx -= xhat * mean_gx
                gx *= self.inv_std
        return gx, ggamma, gbeta


def normalize(x, gamma=None, beta=None, axes=(0,), epsilon=1e-3, mean=None, variance=None):
    """Apply :class:`Normalize`; return ``(output, batch_mean, batch_variance)``.

    Args:
        x: input Tensor.
        gamma, beta: optional Tensors broadcastable to ``x``.
        axes: the axes the statistics are taken over.
        epsilon: added to the variance.
        mean, variance: fixed statistics (arrays broadcastable to ``x``); the batch's
            statistics when None.

    Returns:
        The output Tensor, and the batch mean and variance as ndarrays of ``x``'s rank
        with size-1 ``axes`` (None when fixed statistics were given).
    """
    stats = {}
    out = Normalize.apply(x, gamma, beta, axes=tuple(axes), epsilon=epsilon, mean=mean,
                          variance=variance, stats=stats)
    return out, stats.get("mean"), stats.get("variance")
