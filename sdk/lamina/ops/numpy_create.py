"""Constructors, window functions, introspection, ``vectorize`` and ``slogdet`` of
``keras.ops.numpy``.

Constructors and windows return ``floatx()`` Tensors unless given a ``dtype``, and
carry no gradient. ``ndim`` and ``size`` return Python ints, as Keras's do.
"""

from __future__ import annotations

import re

import numpy as np

from lamina.backend import linalg as _l
from lamina.backend.config import floatx, standardize_dtype
from lamina.backend.tensor import Tensor
from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape as _shape
from lamina.ops.core import convert_to_tensor
from lamina.ops.manipulation import broadcast_to, getitem, reshape, stack
from lamina.ops.numpy_dtypes import as_dtype, float_result_dtype
from lamina.ops.operation import dispatch_symbolic

__all__ = [
    "array", "bartlett", "blackman", "empty", "empty_like", "geomspace", "hamming",
    "hanning", "kaiser", "logspace", "ndim", "size", "slogdet", "tri", "vectorize",
]


def _dtype(dtype):
    return standardize_dtype(dtype) if dtype is not None else floatx()


def array(x, dtype=None):
    """``x`` as a Tensor (``convert_to_tensor``); Python ints become int32, as in Keras."""
    if dtype is None and not hasattr(x, "dtype") and np.asarray(x).dtype == np.int64:
        dtype = "int32"
    return convert_to_tensor(x, dtype=dtype)


def empty(shape, dtype=None):
    """A tensor of ``shape`` whose values are not meant to be read (zeros, here)."""
    return constant(np.zeros(shape, dtype=_dtype(dtype)))


def empty_like(x, dtype=None):
    """:func:`empty` with ``x``'s shape (and dtype, unless ``dtype`` is given)."""
    return constant(np.zeros_like(np.asarray(_data(x)),
                                  dtype=None if dtype is None else standardize_dtype(dtype)))


def tri(N, M=None, k=0, dtype=None):  # noqa: N803 - Keras's names
    """An ``N x M`` matrix of ones on and below the ``k``-th diagonal."""
    return constant(np.tri(N, M, k, dtype=_dtype(dtype)))


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """``num`` numbers spaced evenly on a log scale from ``start`` to ``stop``."""
    out = np.geomspace(_data(start), _data(stop), num, endpoint=endpoint, axis=axis)
    return constant(out.astype(_dtype(dtype)))


def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0):
    """``base ** linspace(start, stop, num)``."""
    out = np.logspace(_data(start), _data(stop), num, endpoint=endpoint, base=_data(base),
                      axis=axis)
    dt = np.dtype(_dtype(dtype))
    # Integer dtypes round: 10.0 ** 2 may come out as 99.99999999999997.
    return constant((np.round(out) if dt.kind in "iu" else out).astype(dt))


# -- windows -------------------------------------------------------------------------------
def _window(fn, x, *args):
    return constant(fn(int(_data(x)), *args).astype(floatx()))


def bartlett(x):
    """The Bartlett (triangular) window of ``x`` points."""
    return _window(np.bartlett, x)


def blackman(x):
    """The Blackman window of ``x`` points."""
    return _window(np.blackman, x)


def hamming(x):
    """The Hamming window of ``x`` points."""
    return _window(np.hamming, x)


def hanning(x):
    """The Hann window of ``x`` points."""
    return _window(np.hanning, x)


def kaiser(x, beta):
    """The Kaiser window of ``x`` points with shape parameter ``beta``."""
    return _window(np.kaiser, x, float(_data(beta)))


# -- introspection (not ops: plain Python ints, also for symbolic tensors) -----------------
def ndim(x) -> int:
    """The number of axes of ``x``."""
    return len(_shape(x))


def size(x):
    """The number of elements of ``x`` (None when a size is unknown)."""
    s = _shape(x)
    return None if any(d is None for d in s) else int(np.prod(s, dtype=np.int64))


# -- linear algebra ------------------------------------------------------------------------
def slogdet(x):
    """Sign and natural log of the absolute determinant of (batched) square matrices.

    Returns:
        ``(sign, logabsdet)``: ``sign`` is -1, 0 or 1 (no gradient); ``logabsdet`` is
        differentiable (``-inf`` for singular matrices).
    """
    x = as_dtype(x, float_result_dtype(x))
    s = _shape(x)
    if len(s) < 2 or s[-1] != s[-2]:
        raise ValueError(f"slogdet takes (batched) square matrices. Received: shape={s}")
    sign = np.linalg.slogdet(np.asarray(_data(x)))[0]
    return constant(np.asarray(sign, dtype=x.dtype)), _l.LogDet.apply(x)


# -- vectorize -----------------------------------------------------------------------------
_ARGS = re.compile(r"\(([^()]*)\)")


def _core_dims(signature):
    if signature is None:
        return None, None
    try:
        inputs, outputs = signature.replace(" ", "").split("->")
    except ValueError:
        raise ValueError("signature must look like '(m,n),(n)->(m)'. Received: "
                         f"signature={signature!r}") from None

    def count(part):
        return [len([d for d in g.split(",") if d]) for g in _ARGS.findall(part)]

    return count(inputs), count(outputs)


def vectorize(pyfunc, *, excluded=None, signature=None):
    """Wrap ``pyfunc`` to map it over the leading (broadcast) axes of its tensor arguments.

    ``pyfunc`` receives Tensor slices (scalars, or the core dimensions named by a
    ``signature`` such as ``"(n),(n)->()"``) and is called once per position; the
    results are stacked, so gradients flow through ``pyfunc``'s ops.

    Args:
        pyfunc: function of tensors.
        excluded: positions or names of arguments passed through unchanged.
        signature: generalized-ufunc signature giving the core dimensions.

    Returns:
        The vectorized function.
    """
    excluded = set(excluded or ())
    in_core, out_core = _core_dims(signature)

    def vectorized(*args, **kwargs):
        mapped = [i for i in range(len(args)) if i not in excluded]
        names = [k for k in kwargs if k not in excluded]
        tensors = [args[i] for i in mapped] + [kwargs[k] for k in names]
        cores = in_core if in_core is not None else [0] * len(tensors)
        if len(cores) != len(tensors):
            raise ValueError(f"signature={signature!r} names {len(cores)} inputs. Received: "
                             f"{len(tensors)} mapped arguments")
        tensors = [as_dtype(t, np.asarray(_data(t)).dtype) for t in tensors]
        loops = [tuple(_shape(t))[:len(_shape(t)) - c] for t, c in zip(tensors, cores)]
        loop = np.broadcast_shapes(*loops)
        tensors = [broadcast_to(t, loop + tuple(_shape(t))[len(_shape(t)) - c:])
                   for t, c in zip(tensors, cores)]
        results = []
        for position in np.ndindex(loop):
            parts = [getitem(t, position + (Ellipsis,)) for t in tensors]
            call_args, call_kwargs = list(args), dict(kwargs)
            for i, part in zip(mapped, parts):
                call_args[i] = part
            for k, part in zip(names, parts[len(mapped):]):
                call_kwargs[k] = part
            results.append(pyfunc(*call_args, **call_kwargs))
        multiple = out_core is not None and len(out_core) > 1
        if not results:
            raise ValueError("vectorize needs at least one position to map over. Received: "
                             f"loop shape {loop}")
        columns = list(zip(*results)) if multiple else [results]
        outs = [reshape(stack([convert_to_tensor(r) if not isinstance(r, Tensor) else r
                               for r in col]), loop + tuple(_shape(col[0])))
                for col in columns]
        return tuple(outs) if multiple else outs[0]

    vectorized.__name__ = f"vectorized_{getattr(pyfunc, '__name__', 'function')}"
    # Calls on symbolic tensors record a node of the functional graph, as every op's do.
    return dispatch_symbolic(vectorized)


export(globals(), [n for n in __all__ if n not in ("ndim", "size", "vectorize")])
