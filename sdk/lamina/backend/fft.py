"""Fourier-transform primitives on ``(real, imag)`` pairs, forward and VJP side by side.

Each forward returns the real and imaginary parts stacked on a new first axis (one
Tensor; the ops split it with ``getitem``). For a complex-linear map ``y = A z`` and a
real loss, the gradient ``dL/dRe z + i dL/dIm z`` is ``A^H G`` with
``G = dL/dRe y + i dL/dIm y``. For the (symmetric) DFT matrix ``F``, ``F^H G`` is
``n * ifft(G)``, and for the inverse transform ``conj(F) / n`` it is ``fft(G) / n``.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import Function


def _count(shape, axes):
    return int(np.prod([shape[a] for a in axes]))


class FFTPair(Function):
    """The (inverse) DFT of ``re + i im`` over ``axes``, as ``stack([real, imag])``."""

    __slots__ = ("axes", "inverse", "dtype")

    def forward(self, re, im, axes=(-1,), inverse=False):
        self.axes, self.inverse, self.dtype = axes, inverse, re.dtype
        z = re + 1j * im.astype(np.float64)
        y = np.fft.ifftn(z, axes=axes) if inverse else np.fft.fftn(z, axes=axes)
        return np.stack([y.real, y.imag]).astype(re.dtype)

    def backward(self, g):
        big = g[0] + 1j * g[1]
        n = _count(big.shape, self.axes)
        if self.inverse:
            out = np.fft.fftn(big, axes=self.axes) / n
        else:
            out = np.fft.ifftn(big, axes=self.axes) * n
        return out.real.astype(self.dtype), out.imag.astype(self.dtype)


class RFFT(Function):
    """The non-negative-frequency DFT of real ``x`` along the last axis (its full length)."""

    __slots__ = ("n", "dtype")

    def forward(self, x):
        self.n, self.dtype = x.shape[-1], x.dtype
        y = np.fft.rfft(x, axis=-1)
        return np.stack([y.real, y.imag]).astype(x.dtype)

    def backward(self, g):
        # The rows of F kept by rfft: x_bar = Re(F^H G) with G zero on the dropped bins.
        full = np.zeros(g.shape[1:-1] + (self.n,), dtype=np.complex128)
        full[..., : g.shape[-1]] = g[0] + 1j * g[1]
        return ((np.fft.ifft(full, axis=-1) * self.n).real.astype(self.dtype),)


class IRFFT(Function):
    """The real signal of ``n`` samples from ``n // 2 + 1`` bins ``re + i im``.

    ``y_j = (1/n) sum_k c_k (re_k cos(2 pi k j / n) - im_k sin(2 pi k j / n))`` with
    ``c_k = 1`` for the zero (and even ``n``'s Nyquist) frequency and 2 otherwise, so
    ``re_bar + i im_bar = (c / n) * rfft(g)``.
    """

    __slots__ = ("n", "dtype")

    def forward(self, re, im, n):
        self.n, self.dtype = n, re.dtype
        return np.fft.irfft(re + 1j * im.astype(np.float64), n=n, axis=-1).astype(re.dtype)

    def backward(self, g):
        bins = self.n // 2 + 1
        weight = np.full(bins, 2.0)
        weight[0] = 1.0
        if self.n % 2 == 0:
            weight[-1] = 1.0
        spec = np.fft.rfft(g, axis=-1) * (weight / self.n)
        return spec.real.astype(self.dtype), spec.imag.astype(self.dtype), None
