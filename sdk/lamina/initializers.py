"""Weight initializers with Keras's names, defaults and formulas.

Each initializer is called as ``init(shape, dtype=None)`` and returns a float32 (floatx)
ndarray. Random ones draw from the global generator (``lamina.utils.set_random_seed``)
unless given a ``seed``, in which case every call returns the same values (as in Keras).
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend import floatx
from lamina.backend.random import get_rng
from lamina.utils.object_family import ObjectFamily


def compute_fans(shape, input_axes=None, output_axes=None) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)``; conv kernels count the receptive field.

    Args:
        shape: the weight shape (e.g. ``(in, out)`` or ``(kh, kw, in, out)``).
        input_axes, output_axes: when both are given (as ``EinsumDense`` does), the fans
            are the products of ``shape`` over these axes instead.
    """
    shape = tuple(int(d) for d in shape)
    if input_axes is not None and output_axes is not None:
        return (math.prod(shape[a] for a in input_axes),
                math.prod(shape[a] for a in output_axes))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``__call__(shape, dtype=None)`` returns an ndarray."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _Seeded(Initializer):
    def __init__(self, seed=None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed) if self.seed is not None else get_rng()

    def get_config(self) -> dict:
        return {"seed": self.seed}


def _dtype(dtype):
    return np.dtype(dtype or floatx())


def _truncated_normal(rng, shape, mean, stddev, dtype):
    """Normal samples redrawn until within two standard deviations (as Keras)."""
    out = rng.standard_normal(size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return (out * stddev + mean).astype(dtype)


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, dtype=_dtype(dtype))


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        return np.ones(shape, dtype=_dtype(dtype))


class Constant(Initializer):
    """Every element equal to ``value`` (default 0.0).

    Args:
        value: a scalar.
    """

    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype=_dtype(dtype))

    def get_config(self) -> dict:
        return {"value": self.value}


class RandomNormal(_Seeded):
    """Normal distribution (defaults ``mean=0.0``, ``stddev=0.05``).

    Args:
        mean: float.
        stddev: float.
        seed: int or None.
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        return self._rng().normal(self.mean, self.stddev, size=shape).astype(_dtype(dtype))

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """Normal distribution truncated (resampled) beyond two standard deviations.

    Args:
        mean: float, default 0.0.
        stddev: float, default 0.05.
        seed: int or None.
    """

    def __call__(self, shape, dtype=None):
        return _truncated_normal(self._rng(), shape, self.mean, self.stddev, _dtype(dtype))


class RandomUniform(_Seeded):
    """Uniform distribution on ``[minval, maxval)`` (defaults -0.05, 0.05).

    Args:
        minval: float.
        maxval: float.
        seed: int or None.
    """

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        return self._rng().uniform(self.minval, self.maxval, size=shape).astype(_dtype(dtype))

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(_Seeded):
    """Samples scaled to the weight's fan: ``scale / max(1, fan)`` is the variance.

    Args:
        scale: positive float, default 1.0.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"truncated_normal"``, ``"untruncated_normal"`` or ``"uniform"``.
        seed: int or None.
        input_axes, output_axes: optional lists of axes of the weight whose sizes
            multiply to the fan-in and fan-out (used only when both are given).

    Raises:
        ValueError: for a non-positive scale or an unknown mode/distribution.
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 input_axes=None, output_axes=None):
        super().__init__(seed)
        self.input_axes = None if input_axes is None else [int(a) for a in input_axes]
        self.output_axes = None if output_axes is None else [int(a) for a in output_axes]
        if scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError("Invalid `mode` argument: expected one of {'fan_in', 'fan_out', "
                             f"'fan_avg'}}. Received: mode={mode}")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise ValueError("Invalid `distribution` argument: expected one of {'uniform', "
                             "'truncated_normal', 'untruncated_normal'}. Received: "
                             f"distribution={distribution}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}
        scale = self.scale / max(1.0, fan[self.mode])
        rng, dtype = self._rng(), _dtype(dtype)
        if self.distribution == "truncated_normal":
            # 0.8796... is the stddev of a standard normal truncated to (-2, 2).
            return _truncated_normal(rng, shape, 0.0, math.sqrt(scale) / 0.87962566103423978,
                                     dtype)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(scale), size=shape).astype(dtype)
        limit = math.sqrt(3.0 * scale)
        return rng.uniform(-limit, limit, size=shape).astype(dtype)

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


_PRESET_ARGS = """

    Args:
        seed: int or None.
        input_axes, output_axes: optional axes giving the fans (see VarianceScaling).
"""


def _preset(name, scale, mode, distribution, doc):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        VarianceScaling.__init__(self, scale=scale, mode=mode, distribution=distribution,
                                 seed=seed, input_axes=input_axes, output_axes=output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__doc__": doc + _PRESET_ARGS})


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform",
                        "Uniform in ``±sqrt(6 / (fan_in + fan_out))``.")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "Truncated normal, stddev ``sqrt(2 / (fan_in + fan_out))``.")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform",
                       "Uniform in ``±sqrt(3 / fan_in)``.")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal",
                      "Truncated normal, stddev ``sqrt(1 / fan_in)``.")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform",
                    "Uniform in ``±sqrt(6 / fan_in)``.")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal",
                   "Truncated normal, stddev ``sqrt(2 / fan_in)``.")


class Orthogonal(_Seeded):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal matrix.

    Args:
        gain: multiplicative factor, default 1.0.
        seed: int or None.
    """

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) < 2:
            raise ValueError("The tensor to initialize must be at least two-dimensional. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(_dtype(dtype))

    def get_config(self) -> dict:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """``gain`` times the identity matrix (2D shapes only).

    Args:
        gain: multiplicative factor, default 1.0.
    """

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError("Identity matrix initializer can only be used for 2D matrices. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        return (self.gain * np.eye(*shape)).astype(_dtype(dtype))

    def get_config(self) -> dict:
        return {"gain": self.gain}


ALL_OBJECTS = (Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal,
               VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform,
               LecunNormal, Orthogonal, Identity)
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "normal": RandomNormal, "random_uniform": RandomUniform, "uniform": RandomUniform,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
    "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "identity": Identity, "OrthogonalInitializer": Orthogonal,
    "IdentityInitializer": Identity, "zero": Zeros, "one": Ones,
})
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal, identity = VarianceScaling, Orthogonal, Identity
OrthogonalInitializer, IdentityInitializer = Orthogonal, Identity
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal, lecun_uniform, lecun_normal = HeUniform, HeNormal, LecunUniform, LecunNormal


from lamina.initializers_stft import (  # noqa: E402, F401  (it subclasses Initializer)
    STFT,
    STFTInitializer,
    stft,
)

ALL_OBJECTS_DICT.update({"STFT": STFT, "STFTInitializer": STFT, "stft": STFT})

_FAMILY = ObjectFamily("initializer", "keras.initializers", ALL_OBJECTS_DICT, Initializer)


def serialize(initializer):
    """The Keras config envelope of ``initializer`` (None for None).

    Args:
        initializer: a initializer instance (or None).

    Returns:
        ``{"module", "class_name", "config", "registered_name"}``, or None.
    """
    return _FAMILY.serialize(initializer)


deserialize = _FAMILY.deserialize
get = _FAMILY.get
