"""Random draws with ``keras.random``'s names and seeding rules, on numpy.

Keras's seeding: an int ``seed`` gives the same draw every call; a ``SeedGenerator``
advances its state, so successive calls differ but repeat from the same seed; ``None``
draws from the global generator, which ``lamina.utils.set_random_seed`` reseeds.

Example:
    >>> from lamina import random
    >>> a = random.normal((2, 3), seed=7)
    >>> b = random.normal((2, 3), seed=7)
    >>> bool((a.numpy() == b.numpy()).all())
    True
"""

from __future__ import annotations

import numbers

import numpy as np

from lamina.backend.config import standardize_dtype
from lamina.backend.random import SeedGenerator, get_rng
from lamina.backend.tensor import Tensor

__all__ = ["SeedGenerator", "beta", "binomial", "categorical", "dropout", "gamma", "normal",
           "randint", "shuffle", "truncated_normal", "uniform"]


def _rng(seed) -> np.random.Generator:
    if seed is None:
        return get_rng()
    if isinstance(seed, SeedGenerator):
        return seed.rng
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise ValueError("Argument `seed` must be either an integer or an instance of "
                     f"`SeedGenerator`. Received: seed={seed!r} (of type {type(seed)})")


def _shape(shape) -> tuple:
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    if any(not isinstance(s, numbers.Integral) or s < 0 for s in shape):
        raise ValueError(f"Argument `shape` must be a tuple of non-negative integers. "
                         f"Received: shape={shape}")
    return tuple(int(s) for s in shape)


def _value(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _out(values, dtype) -> Tensor:
    return Tensor(np.asarray(values, dtype=standardize_dtype(dtype)))


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Draws from a normal distribution.

    Args:
        shape: the output shape.
        mean: the mean of the distribution.
        stddev: its standard deviation.
        dtype: a float dtype (default ``floatx()``).
        seed: an int, a ``SeedGenerator`` or None (see the module docstring).

    Returns:
        A Tensor of ``shape``.
    """
    return _out(_rng(seed).normal(_value(mean), _value(stddev), _shape(shape)), dtype)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> Tensor:
    """Draws uniformly from ``[minval, maxval)``; arguments as :func:`normal`."""
    dtype = standardize_dtype(dtype)
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError("`keras.random.uniform` requires a floating point `dtype`. "
                         f"Received: dtype={dtype}")
    return _out(_rng(seed).uniform(_value(minval), _value(maxval), _shape(shape)), dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Normal draws, redrawn until within two standard deviations of the mean."""
    rng, shape = _rng(seed), _shape(shape)
    z = rng.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return _out(_value(mean) + _value(stddev) * z, dtype)


def randint(shape, minval, maxval, dtype="int32", seed=None) -> Tensor:
    """Integers drawn uniformly from ``[minval, maxval)``."""
    dtype = standardize_dtype(dtype)
    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise ValueError(f"`keras.random.randint` requires an integer `dtype`. "
                         f"Received: dtype={dtype}")
    return _out(_rng(seed).integers(_value(minval), _value(maxval), _shape(shape)), dtype)


def categorical(logits, num_samples, dtype="int32", seed=None) -> Tensor:
    """Draws class indices from unnormalised log-probabilities.

    Args:
        logits: ``(batch_size, num_classes)`` log-probabilities.
        num_samples: draws per row.
        dtype: an integer dtype.
        seed: as :func:`normal`.

    Returns:
        ``(batch_size, num_samples)`` class indices.
    """
    logits = np.asarray(_value(logits), dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError("`logits` should be a 2-D tensor with shape "
                         f"[batch_size, num_classes]. Received: logits={logits.shape}")
    # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits).
    gumbel = -np.log(-np.log(_rng(seed).uniform(
        np.finfo(np.float64).tiny, 1.0, (logits.shape[0], int(num_samples), logits.shape[1]))))
    return _out(np.argmax(logits[:, None, :] + gumbel, axis=-1), dtype)


def dropout(inputs, rate, noise_shape=None, seed=None) -> Tensor:
    """Inverted dropout of ``inputs`` (differentiable in ``inputs``)."""
    from lamina.ops.nn import dropout as _dropout

    if not 0 <= rate < 1:
        raise ValueError(f"Argument `rate` must be in [0, 1). Received: rate={rate}")
    return _dropout(inputs, rate, noise_shape=noise_shape, rng=_rng(seed))


def shuffle(x, axis=0, seed=None) -> Tensor:
    """A random permutation of ``x`` along ``axis``."""
    values = _value(x)
    perm = _rng(seed).permutation(values.shape[axis])
    return Tensor(np.take(values, perm, axis=axis))


def gamma(shape, alpha, dtype=None, seed=None) -> Tensor:
    """Draws from a Gamma distribution of concentration ``alpha`` and scale 1."""
    return _out(_rng(seed).gamma(_value(alpha), 1.0, _shape(shape)), dtype)


def beta(shape, alpha, beta, dtype=None, seed=None) -> Tensor:
    """Draws from a Beta(``alpha``, ``beta``) distribution."""
    return _out(_rng(seed).beta(_value(alpha), _value(beta), _shape(shape)), dtype)


def binomial(shape, counts, probabilities, dtype=None, seed=None) -> Tensor:
    """Successes in ``counts`` trials of probability ``probabilities`` (as floats)."""
    return _out(_rng(seed).binomial(np.asarray(_value(counts)).astype(np.int64),
                                    _value(probabilities), _shape(shape)), dtype)
