"""Shape and indexing ops: views, joins, gathers. Gradients scatter back through the
primitives (``GetItem``, ``Take``, ``Concatenate``, ``Pad``...)."""

from __future__ import annotations

import numpy as np

from lamina.backend import primitives as _p
from lamina.backend.tensor import Tensor
from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.core import convert_to_tensor
from lamina.ops.numpy_dtypes import as_dtype, result_dtype
from lamina.ops.numpy_pad import pad_modes

__all__ = [
    "broadcast_to", "concatenate", "expand_dims", "flip", "getitem", "meshgrid", "moveaxis",
    "pad", "repeat", "reshape", "roll", "split", "squeeze", "stack", "swapaxes", "take",
    "tile", "transpose", "unstack",
]


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


def broadcast_to(x, shape):
    return _p.BroadcastTo.apply(x, tuple(shape))


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return _p.GetItem.apply(x, index)


def concatenate(xs, axis=0):
    dtypes = {np.asarray(_data(x)).dtype for x in xs}
    if len(dtypes) > 1:
        # Keras's promotion: integers joined with floats become the float dtype.
        target = result_dtype(*xs)
        xs = [as_dtype(x, target) for x in xs]
    return _p.Concatenate.apply(*xs, axis=axis)


def stack(x, axis=0):
    """Join the tensors of the sequence ``x`` along a new axis."""
    return concatenate([expand_dims(t, axis) for t in x], axis=axis)


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


def pad(x, pad_width, mode="constant", constant_values=None):
    """Pad ``x`` as ``np.pad`` does; see :mod:`lamina.ops.numpy_pad` for the modes."""
    return pad_modes(x, pad_width, mode, constant_values)


def take(x, indices, axis=None):
    indices = np.asarray(_data(indices))
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return _p.Take.apply(x, indices.astype(np.intp, copy=False), axis=axis % len(shape(x)))


def flip(x, axis=None):
    """Reverse the order of elements along ``axis`` (every axis when None)."""
    ndim = len(shape(x))
    axes = range(ndim) if axis is None else [axis] if isinstance(axis, int) else axis
    index = [slice(None)] * ndim
    for a in axes:
        index[a] = slice(None, None, -1)
    return getitem(x, tuple(index))


def roll(x, shift, axis=None):
    """Shift elements along ``axis`` cyclically (of the flattened ``x`` when None)."""
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, 0), shape(x))
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    shifts, axes = np.broadcast_arrays(shifts, axes)
    for s, a in zip(shifts.tolist(), axes.tolist()):
        n = shape(x)[a]
        x = take(x, (np.arange(n) - s) % n, axis=a) if n else x
    return x if isinstance(x, Tensor) else convert_to_tensor(x)


def unstack(x, num=None, axis=0):
    """The slices of ``x`` along ``axis``, as a list of ``shape(x)[axis]`` tensors."""
    n = shape(x)[axis]
    if num is not None and num != n:
        raise ValueError(f"num must equal shape(x)[axis]={n}. Received: num={num}")
    return [take(x, i, axis=axis) for i in range(n)]


def meshgrid(*x, indexing="xy"):
    """Coordinate grids from 1-D inputs, as ``np.meshgrid`` (differentiable)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"indexing must be 'xy' or 'ij'. Received: indexing={indexing!r}")
    sizes = [int(np.prod(shape(v))) for v in x]
    if indexing == "xy" and len(x) > 1:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    grids = []
    for i, v in enumerate(x):
        axis = {0: 1, 1: 0}.get(i, i) if indexing == "xy" and len(x) > 1 else i
        view = [1] * len(x)
        view[axis] = -1
        grids.append(broadcast_to(reshape(v, view), sizes))
    return grids


export(globals(), __all__)
