"""The STFT kernel initializer and the window functions it and the audio layers use.

Windows follow ``scipy.signal.get_window``: ``periodic=True`` (scipy's ``fftbins``) gives
the DFT-even window, i.e. the symmetric window of length ``n + 1`` without its last
point. Supported names: hann, hamming, blackman, bartlett, boxcar (and scipy's aliases).
"""

from __future__ import annotations

import numpy as np

from lamina.backend import floatx
from lamina.initializers import Initializer

_COSINE = {"hann": (0.5, 0.5), "hamming": (0.54, 0.46), "blackman": (0.42, 0.5, 0.08)}
_ALIASES = {"hann": "hann", "hanning": "hann", "han": "hann", "hamming": "hamming",
            "hamm": "hamming", "ham": "hamming", "blackman": "blackman", "black": "blackman",
            "blk": "blackman", "bartlett": "bartlett", "bart": "bartlett", "brt": "bartlett",
            "boxcar": "boxcar", "box": "boxcar", "ones": "boxcar", "rect": "boxcar",
            "rectangular": "boxcar"}


def get_window(window, length: int, periodic: bool = True) -> np.ndarray:
    """A window of ``length`` points as float64 (``scipy.signal.get_window``'s values).

    Args:
        window: a window name.
        length: number of points.
        periodic: the DFT-even window (scipy's default) instead of the symmetric one.

    Raises:
        ValueError: for an unknown window name.
    """
    name = _ALIASES.get(window) if isinstance(window, str) else None
    if name is None:
        raise ValueError(f"Unknown window type. Supported windows: {sorted(set(_ALIASES))}. "
                         f"Received: window={window!r}")
    if length <= 1:
        return np.ones(max(length, 0))
    m = length + 1 if periodic else length
    n = np.arange(m)
    if name == "boxcar":
        w = np.ones(m)
    elif name == "bartlett":
        w = np.where(n <= (m - 1) / 2.0, 2.0 * n / (m - 1), 2.0 - 2.0 * n / (m - 1))
    else:
        w = np.zeros(m)
        for k, a in enumerate(_COSINE[name]):
            w += (-1) ** k * a * np.cos(2 * np.pi * k * n / (m - 1))
    return w[:length]


def _check_window(window):
    if isinstance(window, str):
        get_window(window, 1)


class STFT(Initializer):
    """Kernels of a Short-Time Fourier Transform as a convolution (``STFTSpectrogram``).

    For a kernel of shape ``(frame_length, 1, bins)`` the value at ``(t, 0, f)`` is
    ``cos`` (``side="real"``) or ``sin`` (``"imag"``) of ``-2 pi t f / (2 (bins - 1))``,
    times the window, divided by the window's scale.

    Args:
        side: ``"real"`` or ``"imag"``.
        window: a window name, an array of ``frame_length`` values, or None.
        scaling: ``"density"`` (divide by ``sqrt(sum(w**2))``), ``"spectrum"`` (by
            ``sum(|w|)``) or None.
        periodic: use the periodic (DFT-even) window.

    Example:
        >>> from lamina import initializers
        >>> initializers.STFT("real", window=None, scaling=None)((4, 1, 3))[:, 0, 0]
        array([1., 1., 1., 1.], dtype=float32)
    """

    def __init__(self, side="real", window="hann", scaling="density", periodic=False):
        if side not in ("real", "imag"):
            raise ValueError(f"side should be 'real' or 'imag', not {side}")
        _check_window(window)
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError("Scaling is invalid, it must be `None`, 'density' or 'spectrum'. "
                             f"Received scaling={scaling}")
        self.side = side
        self.window = window
        self.scaling = scaling
        self.periodic = periodic

    def __call__(self, shape, dtype=None):
        dtype = np.dtype(dtype or floatx())
        frame_length, _, bins = shape
        win, scale = None, 1.0
        if self.window is not None:
            win = (get_window(self.window, frame_length, self.periodic)
                   if isinstance(self.window, str) else np.asarray(self.window, "float64"))
            if win.ndim != 1 or win.shape[-1] != frame_length:
                raise ValueError("The shape of `window` must be equal to [frame_length]."
                                 f"Received: window shape={win.shape}")
            win = win.reshape(frame_length, 1, 1)
            if self.scaling == "density":
                scale = np.sqrt(np.sum(np.square(win)))
            elif self.scaling == "spectrum":
                scale = np.sum(np.abs(win))
        freq = np.arange(bins).reshape(1, 1, bins) / ((bins - 1) * 2)
        time = np.arange(frame_length).reshape(frame_length, 1, 1)
        args = -2 * time * freq * np.pi
        kernel = np.cos(args) if self.side == "real" else np.sin(args)
        if win is not None:
            kernel = kernel * win / scale
        return kernel.astype(dtype)

    def get_config(self):
        window = self.window.tolist() if isinstance(self.window, np.ndarray) else self.window
        return {"side": self.side, "window": window, "periodic": self.periodic,
                "scaling": self.scaling}


STFTInitializer = STFT
stft = STFT
