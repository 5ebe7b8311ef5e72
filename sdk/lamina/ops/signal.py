"""Fourier transforms and short-time Fourier transforms with Keras's names.

Complex values travel as ``(real, imag)`` pairs of float Tensors, as in Keras. The
transforms are the FFT primitives of :mod:`lamina.backend.fft` (numpy's FFT, computed in
complex128 and cast back to the input's dtype, with FFT-based VJPs); ``stft`` and
``istft`` are composed from them, framing (``getitem``) and overlap-add (``ScatterAdd``).
"""

from __future__ import annotations

import numpy as np

from lamina.backend import fft as _fft
from lamina.backend import primitives as _p
from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape as shape
from lamina.ops.core import cast, convert_to_tensor
from lamina.ops.manipulation import getitem, pad, reshape

__all__ = [
    "extract_sequences", "fft", "fft2", "ifft2", "irfft", "istft", "rfft", "stft",
    "view_as_complex", "view_as_real",
]


def _pair(x):
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError("Input `x` should be a tuple of two tensors - real and imaginary."
                         f"Received: x={x!r}")
    real, imag = convert_to_tensor(x[0]), convert_to_tensor(x[1])
    if real.shape != imag.shape:
        raise ValueError(
            "Input `x` should be a tuple of two tensors - real and imaginary. Both the real "
            "and imaginary parts should have the same shape. Received: x[0].shape = "
            f"{real.shape}, x[1].shape = {imag.shape}")
    if not (np.issubdtype(real.data.dtype, np.floating)
            and np.issubdtype(imag.data.dtype, np.floating)):
        raise ValueError(f"At least one tensor in input `x` is not of type float. "
                         f"Received: x={x!r}.")
    return real, imag


def _split(pair):
    return getitem(pair, 0), getitem(pair, 1)


def _complex_dft(real, imag, axes, inverse):
    """``(re, im)`` of the DFT (or inverse DFT) of ``real + i imag`` over ``axes``."""
    return _split(_fft.FFTPair.apply(real, imag, axes=axes, inverse=inverse))


def fft(x):
    """Fourier transform along the last axis.

    Args:
        x: ``(real, imag)``, two float Tensors of the same shape.

    Returns:
        ``(real, imag)`` of the transform.
    """
    return _complex_dft(*_pair(x), axes=(-1,), inverse=False)


def _two_d(x, inverse):
    return _complex_dft(*_pair(x), axes=(-2, -1), inverse=inverse)


def fft2(x):
    """Two-dimensional Fourier transform over the last two axes.

    Args:
        x: ``(real, imag)``, two float Tensors of the same shape.

    Returns:
        ``(real, imag)`` of the transform.
    """
    return _two_d(x, inverse=False)


def ifft2(x):
    """Two-dimensional inverse Fourier transform over the last two axes (normalised by
    the number of elements, as numpy).

    Args:
        x: ``(real, imag)``, two float Tensors of the same shape.

    Returns:
        ``(real, imag)`` of the inverse transform.
    """
    return _two_d(x, inverse=True)


def _fit_last(x, n):
    size = shape(x)[-1]
    if size > n:
        return getitem(x, (..., slice(0, n)))
    if size < n:
        return pad(x, [(0, 0)] * (len(shape(x)) - 1) + [(0, n - size)])
    return x


def rfft(x, fft_length=None):
    """Fourier transform of a real signal along its last axis (the non-negative
    frequencies).

    Args:
        x: a float Tensor.
        fft_length: transform length; ``x`` is cropped or zero-padded to it (default: its
            last size).

    Returns:
        ``(real, imag)`` with ``fft_length // 2 + 1`` frequencies on the last axis.
    """
    x = convert_to_tensor(x)
    n = shape(x)[-1] if fft_length is None else int(fft_length)
    x = _fit_last(x, n)
    if not np.issubdtype(x.data.dtype, np.floating):
        x = cast(x, "float32")
    return _split(_fft.RFFT.apply(x))


def irfft(x, fft_length=None):
    """Inverse of :func:`rfft`: a real signal of ``fft_length`` samples.

    Args:
        x: ``(real, imag)`` of the non-negative frequencies.
        fft_length: output length (default ``2 * (bins - 1)``); bins past
            ``fft_length // 2 + 1`` are ignored, missing ones are zeros, and the imaginary
            parts of the zero and Nyquist frequencies are ignored, as numpy's.

    Returns:
        The real signal, of the inputs' dtype.
    """
    real, imag = _pair(x)
    n = 2 * (shape(real)[-1] - 1) if fft_length is None else int(fft_length)
    bins = n // 2 + 1
    return _fft.IRFFT.apply(_fit_last(real, bins), _fit_last(imag, bins), n)


def extract_sequences(x, sequence_length, sequence_stride):
    """Frames of ``sequence_length`` samples every ``sequence_stride`` along the last axis.

    Args:
        x: signals, framed along the last axis.
        sequence_length: samples per frame.
        sequence_stride: hop between frame starts.

    Returns:
        ``(..., num_sequences, sequence_length)``, with
        ``num_sequences = (size - sequence_length) // sequence_stride + 1``.
    """
    x = convert_to_tensor(x)
    count = (shape(x)[-1] - sequence_length) // sequence_stride + 1
    index = (np.arange(max(count, 0))[:, None] * sequence_stride
             + np.arange(sequence_length)[None, :])
    return getitem(x, (Ellipsis, index))


def _window(window, sequence_length, fft_length, dtype):
    """The analysis window, centred in ``fft_length`` samples (ones when ``None``)."""
    if window is None:
        return np.ones(fft_length, dtype)
    if isinstance(window, str):
        if window not in {"hann", "hamming"}:
            raise ValueError('If a string is passed to `window`, it must be one of '
                             f'`"hann"`, `"hamming"`. Received: window={window}')
        # scipy.signal.get_window's periodic ("fftbins") windows, as Keras uses.
        a0 = 0.5 if window == "hann" else 0.54
        win = a0 - (1 - a0) * np.cos(2 * np.pi * np.arange(sequence_length) / sequence_length)
    else:
        win = np.asarray(_data(window), dtype=np.float64)
    if win.ndim != 1 or win.shape[-1] != sequence_length:
        raise ValueError("The shape of `window` must be equal to [sequence_length]."
                         f"Received: window shape={win.shape}")
    left = (fft_length - sequence_length) // 2
    return np.pad(win, (left, fft_length - sequence_length - left)).astype(dtype)


def _reflect(x, amount):
    size = shape(x)[-1]
    index = np.concatenate([np.arange(amount, 0, -1), np.arange(size),
                            size - 2 - np.arange(amount)])
    return getitem(x, (Ellipsis, index))


def stft(x, sequence_length, sequence_stride, fft_length, window="hann", center=True):
    """Short-time Fourier transform along the last axis (Keras's conventions).

    Args:
        x: float32/float64 signals.
        sequence_length: samples per frame (the window's length).
        sequence_stride: hop between frames.
        fft_length: transform length (>= ``sequence_length``; the window is centred in
            it).
        window: ``"hann"``, ``"hamming"``, a 1-D array of ``sequence_length``, or None.
        center: reflect-pad ``fft_length // 2`` samples on both sides first.

    Returns:
        ``(real, imag)`` of shape ``(..., num_sequences, fft_length // 2 + 1)``.
    """
    x = convert_to_tensor(x)
    if x.dtype not in {"float32", "float64"}:
        raise TypeError("Invalid input type. Expected `float32` or `float64`. "
                        f"Received: input type={x.dtype}")
    if fft_length < sequence_length:
        raise ValueError("`fft_length` must equal or larger than `sequence_length`. "
                         f"Received: sequence_length={sequence_length}, "
                         f"fft_length={fft_length}")
    win = _window(window, sequence_length, fft_length, x.dtype)
    if center:
        x = _reflect(x, fft_length // 2)
    frames = extract_sequences(x, fft_length, sequence_stride) * constant(win)
    return rfft(frames, fft_length)


def istft(x, sequence_length, sequence_stride, fft_length, length=None, window="hann",
          center=True):
    """Inverse of :func:`stft`: windowed overlap-add of the inverse transforms, divided by
    the overlapped squared window (scipy's ``istft``, scaled as Keras does).

    Args:
        x: ``(real, imag)`` of shape ``(..., num_sequences, fft_length // 2 + 1)``.
        sequence_length: samples per frame.
        sequence_stride: hop between frames.
        fft_length: transform length.
        length: output length (default: everything, less the ``center`` padding).
        window: as for :func:`stft`.
        center: whether :func:`stft` padded the signal.

    Returns:
        The real signals.
    """
    real, imag = _pair(x)
    dtype = real.dtype
    frames_count = shape(real)[-2]
    win = _window(window, sequence_length, fft_length, dtype).astype(np.float64)
    frames = cast(irfft((real, imag), fft_length), "float64") * constant(win.sum() * win)
    total = fft_length + sequence_stride * (frames_count - 1)
    index = np.arange(frames_count)[:, None] * sequence_stride + np.arange(fft_length)
    batch = tuple(shape(frames)[:-2])
    flat = reshape(frames, batch + (frames_count * fft_length,))
    out = _p.ScatterAdd.apply(flat, (Ellipsis, index.reshape(-1)), batch + (total,))
    norm = np.zeros(total)
    np.add.at(norm, index.reshape(-1), np.tile(win * win, frames_count))
    out = out / constant(np.where(norm > 1e-10, norm, 1.0))
    out = out / (win.sum() if window is not None else sequence_stride)
    start = fft_length // 2 if center else 0
    if length is not None:
        end = start + length
    elif center:
        end = total - fft_length // 2
    else:
        end = total
    return cast(getitem(out, (Ellipsis, slice(start, end))), dtype)


def view_as_complex(x):
    """A complex Tensor from real and imaginary parts stored on the last axis.

    Args:
        x: a real Tensor whose last axis has size 2.

    Returns:
        A complex64 Tensor of shape ``x.shape[:-1]`` (no gradient).

    Raises:
        ValueError: when the last axis is not of size 2.
    """
    value = np.asarray(_data(x))
    if value.ndim < 1 or value.shape[-1] != 2:
        raise ValueError("Last dimension of input must be size 2 (real and imaginary). "
                         f"Received shape: {value.shape}")
    return constant(value[..., 0].astype(np.complex64) + 1j * value[..., 1].astype(np.complex64))


def view_as_real(x):
    """The real and imaginary parts of a complex Tensor.

    Args:
        x: a complex Tensor.

    Returns:
        A real Tensor of shape ``x.shape + (2,)`` (no gradient).
    """
    value = np.asarray(_data(x))
    return constant(np.stack([np.real(value), np.imag(value)], axis=-1))


export(globals(), __all__)
