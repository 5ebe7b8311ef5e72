"""Counter-based noise keyed by (seed, epoch, global sample index).

Inside ``fit`` every batch runs under :func:`batch_keys` (the epoch and the global row
index of each sample of the batch this process computes). Noise layers (Dropout and
its relatives) then draw the noise of sample ``i`` from a hash of ``(layer seed,
epoch, row[i], call, element)`` instead of from a sequential generator, so a sample
gets the same mask whichever replica computes it and whatever else is in its batch:
training with 1, 2 or 4 replicas draws exactly the same noise, and the global
generator (which draws the shuffle) is never consumed by noise.

A sample's key is SplitMix64's finaliser (Steele et al., 2014) of (stream, epoch,
call, index); its elements' values are MurmurHash3's 32-bit finaliser of the key xor
a Weyl counter (dropout masks, uniforms: 24 bits give a float32 in [0, 1)) or
SplitMix64 again (normals), vectorised in numpy. Where a compiled kernel pays
(:func:`lamina.backend.compiled.pays`: numba installed, a draw of at least
``MIN_ELEMENTS`` elements under ``LAMINA_KERNELS=auto``),
:mod:`lamina.distribute.keys_kernels` computes the same bits in one pass per draw, and
a Dropout multiplies by its mask without building it.
Outside ``fit`` (a direct ``layer(x, training=True)``), :func:`sample_keys` returns
None and layers use their sequential generator as before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math

import numpy as np

from lamina.backend import compiled

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_EPOCH = np.uint64(0xD1B54A32D192ED03)
_CALL = np.uint64(0x8CB92BA72F3D8DD7)
_GOLDEN32 = np.uint32(0x9E3779B9)
_F1 = np.uint32(0x85EBCA6B)
_F2 = np.uint32(0xC2B2AE35)

_MASK64 = (1 << 64) - 1

_CONTEXT: dict | None = None


@contextlib.contextmanager
def batch_keys(epoch: int, rows, batch: int | None = None):
    """Run a batch whose samples are the global rows ``rows`` of epoch ``epoch``.

    Args:
        epoch: the epoch index.
        rows: int array (or slice) of the samples' indices in the training data.
        batch: the size of the global batch ``rows`` belong to, when this process
            computes only part of it (a data-parallel replica); None: ``len(rows)``.
            Whether a draw's compiled kernel pays (:func:`lamina.backend.compiled.pays`)
            is decided on the global batch's elements, so a replica takes the path
            local ``fit`` takes for the same batch (the bits are the same either way).

    Raises:
        ValueError: when ``batch`` is smaller than ``len(rows)`` (naming it).
    """
    global _CONTEXT
    if isinstance(rows, slice):
        rows = np.arange(rows.start or 0, rows.stop, rows.step or 1)
    rows = np.asarray(rows, np.uint64)
    if batch is not None and int(batch) < len(rows):
        raise ValueError(f"batch must be at least len(rows)={len(rows)}. Received: "
                         f"batch={batch}")
    previous = _CONTEXT
    _CONTEXT = {"epoch": int(epoch), "rows": rows, "calls": {},
                "batch": len(rows) if batch is None else int(batch)}
    try:
        yield
    finally:
        _CONTEXT = previous


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on a uint64 array (wrapping arithmetic)."""
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


@functools.lru_cache(maxsize=4096)
def stream_key(seed: int, name: str) -> int:
    """A 64-bit stream key from a seed and a name (cached: layers ask every batch)."""
    digest = hashlib.blake2b(f"{int(seed)}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def layer_keys(layer, batch: int) -> np.ndarray | None:
    """:func:`sample_keys` of ``layer``'s stream, named by its ``SeedGenerator``'s
    ``counter_key`` (its seed, or the global seed and its creation rank), so every
    replica of a model, and the same model built twice after one seed, agree."""
    if _CONTEXT is None:
        return None
    seed, rank = layer.seed_generator.counter_key
    return sample_keys(stream_key(seed, str(rank)), batch)


def noise_shape_of(shape, noise_shape) -> tuple:
    """``noise_shape`` with ``None`` entries taken from ``shape`` (Keras's rule)."""
    if noise_shape is None:
        return tuple(shape)
    return tuple(n if n is not None else shape[i] for i, n in enumerate(noise_shape))


def sample_keys(stream: int, batch: int) -> np.ndarray | None:
    """One 64-bit key per sample of the current batch for the layer stream ``stream``.

    Returns None outside :func:`batch_keys` or when the batch does not have the rows'
    length (the layer then falls back to its sequential generator). A layer called
    twice in one batch gets fresh keys on the second call.
    """
    context = _CONTEXT
    if context is None or len(context["rows"]) != batch:
        return None
    call = context["calls"].get(stream, 0)
    context["calls"][stream] = call + 1
    base = _mix_int(stream ^ ((context["epoch"] + 1) * int(_EPOCH) & _MASK64))
    base = _mix_int(base ^ ((call + 1) * int(_CALL) & _MASK64))
    with np.errstate(over="ignore"):
        return _mix(context["rows"] * _GOLDEN + np.uint64(base))


def _mix_int(z: int) -> int:
    """:func:`_mix` of one 64-bit Python int (same bits, without numpy's per-call cost)."""
    z ^= z >> 30
    z = z * int(_M1) & _MASK64
    z ^= z >> 27
    z = z * int(_M2) & _MASK64
    return z ^ (z >> 31)


def _bits(keys: np.ndarray, shape) -> np.ndarray:
    """Hashed 64-bit values, one per element of ``shape`` (``shape[0] == len(keys)``)."""
    inner = math.prod(int(n) for n in shape[1:])
    with np.errstate(over="ignore"):
        counters = np.arange(1, inner + 1, dtype=np.uint64) * _GOLDEN
        z = keys[:, None] + counters[None, :]
        return _mix(z).reshape(shape)


def _bits32(keys: np.ndarray, shape) -> np.ndarray:
    """Hashed 32-bit values (MurmurHash3's finaliser of the sample key's 32-bit fold
    xor a Weyl counter): a third of the 64-bit cost, as fast as a sequential draw.

    The finaliser's first ``z ^= z >> 16`` distributes over the xor of row and column
    terms, so it is applied to the (small) row and column vectors before broadcasting;
    the remaining shifts reuse one scratch array.
    """
    inner = math.prod(int(n) for n in shape[1:])
    folded = ((keys >> np.uint64(32)) ^ keys).astype(np.uint32)
    folded ^= folded >> np.uint32(16)
    with np.errstate(over="ignore"):
        counters = np.arange(1, inner + 1, dtype=np.uint32) * _GOLDEN32
        counters ^= counters >> np.uint32(16)
        z = folded[:, None] ^ counters[None, :]
        tmp = np.empty_like(z)
        z *= _F1
        np.right_shift(z, np.uint32(13), out=tmp)
        z ^= tmp
        z *= _F2
        np.right_shift(z, np.uint32(16), out=tmp)
        z ^= tmp
    return z.reshape(shape)


def _kernels(keys, shape):
    """:mod:`lamina.distribute.keys_kernels` when a compiled kernel pays for a draw of
    ``shape`` (:func:`lamina.backend.compiled.pays`) and the keys are the uint64 array
    :func:`sample_keys` gives, else None: numpy's path.

    A replica's draw of its part of a global batch counts the global batch's elements
    (:func:`batch_keys`'s ``batch``): with 2 replicas of the benchmark MLP (batch 128),
    each replica's (64, 512) Dropout is below ``MIN_ELEMENTS`` by itself, and numpy's
    path cost it ~0.2-0.3 ms of a ~4.5 ms step (``bench/replica_step_profile.py``).
    """
    if keys.dtype != np.uint64 or keys.ndim != 1:
        return None
    elements = math.prod(int(n) for n in shape)
    context = _CONTEXT
    if context is not None and len(keys) == len(context["rows"]) and len(keys):
        elements = elements // len(keys) * context["batch"]
    if not compiled.pays(elements):
        return None
    from lamina.distribute import keys_kernels

    return keys_kernels


def uniform(keys: np.ndarray, shape) -> np.ndarray:
    """float32 uniforms in [0, 1) of ``shape``; row ``i`` depends only on ``keys[i]``."""
    kernels = _kernels(keys, shape)
    if kernels is not None:
        return kernels.uniform(keys, shape)
    return (_bits32(keys, shape) >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)


def _threshold(rate: float) -> np.uint32:
    """The 32-bit hash value from which an element is kept: ``uniform >= rate`` compared
    on the integers (``rate`` to 2**-24)."""
    return np.uint32(min(int(round(rate * 2 ** 24)), 2 ** 24 - 1) << 8)


def keep_mask(keys: np.ndarray, shape, rate: float) -> np.ndarray:
    """Boolean mask of ``shape``, True with probability ``1 - rate`` (per element, to
    2**-24): ``uniform >= rate`` compared on the integers."""
    kernels = _kernels(keys, shape)
    if kernels is not None:
        return kernels.keep_mask(keys, shape, _threshold(rate))
    return _bits32(keys, shape) >= _threshold(rate)


def dropout_mask(keys: np.ndarray, shape, rate: float, dtype):
    """Inverted dropout's multipliers of ``shape``: 0, or ``1/(1-rate)`` in ``dtype``.

    An array on numpy's path; with compiled kernels (float32/float64) a
    :class:`~lamina.distribute.keys_kernels.KeyedMask` that the Dropout primitive
    multiplies by without building it (same bits).
    """
    dtype = np.dtype(dtype)
    kernels = _kernels(keys, shape)
    if kernels is not None and dtype in (np.float32, np.float64):
        return kernels.KeyedMask(keys, shape, _threshold(rate), rate, dtype)
    mask = keep_mask(keys, shape, rate).astype(dtype)
    mask *= np.asarray(1.0 / (1.0 - rate), dtype=dtype)
    return mask


def normal(keys: np.ndarray, shape) -> np.ndarray:
    """Standard normal float32 values of ``shape`` (Box-Muller on two 24-bit halves)."""
    kernels = _kernels(keys, shape)
    if kernels is not None:
        return kernels.normal(keys, shape)
    bits = _bits(keys, shape)
    u1 = ((bits >> np.uint64(40)).astype(np.float64) + 1.0) * 2.0 ** -24  # (0, 1]
    u2 = ((bits >> np.uint64(8)) & np.uint64(0xFFFFFF)).astype(np.float64) * 2.0 ** -24
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).astype(np.float32)
