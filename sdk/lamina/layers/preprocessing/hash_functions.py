"""The string hashes Keras's preprocessing layers use, in pure Python.

Keras 3's ``Hashing``, ``HashedCrossing`` and the lookup layers' OOV buckets run
TensorFlow ops on every backend: ``tf.strings.to_hash_bucket_fast`` (FarmHash's
``Fingerprint64``, i.e. ``farmhashna::Hash64``), ``tf.strings.to_hash_bucket_strong``
(SipHash-2-4 keyed by the salt) and ``tf.sparse.cross_hashed`` (``FingerprintCat64``
over per-feature fingerprints, seeded with ``0xDECAFCAFFE``). The functions here give
the same 64-bit values so bucket indices match Keras's exactly (checked against
fixtures written by Keras + TensorFlow). Arithmetic is on Python ints masked to 64 bits.
"""

from __future__ import annotations

import numpy as np

_M = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F
_KMUL = 0xC6A4A7935BD1E995
CROSS_HASH_KEY = 0xDECAFCAFFE


def _fetch64(s: bytes, i: int) -> int:
    return int.from_bytes(s[i:i + 8], "little")


def _fetch32(s: bytes, i: int) -> int:
    return int.from_bytes(s[i:i + 4], "little")


def _rot(v: int, shift: int) -> int:
    return v if shift == 0 else ((v >> shift) | (v << (64 - shift))) & _M


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def _hash_len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _M
    a ^= a >> 47
    b = ((v ^ a) * mul) & _M
    b ^= b >> 47
    return (b * mul) & _M


def _len0to16(s: bytes) -> int:
    n = len(s)
    if n >= 8:
        mul = _K2 + n * 2
        a = (_fetch64(s, 0) + _K2) & _M
        b = _fetch64(s, n - 8)
        c = (_rot(b, 37) * mul + a) & _M
        d = ((_rot(a, 25) + b) * mul) & _M
        return _hash_len16(c, d, mul)
    if n >= 4:
        mul = _K2 + n * 2
        a = _fetch32(s, 0)
        return _hash_len16((n + (a << 3)) & _M, _fetch32(s, n - 4), mul)
    if n > 0:
        y = (s[0] + (s[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (s[n - 1] << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * _K2) ^ (z * _K0)) & _M) * _K2) & _M
    return _K2


def _len17to32(s: bytes) -> int:
    n = len(s)
    mul = _K2 + n * 2
    a = (_fetch64(s, 0) * _K1) & _M
    b = _fetch64(s, 8)
    c = (_fetch64(s, n - 8) * mul) & _M
    d = (_fetch64(s, n - 16) * _K2) & _M
    return _hash_len16((_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M,
                       (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)


def _len33to64(s: bytes) -> int:
    n = len(s)
    mul = _K2 + n * 2
    a = (_fetch64(s, 0) * _K2) & _M
    b = _fetch64(s, 8)
    c = (_fetch64(s, n - 8) * mul) & _M
    d = (_fetch64(s, n - 16) * _K2) & _M
    y = (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M
    z = _hash_len16(y, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)
    e = (_fetch64(s, 16) * mul) & _M
    f = _fetch64(s, 24)
    g = ((y + _fetch64(s, n - 32)) * mul) & _M
    h = ((z + _fetch64(s, n - 24)) * mul) & _M
    return _hash_len16((_rot((e + f) & _M, 43) + _rot(g, 30) + h) & _M,
                       (e + _rot((f + a) & _M, 18) + g) & _M, mul)


def _weak32(s: bytes, i: int, a: int, b: int):
    w, x, y, z = (_fetch64(s, i + k) for k in (0, 8, 16, 24))
    a = (a + w) & _M
    b = _rot((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rot(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def fingerprint64(data: bytes) -> int:
    """FarmHash ``Fingerprint64`` of ``data`` (TensorFlow's ``Fingerprint64``)."""
    s = bytes(data)
    n = len(s)
    if n <= 16:
        return _len0to16(s)
    if n <= 32:
        return _len17to32(s)
    if n <= 64:
        return _len33to64(s)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _M
    z = (_shift_mix((y * _K2 + 113) & _M) * _K2) & _M
    v, w = (0, 0), (0, 0)
    x = (x * _K2 + _fetch64(s, 0)) & _M
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    pos = 0
    while True:
        x = (_rot((x + y + v[0] + _fetch64(s, pos + 8)) & _M, 37) * _K1) & _M
        y = (_rot((y + v[1] + _fetch64(s, pos + 48)) & _M, 42) * _K1) & _M
        x ^= w[1]
        y = (y + v[0] + _fetch64(s, pos + 40)) & _M
        z = (_rot((z + w[0]) & _M, 33) * _K1) & _M
        v = _weak32(s, pos, (v[1] * _K1) & _M, (x + w[0]) & _M)
        w = _weak32(s, pos + 32, (z + w[1]) & _M, (y + _fetch64(s, pos + 16)) & _M)
        z, x = x, z
        pos += 64
        if pos == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    pos = last64
    w = ((w[0] + ((n - 1) & 63)) & _M, w[1])
    v = ((v[0] + w[0]) & _M, v[1])
    w = ((w[0] + v[0]) & _M, w[1])
    x = (_rot((x + y + v[0] + _fetch64(s, pos + 8)) & _M, 37) * mul) & _M
    y = (_rot((y + v[1] + _fetch64(s, pos + 48)) & _M, 42) * mul) & _M
    x ^= (w[1] * 9) & _M
    y = (y + v[0] * 9 + _fetch64(s, pos + 40)) & _M
    z = (_rot((z + w[0]) & _M, 33) * mul) & _M
    v = _weak32(s, pos, (v[1] * mul) & _M, (x + w[0]) & _M)
    w = _weak32(s, pos + 32, (z + w[1]) & _M, (y + _fetch64(s, pos + 16)) & _M)
    z, x = x, z
    return _hash_len16((_hash_len16(v[0], w[0], mul) + _shift_mix(y) * _K0 + z) & _M,
                       (_hash_len16(v[1], w[1], mul) + x) & _M, mul)


def siphash24(key, data: bytes) -> int:
    """SipHash-2-4 of ``data`` under the 128-bit key ``(k0, k1)`` (two uint64s)."""
    k0, k1 = (int(k) & _M for k in key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(v0, v1, v2, v3, count):
        for _ in range(count):
            v0 = (v0 + v1) & _M
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _M
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _M
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _M
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)
        return v0, v1, v2, v3

    s = bytes(data)
    n = len(s)
    full = n - n % 8
    for i in range(0, full, 8):
        m = _fetch64(s, i)
        v3 ^= m
        v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
        v0 ^= m
    last = int.from_bytes(s[full:], "little") | ((n & 0xFF) << 56)
    v3 ^= last
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
    v0 ^= last
    v2 ^= 0xFF
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 4)
    return v0 ^ v1 ^ v2 ^ v3


def _rotl(v: int, shift: int) -> int:
    return ((v << shift) | (v >> (64 - shift))) & _M


def fingerprint_cat64(fp1: int, fp2: int) -> int:
    """TensorFlow's ``FingerprintCat64``: combine two fingerprints (order matters)."""
    result = fp1 ^ _KMUL
    result ^= (_shift_mix((fp2 * _KMUL) & _M) * _KMUL) & _M
    result = (result * _KMUL) & _M
    result = (_shift_mix(result) * _KMUL) & _M
    return _shift_mix(result)


def as_bytes(value, encoding: str = "utf-8") -> bytes:
    """The bytes TensorFlow hashes for one value: UTF-8 text, or ``tf.as_string`` of ints.

    Floats are truncated toward zero first, as Keras's ``Hashing`` casts them to int64.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode(encoding)
    if isinstance(value, (bool, np.bool_)):
        return b"true" if value else b"false"  # tf.as_string of a bool
    return str(int(value)).encode()


def hash_buckets(values, num_buckets: int, salt=None) -> np.ndarray:
    """Bucket every element of ``values`` (any shape) into ``[0, num_buckets)`` as int64.

    Args:
        values: array of strings, bytes, ints or floats.
        num_buckets: number of buckets (positive).
        salt: None for FarmHash64, else a pair of ints keying SipHash-2-4.
    """
    array = np.asarray(values)
    cache = {}
    out = []
    for value in array.reshape(-1).tolist():
        key = as_bytes(value)
        bucket = cache.get(key)
        if bucket is None:  # each distinct value is hashed once (columns repeat a lot)
            digest = fingerprint64(key) if salt is None else siphash24(salt, key)
            bucket = cache[key] = digest % num_buckets
        out.append(bucket)
    return np.asarray(out, dtype="int64").reshape(array.shape)


def cross_hash(columns, num_buckets: int) -> np.ndarray:
    """``tf.sparse.cross_hashed`` of equal-length 1-D columns (one cross per row).

    String features are fingerprinted; integer features hash to their own value.
    """
    rows = []
    fingerprints = {}
    for row in zip(*[np.asarray(c).reshape(-1).tolist() for c in columns]):
        h = CROSS_HASH_KEY
        for value in row:
            if isinstance(value, (str, bytes)):
                key = as_bytes(value)
                if key not in fingerprints:
                    fingerprints[key] = fingerprint64(key)
                feature_hash = fingerprints[key]
            else:
                feature_hash = int(value) & _M
            h = fingerprint_cat64(h, feature_hash)
        rows.append(h % num_buckets if num_buckets > 0 else h % ((1 << 63) - 1))
    return np.asarray(rows, dtype="int64")
