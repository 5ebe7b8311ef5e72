"""Compiled kernels (numba) for the keyed draws of :mod:`lamina.distribute.keys`.

Imported only when :func:`lamina.backend.compiled.pays`. The numpy path hashes a draw
in several whole-array passes (xor, two multiplies, two shift-xors, the compare, the
cast and the scale); here each element is hashed, compared and used in one pass, with
exactly the numpy path's bits. The 32-bit hash is emitted as 32-bit LLVM instructions
(:func:`_murmur`, :func:`_weyl`: wrapping as numpy's uint32 arithmetic does); written in
numba, ``uint32 * uint32`` is typed uint64 and LLVM kept the whole chain in 64-bit
lanes (3x slower). :class:`KeyedMask` is a dropout mask that is never built: the
Dropout primitive's forward and backward both hash it again in the pass that multiplies
(``v * 0`` or ``v * scale`` in ``v``'s dtype, as ``v * mask`` would: -0, nan).

Measured at (128, 512) float32 (medians, this 2-core AMD EPYC): the 32-bit hash 7 us
(numpy 58-93), the keep mask 9-10 us (numpy 63-90), ``x * mask`` with the mask hashed in
the same pass 10 us (numpy's ``x * mask`` alone: 8-9); ``normal`` 1.1 ms (numpy 2.8),
its ``log`` and ``cos`` staying numpy's. Splitting rows over the thread pool did not
pay (128x512: 9.6 us alone, 12.9 pooled; 1024x2048: 288 vs 296), so it is not done.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend import compiled

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * np.pi

#: numba helpers the kernels call: None until the first kernel compiles and
#: :func:`_numba_globals` replaces them (:class:`lamina.backend.compiled.kernel`).
_folded = _mix64 = _hash = None


def _numba_globals() -> dict:
    """The kernels' numba helpers (:class:`lamina.backend.compiled.kernel` merges them
    into this module when its first kernel compiles: importing the module, or running
    its kernels from the ahead-of-time library, does not import numba)."""
    import numba
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    helper = numba.njit(**compiled.NUMBA_OPTIONS)
    i32 = ir.IntType(32)

    @intrinsic
    def _murmur(typingctx, folded, counter):
        """MurmurHash3's 32-bit finaliser of ``folded ^ counter`` after its first
        shift-xor, in 32-bit instructions (numba would widen each product to 64 bits and
        LLVM keep the chain in 64-bit lanes: 3x slower)."""
        if folded != types.uint32 or counter != types.uint32:
            return None

        def codegen(context, builder, signature, args):
            z = builder.xor(args[0], args[1])
            z = builder.mul(z, ir.Constant(i32, 0x85EBCA6B))
            z = builder.xor(z, builder.lshr(z, ir.Constant(i32, 13)))
            z = builder.mul(z, ir.Constant(i32, 0xC2B2AE35))
            return builder.xor(z, builder.lshr(z, ir.Constant(i32, 16)))

        return types.uint32(types.uint32, types.uint32), codegen

    @intrinsic
    def _weyl(typingctx, j):
        """The column counter ``(j + 1) * 0x9E3779B9`` (mod 2**32), shift-xored by 16."""
        if not isinstance(j, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            c = args[0]
            if c.type.width > 32:
                c = builder.trunc(c, i32)
            elif c.type.width < 32:
                c = builder.zext(c, i32)
            c = builder.mul(builder.add(c, ir.Constant(i32, 1)), ir.Constant(i32, 0x9E3779B9))
            return builder.xor(c, builder.lshr(c, ir.Constant(i32, 16)))

        return types.uint32(j), codegen

    @helper
    def _folded(key):
        """A sample key's 32-bit fold, after the finaliser's first shift-xor (which
        distributes over the xor with the counter)."""
        f = np.uint32((key >> np.uint64(32)) ^ key)
        return np.uint32(f ^ (f >> np.uint32(16)))

    @helper
    def _mix64(z):
        """SplitMix64's finaliser (uint64 throughout: a Python int would make it
        float64)."""
        z = z ^ (z >> np.uint64(30))
        z = z * _M1
        z = z ^ (z >> np.uint64(27))
        z = z * _M2
        return z ^ (z >> np.uint64(31))

    @helper
    def _hash(f, j):
        """The hash of element ``j`` of the row whose folded key is ``f``."""
        return _murmur(f, _weyl(j))

    return {"_folded": _folded, "_mix64": _mix64, "_hash": _hash}


@compiled.kernel
def bits32_rows(keys, lo, hi, out):
    """``out[i] = _bits32(keys)[i]`` for rows ``lo:hi`` (``out``: uint32, (rows, inner))."""
    for i in range(lo, hi):
        f = _folded(keys[i])
        row = out[i]
        for j in range(row.shape[0]):
            row[j] = _hash(f, j)


@compiled.kernel
def keep_rows(keys, threshold, lo, hi, out):
    """``out[i] = _bits32(keys)[i] >= threshold`` for rows ``lo:hi`` (``out``: bool)."""
    for i in range(lo, hi):
        f = _folded(keys[i])
        row = out[i]
        for j in range(row.shape[0]):
            row[j] = _hash(f, j) >= threshold


@compiled.kernel
def uniform_rows(keys, lo, hi, out):
    """``out[i] = uniform(keys)[i]`` for rows ``lo:hi`` (``out``: float32): the top 24
    bits times 2**-24, both exact in float32."""
    scale = np.float32(2.0 ** -24)
    for i in range(lo, hi):
        f = _folded(keys[i])
        row = out[i]
        for j in range(row.shape[0]):
            row[j] = np.float32(_hash(f, j) >> np.uint32(8)) * scale


@compiled.kernel
def masked_scale_rows(v, keys, threshold, scale, lo, hi, out):
    """``out[i] = v[i] * mask[i]`` for rows ``lo:hi``, the mask being ``scale`` where
    the hash is ``>= threshold`` and 0 elsewhere (``scale`` and ``out`` in ``v``'s dtype;
    ``v * 0`` kept as a product: -0 and nan as numpy gives them)."""
    zero = scale - scale
    for i in range(lo, hi):
        f = _folded(keys[i])
        src = v[i]
        dst = out[i]
        for j in range(src.shape[0]):
            m = scale if _hash(f, j) >= threshold else zero
            dst[j] = src[j] * m


@compiled.kernel
def box_muller_inputs_rows(keys, lo, hi, u1, angle):
    """Rows ``lo:hi`` of :func:`lamina.distribute.keys.normal`'s ``u1`` (in (0, 1]) and
    ``2 * pi * u2`` (float64), from the 64-bit hashes: the conversions and the scaling
    by 2**-24 are exact, the product by ``2 * pi`` is numpy's one rounding."""
    step = 2.0 ** -24
    for i in range(lo, hi):
        key = keys[i]
        a = u1[i]
        b = angle[i]
        for j in range(a.shape[0]):
            bits = _mix64(key + np.uint64(j + 1) * _GOLDEN)
            a[j] = (np.float64(bits >> np.uint64(40)) + 1.0) * step
            b[j] = _TWO_PI * (np.float64((bits >> np.uint64(8)) & np.uint64(0xFFFFFF)) * step)


@compiled.kernel
def box_muller_rows(log_u1, cos_angle, lo, hi, out):
    """``out = float32(sqrt(-2 * log_u1) * cos_angle)`` for rows ``lo:hi`` (sqrt,
    products and the cast are correctly rounded, as in numpy)."""
    for i in range(lo, hi):
        a = log_u1[i]
        b = cos_angle[i]
        dst = out[i]
        for j in range(a.shape[0]):
            dst[j] = np.float32(np.sqrt(-2.0 * a[j]) * b[j])


def _rows(keys, shape):
    rows = int(shape[0])
    if rows != len(keys):  # the kernels index keys[i] unchecked; numpy's path raises too
        raise ValueError(f"`shape[0]` must be the number of keys ({len(keys)}). "
                         f"Received: shape={tuple(shape)}")
    return rows, math.prod(int(n) for n in shape[1:])


def bits32(keys: np.ndarray, shape) -> np.ndarray:
    """:func:`lamina.distribute.keys._bits32`, compiled."""
    rows, inner = _rows(keys, shape)
    out = np.empty((rows, inner), np.uint32)
    bits32_rows(keys, 0, rows, out)
    return out.reshape(shape)


def keep_mask(keys: np.ndarray, shape, threshold) -> np.ndarray:
    """``_bits32(keys, shape) >= threshold``, compiled."""
    rows, inner = _rows(keys, shape)
    out = np.empty((rows, inner), np.bool_)
    keep_rows(keys, np.uint32(threshold), 0, rows, out)
    return out.reshape(shape)


def uniform(keys: np.ndarray, shape) -> np.ndarray:
    """:func:`lamina.distribute.keys.uniform`, compiled."""
    rows, inner = _rows(keys, shape)
    out = np.empty((rows, inner), np.float32)
    uniform_rows(keys, 0, rows, out)
    return out.reshape(shape)


def normal(keys: np.ndarray, shape) -> np.ndarray:
    """:func:`lamina.distribute.keys.normal` with the hashing, the conversions and the
    final products compiled; ``log`` and ``cos`` stay numpy's own (numba's ``log``
    differs from numpy's SIMD one in the last bit of ~0.4% of the values)."""
    rows, inner = _rows(keys, shape)
    u1 = np.empty((rows, inner))
    angle = np.empty((rows, inner))
    box_muller_inputs_rows(keys, 0, rows, u1, angle)
    np.log(u1, out=u1)
    np.cos(angle, out=angle)
    out = np.empty((rows, inner), np.float32)
    box_muller_rows(u1, angle, 0, rows, out)
    return out.reshape(shape)


class KeyedMask:
    """A dropout mask of ``shape`` (0, or ``1/(1-rate)`` in ``dtype``) kept as its keys.

    ``multiply(v)`` returns what ``v * mask`` gives with the mask built by the numpy
    path (``keep_mask(...).astype(dtype) * dtype(1/(1-rate))``), bit for bit, hashing
    the mask again in the pass that multiplies. Only for ``v`` of ``shape`` and
    ``dtype`` (float32 or float64); anything else multiplies by the built mask.
    """

    __slots__ = ("keys", "shape", "threshold", "scale", "dtype", "_array")

    def __init__(self, keys, shape, threshold, rate, dtype):
        _rows(keys, shape)
        self.keys = keys
        self.shape = tuple(int(n) for n in shape)
        self.threshold = np.uint32(threshold)
        self.dtype = np.dtype(dtype)
        self.scale = self.dtype.type(1.0 / (1.0 - rate))
        self._array = None

    def array(self) -> np.ndarray:
        """The mask itself, as the numpy path builds it (built once, then kept)."""
        if self._array is None:
            mask = keep_mask(self.keys, self.shape, self.threshold).astype(self.dtype)
            mask *= self.scale
            self._array = mask
        return self._array

    def multiply(self, v: np.ndarray) -> np.ndarray:
        """``v * mask``, without building the mask (built for a ``v`` that broadcasts
        against it or has another dtype)."""
        if v.shape != self.shape or v.dtype != self.dtype:
            return v * self.array()
        rows = self.shape[0] if self.shape else 1
        flat = v.reshape(rows, -1) if v.size else v.reshape(rows, 0)
        out = np.empty(flat.shape, self.dtype)
        masked_scale_rows(flat, self.keys, self.threshold, self.scale, 0, rows, out)
        return out.reshape(self.shape)
