"""Audio front ends: MelSpectrogram (numpy FFT) and STFTSpectrogram (trainable conv STFT)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from lamina import ops
from lamina.backend.config import standardize_dtype
from lamina.initializers import STFT  # before initializers_stft: it imports initializers
from lamina.initializers_stft import _check_window, get_window
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.preprocessing.data_layer import DataLayer

_MEL_BREAK_FREQUENCY_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0
_EPSILON = 1e-7


def stft_frames(x, sequence_length, sequence_stride, fft_length, window="hann", center=True):
    """``keras.ops.stft`` on ndarrays: ``(real, imag)`` of shape ``(..., frames, bins)``.

    With ``center`` the signal is reflect-padded by ``fft_length // 2`` on both sides; the
    window (periodic, zero-padded to ``fft_length`` in the middle) multiplies each frame
    before a one-sided FFT of ``fft_length`` points.
    """
    x = np.asarray(x)
    if center:
        pad = [(0, 0)] * (x.ndim - 1) + [(fft_length // 2, fft_length // 2)]
        x = np.pad(x, pad, mode="reflect")
    l_pad = (fft_length - sequence_length) // 2
    r_pad = fft_length - sequence_length - l_pad
    if window is None:
        win = np.ones(fft_length)
    else:
        win = get_window(window, sequence_length) if isinstance(window, str) \
            else np.asarray(window, "float64")
        if win.ndim != 1 or win.shape[-1] != sequence_length:
            raise ValueError("The shape of `window` must be equal to [sequence_length]."
                             f"Received: window shape={win.shape}")
        win = np.pad(win, (l_pad, r_pad))
    num = (x.shape[-1] - fft_length) // sequence_stride + 1
    starts = np.arange(num) * sequence_stride
    frames = x[..., starts[:, None] + np.arange(fft_length)]
    spectrum = np.fft.rfft(frames * win.astype(x.dtype), n=fft_length, axis=-1)
    return spectrum.real.astype(x.dtype), spectrum.imag.astype(x.dtype)


def _hertz_to_mel(frequencies):
    return _MEL_HIGH_FREQUENCY_Q * np.log(1.0 + frequencies / _MEL_BREAK_FREQUENCY_HERTZ)


def linear_to_mel_weight_matrix(num_mel_bins=20, num_spectrogram_bins=129, sampling_rate=8000,
                                lower_edge_hertz=125.0, upper_edge_hertz=3800.0,
                                dtype="float32"):
    """The ``(num_spectrogram_bins, num_mel_bins)`` triangular mel filter bank (HTK mel)."""
    f32 = np.float32
    nyquist = f32(sampling_rate) / f32(2.0)
    linear = np.linspace(f32(0.0), nyquist, num_spectrogram_bins, dtype=f32)[1:]
    bins_mel = _hertz_to_mel(linear)[:, None]
    edges = np.linspace(_hertz_to_mel(f32(lower_edge_hertz)), _hertz_to_mel(f32(upper_edge_hertz)),
                        num_mel_bins + 2, dtype=f32)
    lower, center, upper = edges[None, :-2], edges[None, 1:-1], edges[None, 2:]
    lower_slopes = (bins_mel - lower) / (center - lower)
    upper_slopes = (upper - bins_mel) / (upper - center)
    weights = np.maximum(f32(0.0), np.minimum(lower_slopes, upper_slopes))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(dtype)


class MelSpectrogram(DataLayer):
    """Mel-scaled (power, optionally dB) spectrogram of raw audio.

    Args:
        fft_length: FFT size (frequency bins ``fft_length // 2 + 1``).
        sequence_stride: hop between frames.
        sequence_length: window length (``fft_length`` by default).
        window: ``"hann"``, ``"hamming"`` or None.
        sampling_rate: samples per second.
        num_mel_bins: mel bands.
        min_freq, max_freq: the filter bank's band (``max_freq``: Nyquist by default).
        power_to_db: convert to decibels.
        top_db: dB floor below the maximum.
        mag_exp: 1 for magnitude, 2 for power.
        min_power: floor before the log.
        ref_power: reference power (0 dB).

    Input shape:
        ``(batch, samples)`` or ``(samples,)``.

    Output shape:
        ``(batch, num_mel_bins, frames)``.
    """

    def __init__(self, fft_length=2048, sequence_stride=512, sequence_length=None,
                 window="hann", sampling_rate=16000, num_mel_bins=128, min_freq=20.0,
                 max_freq=None, power_to_db=True, top_db=80.0, mag_exp=2.0, min_power=1e-10,
                 ref_power=1.0, **kwargs):
        self.fft_length = fft_length
        self.sequence_stride = sequence_stride
        self.sequence_length = sequence_length or fft_length
        if self.fft_length < self.sequence_length:
            raise ValueError("`fft_length` must be greater than or equal to   "
                             f"`sequence_length`. Received: `sequence_length`="
                             f"{self.sequence_length}, `fft_length`={self.fft_length}.")
        if window is not None and window not in ("hann", "hamming"):
            raise ValueError('If a string is passed to `window`, it must be one of `"hann"`, '
                             f'`"hamming"`. Received: window={window}')
        self.window = window
        self.sampling_rate = sampling_rate
        self.num_mel_bins = num_mel_bins
        self.min_freq = min_freq
        self.max_freq = max_freq or int(sampling_rate / 2)
        self.power_to_db = power_to_db
        self.top_db = top_db
        self.mag_exp = mag_exp
        self.min_power = min_power
        self.ref_power = ref_power
        super().__init__(**kwargs)
        self.built = True

    def call(self, inputs):
        dtype = self.dtype if self.dtype in ("float32", "float64") else "float32"
        x = self._np(inputs).astype(dtype)
        real, imag = stft_frames(x, self.sequence_length, self.sequence_stride,
                                 self.fft_length, self.window, center=True)
        spec = np.power(np.sqrt(real * real + imag * imag), self.mag_exp)
        matrix = linear_to_mel_weight_matrix(self.num_mel_bins, spec.shape[-1],
                                             self.sampling_rate, self.min_freq, self.max_freq,
                                             dtype)
        out = np.tensordot(spec, matrix, axes=1)
        if self.power_to_db:
            out = 10.0 * np.log10(np.maximum(out, self.min_power))
            out -= 10.0 * np.log10(np.maximum(abs(self.ref_power), self.min_power))
            out = np.maximum(out, np.max(out) - self.top_db)
        return self._tensor(np.swapaxes(out, -1, -2).astype(self.dtype))

    def compute_output_shape(self, input_shape):
        def frames(n):
            return None if n is None else (n + self.sequence_stride + 1) // self.sequence_stride

        if len(input_shape) == 1:
            return (self.num_mel_bins, frames(input_shape[0]))
        return (input_shape[0], self.num_mel_bins, frames(input_shape[1]))

    def get_config(self):
        return {**super().get_config(), "fft_length": self.fft_length,
                "sequence_stride": self.sequence_stride,
                "sequence_length": self.sequence_length, "window": self.window,
                "sampling_rate": self.sampling_rate, "num_mel_bins": self.num_mel_bins,
                "min_freq": self.min_freq, "max_freq": self.max_freq,
                "power_to_db": self.power_to_db, "top_db": self.top_db,
                "mag_exp": self.mag_exp, "min_power": self.min_power,
                "ref_power": self.ref_power}


class STFTSpectrogram(Layer):
    """A trainable STFT: convolutions whose kernels start as the DFT times a window.

    Args:
        mode: ``"log"``, ``"magnitude"``, ``"psd"``, ``"real"``, ``"imag"``, ``"angle"``
            or ``"stft"`` (real and imaginary parts concatenated).
        frame_length: window length.
        frame_step: hop (``frame_length // 2`` by default).
        fft_length: FFT size (next power of two of ``frame_length`` by default).
        window: window name, array or None.
        periodic: periodic window.
        scaling: ``"density"``, ``"spectrum"`` or None.
        padding: ``"valid"`` or ``"same"``.
        expand_dims: keep channels as a separate last (or second) axis.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(batch, time, channels)`` (channels_last) or ``(batch, channels, time)``.

    Output shape:
        ``(batch, frames, channels * bins)``; with ``expand_dims``
        ``(batch, frames, bins, channels)`` (channels_first: ``(batch, channels, frames,
        bins)``).
    """

    def __init__(self, mode="log", frame_length=256, frame_step=None, fft_length=None,
                 window="hann", periodic=False, scaling="density", padding="valid",
                 expand_dims=False, data_format=None, **kwargs):
        if frame_step is not None and (frame_step > frame_length or frame_step < 1):
            raise ValueError("`frame_step` should be a positive integer not greater than "
                             f"`frame_length`. Received frame_step={frame_step}, "
                             f"frame_length={frame_length}")
        if fft_length is not None and fft_length < frame_length:
            raise ValueError("`fft_length` should be not less than `frame_length`. Received "
                             f"fft_length={fft_length}, frame_length={frame_length}")
        if fft_length is not None and (fft_length & -fft_length) != fft_length:
            warnings.warn("`fft_length` is recommended to be a power of two. Received "
                          f"fft_length={fft_length}", stacklevel=2)
        modes = ["log", "magnitude", "psd", "real", "imag", "angle", "stft"]
        if mode not in modes:
            raise ValueError(f"Output mode is invalid, it must be one of {', '.join(modes)}. "
                             f"Received: mode={mode}")
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError("Scaling is invalid, it must be `None`, 'density' or 'spectrum'. "
                             f"Received scaling={scaling}")
        if padding not in ("valid", "same"):
            raise ValueError("Padding is invalid, it should be 'valid', 'same'. "
                             f"Received: padding={padding}")
        _check_window(window)
        super().__init__(**kwargs)
        self.mode = mode
        self.frame_length = frame_length
        self.frame_step = frame_step
        self._frame_step = frame_step or frame_length // 2
        self.fft_length = fft_length
        self._fft_length = fft_length or 2 ** int(math.ceil(math.log2(frame_length)))
        self.window = window
        self.periodic = periodic
        self.scaling = scaling
        self.padding = padding
        self.expand_dims = expand_dims
        from lamina.backend import image_data_format

        self.data_format = data_format or image_data_format()
        self.input_spec = InputSpec(ndim=3)

    def build(self, input_shape):
        shape = (self.frame_length, 1, self._fft_length // 2 + 1)
        if self.mode != "imag":
            self.real_kernel = self.add_weight(
                name="real_kernel", shape=shape,
                initializer=STFT("real", self.window, self.scaling, self.periodic))
        if self.mode != "real":
            self.imag_kernel = self.add_weight(
                name="imag_kernel", shape=shape,
                initializer=STFT("imag", self.window, self.scaling, self.periodic))
        self.built = True

    def _apply_conv(self, inputs, kernel):
        if self.data_format == "channels_last":
            _, time, channels = inputs.shape
            x = ops.reshape(ops.transpose(inputs, (0, 2, 1)), (-1, time, 1))
        else:
            _, channels, time = inputs.shape
            x = ops.reshape(inputs, (-1, 1, time))
        out = ops.conv(x, kernel, strides=self._frame_step, padding=self.padding,
                       data_format=self.data_format)
        if self.data_format == "channels_last":
            out = ops.transpose(out, (0, 2, 1))
        _, freq, frames = out.shape
        return ops.reshape(out, (-1, channels, freq, frames))

    def _adjust_shapes(self, outputs):
        _, channels, freq, frames = outputs.shape
        if self.data_format == "channels_last":
            if self.expand_dims:
                return ops.transpose(outputs, (0, 3, 2, 1))
            return ops.transpose(ops.reshape(outputs, (-1, channels * freq, frames)), (0, 2, 1))
        if self.expand_dims:
            return ops.transpose(outputs, (0, 1, 3, 2))
        return ops.reshape(outputs, (-1, channels * freq, frames))

    def call(self, inputs):
        if standardize_dtype(inputs.dtype) not in ("float16", "float32", "float64"):
            raise TypeError("Invalid input type. Expected `float16`, `float32` or `float64`. "
                            f"Received: input type={inputs.dtype}")
        real = self._apply_conv(inputs, self.real_kernel) if self.mode != "imag" else None
        imag = self._apply_conv(inputs, self.imag_kernel) if self.mode != "real" else None
        if self.mode == "real":
            return self._adjust_shapes(real)
        if self.mode == "imag":
            return self._adjust_shapes(imag)
        if self.mode == "angle":
            return self._adjust_shapes(ops.arctan2(imag, real))
        if self.mode == "stft":
            return self._adjust_shapes(ops.concatenate([real, imag], axis=2))
        power = ops.add(ops.square(real), ops.square(imag))
        if self.mode == "psd":
            inner = ops.pad(power[:, :, 1:-1, :], [[0, 0], [0, 0], [1, 1], [0, 0]])
            return self._adjust_shapes(ops.add(power, inner))
        linear = self._adjust_shapes(ops.sqrt(ops.maximum(power, _EPSILON)))
        if self.mode == "magnitude":
            return linear
        return ops.log(ops.maximum(linear, _EPSILON))

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_last":
            batch, time, channels = input_shape
        else:
            batch, channels, time = input_shape
        freq = self._fft_length // 2 + 1
        if self.mode == "stft":
            freq *= 2
        if time is None:
            frames = None
        elif self.padding == "same":
            frames = -(-time // self._frame_step)
        else:
            frames = (time - self.frame_length) // self._frame_step + 1
        if self.expand_dims:
            if self.data_format == "channels_last":
                return (batch, frames, freq, channels)
            return (batch, channels, frames, freq)
        if self.data_format == "channels_last":
            return (batch, frames, freq * channels)
        return (batch, freq * channels, frames)

    def get_config(self):
        window = self.window.tolist() if isinstance(self.window, np.ndarray) else self.window
        return {**super().get_config(), "mode": self.mode, "frame_length": self.frame_length,
                "frame_step": self.frame_step, "fft_length": self.fft_length,
                "window": window, "periodic": self.periodic, "scaling": self.scaling,
                "padding": self.padding, "data_format": self.data_format,
                "expand_dims": self.expand_dims}
