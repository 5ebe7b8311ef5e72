"""Fused normalization primitive: ``(x - mean) / sqrt(var + eps) * gamma + beta`` in one node.

One :class:`Normalize` serves BatchNormalization (statistics over the batch and spatial
axes; ``gamma`` per channel), LayerNormalization (statistics over the feature axes) and
GroupNormalization (statistics per group, on a grouped view of the input). With batch
statistics the backward differentiates through the mean and the variance; with given
statistics (BatchNormalization at inference) it is an affine map.

A graph of small ops would take about a dozen full passes over the activations each
way; this takes five or six forward and five backward. When the statistics are over the
trailing axes (LayerNormalization) the rows are independent: their sums are BLAS
matrix-vector products or einsums (numpy's reduction over a short innermost axis is
several times slower) and row ranges run on the thread pool.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.parallel import MAX_PARTS, parallel_for
from lamina.backend.threads import split


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


ROW_PART_ELEMENTS = 1 << 17  # a part of a row-wise pass: 128k elements (512 KB float32);
# with a worker, two parts of (8192, 32) take 15% less time than four (fewer numpy calls
# contending for the GIL), alone the same


def _row_layout(x, axes, *params):
    """``(rows, count)`` when the statistics are over the trailing axes of a C-contiguous
    float32/float64 ``x`` and each parameter is None or spans exactly those axes; else
    None. In that layout (LayerNormalization's) the work splits into row ranges."""
    ndim, lead = x.ndim, x.ndim - len(axes)
    if (lead < 1 or axes != tuple(range(lead, ndim)) or not x.flags.c_contiguous
            or x.dtype not in (np.float32, np.float64)):
        return None
    for p in params:
        if p is None:
            continue
        dims = tuple(p.shape)
        while len(dims) > len(axes) and dims[0] == 1:
            dims = dims[1:]
        if dims != x.shape[lead:] or p.dtype != x.dtype:
            return None
    count = int(np.prod(x.shape[lead:]))
    return x.size // count, count


def _columnwise(op, a, vec, out):
    """``op(a, vec, out=out)`` for ``(rows, count)`` arrays and a ``(count,)`` vector.

    Short rows (LayerNorm over 32 features) make numpy's broadcast inner loop one row
    long; over whole groups of rows viewed as wide rows, with the vector tiled, the same
    pass takes about half the time. The rows left over run as they are.
    """
    rows, count = a.shape
    reps = 1 if count >= 128 else -(-256 // count)
    whole = rows // reps * reps
    if reps > 1 and whole:
        width = reps * count
        op(a[:whole].reshape(-1, width), np.tile(vec, reps),
           out=out[:whole].reshape(-1, width))
    else:
        whole = 0
    if whole < rows:
        op(a[whole:], vec, out=out[whole:])
    return out


def _rows_forward(x, gamma, beta, epsilon, layout):
    """Normalize rows of ``x`` (batch statistics); returns out, xhat, mean, var, inv_std
    as ``(rows, count)`` / ``(rows,)`` arrays."""
    rows, count = layout
    xr = x.reshape(rows, count)
    gamma = None if gamma is None else gamma.reshape(count)
    beta = None if beta is None else beta.reshape(count)
    xhat, out = np.empty_like(xr), np.empty_like(xr)
    mean, var, inv = (np.empty(rows, x.dtype) for _ in range(3))
    weights = np.full(count, 1.0 / count, dtype=x.dtype)
    eps = np.asarray(epsilon, dtype=x.dtype)
    ranges = split(rows, max(1, min(MAX_PARTS, x.size // ROW_PART_ELEMENTS)))

    def part(i):
        lo, hi = ranges[i]
        m, c, s = mean[lo:hi], xhat[lo:hi], inv[lo:hi]
        np.matmul(xr[lo:hi], weights, out=m)
        np.subtract(xr[lo:hi], m[:, None], out=c)
        v, o = var[lo:hi], out[lo:hi]
        # Row means of c * c by a product (in the output's rows, written below) and a
        # BLAS matrix-vector product (a little faster than einsum, alone and with a worker).
        np.multiply(c, c, out=o)
        np.matmul(o, weights, out=v)
        np.add(v, eps, out=s)
        np.sqrt(s, out=s)
        np.divide(1.0, s, out=s)
        c *= s[:, None]
        if gamma is None:
            o[...] = c
        else:
            _columnwise(np.multiply, c, gamma, o)
        if beta is not None:
            _columnwise(np.add, o, beta, o)

    parallel_for(len(ranges), part)
    return out, xhat, mean, var, inv


def _rows_backward(g, xhat, inv, gamma, needs):
    """Gradients of :func:`_rows_forward` (x, gamma, beta) on ``(rows, count)`` views;
    the parameters' sums are taken per row range and added in range order."""
    rows, count = xhat.shape
    gr = g.reshape(rows, count)
    flat_gamma = None if gamma is None else gamma.reshape(count)
    ranges = split(rows, max(1, min(MAX_PARTS, xhat.size // ROW_PART_ELEMENTS)))
    gx = np.empty_like(xhat) if needs[0] else None
    ggamma = np.empty((len(ranges), count), xhat.dtype) if needs[1] else None
    gbeta = np.empty((len(ranges), count), xhat.dtype) if needs[2] else None
    # With ghat = g * gamma, the row means of ghat and of ghat * xhat are those of g and
    # g * xhat weighted by gamma / count: one product g * xhat serves gamma's sum too.
    weights = np.full(count, 1.0 / count, dtype=xhat.dtype)
    if flat_gamma is not None:
        weights = weights * flat_gamma

    def part(i):
        lo, hi = ranges[i]
        gp, xp = gr[lo:hi], xhat[lo:hi]
        # Sums of products as a product and a BLAS matrix-vector product (a little faster
        # than einsum), with the rows of gx (written last) as scratch.
        out = gx[lo:hi] if gx is not None else np.empty_like(gp)
        ones = np.ones(hi - lo, xhat.dtype)
        if ggamma is not None or gx is not None:
            np.multiply(gp, xp, out=out)
        if ggamma is not None:
            np.matmul(ones, out, out=ggamma[i])
        if gbeta is not None:
            np.matmul(ones, gp, out=gbeta[i])
        if gx is None:
            return
        mean_gx = out @ weights
        mean_g = gp @ weights
        # gx = (ghat - mean(ghat) - xhat * mean(ghat * xhat)) * inv_std
        np.multiply(xp, mean_gx[:, None], out=out)
        out += mean_g[:, None]
        if flat_gamma is None:
            np.subtract(gp, out, out=out)
        else:
            ghat = _columnwise(np.multiply, gp, flat_gamma, np.empty_like(gp))
            np.subtract(ghat, out, out=out)
        out *= inv[lo:hi, None]

    parallel_for(len(ranges), part)
    return (None if gx is None else gx.reshape(g.shape),
            None if ggamma is None else ggamma.sum(axis=0).reshape(gamma.shape),
            None if gbeta is None else gbeta.sum(axis=0))


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

    __slots__ = ("xhat", "inv_std", "gamma", "beta_shape", "axes", "batch_stats", "count",
                 "rows")

    def forward(self, x, gamma=None, beta=None, axes=(0,), epsilon=1e-3, mean=None,
                variance=None, stats=None):
        self.axes = tuple(a % x.ndim for a in axes)
        self.batch_stats = mean is None
        self.count = int(np.prod([x.shape[a] for a in self.axes]))
        self.gamma = gamma
        self.beta_shape = None if beta is None else beta.shape
        self.rows = self.batch_stats and _row_layout(x, self.axes, gamma, beta)
        if self.rows:
            out, self.xhat, mean, variance, self.inv_std = _rows_forward(
                x, gamma, beta, epsilon, self.rows)
            if stats is not None:
                kept = x.shape[:x.ndim - len(self.axes)] + (1,) * len(self.axes)
                stats["mean"], stats["variance"] = mean.reshape(kept), variance.reshape(kept)
            return out.reshape(x.shape)
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
        self.xhat, self.inv_std = centered, inv_std
        if gamma is None:
            out = centered.copy() if beta is not None else centered
        else:
            out = centered * gamma
        if beta is not None:
            out += beta
        return out

    def backward(self, g):
        if self.rows:
            gx, ggamma, gbeta = _rows_backward(g, self.xhat, self.inv_std, self.gamma,
                                               self.needs)
            if gbeta is not None:
                gbeta = gbeta.reshape(self.beta_shape)
            return gx, ggamma, gbeta
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
