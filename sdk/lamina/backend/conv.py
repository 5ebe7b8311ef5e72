"""Convolution primitives (bias and ReLU fused), channels_last, any number of spatial axes.

A convolution gathers every receptive field into a contiguous ``cols`` matrix (im2col)
and multiplies it by the kernel in one BLAS call; its input gradient scatters the
columns back (col2im). Both run in fixed batch parts on the thread pool, and the
columns are gathered again in the backward rather than kept (see
:mod:`lamina.backend.im2col`). Pooling lives in :mod:`lamina.backend.pooling`; a
max-pool of a ReLU convolution's output is the fused primitive of
:mod:`lamina.backend.conv_pool`.

Arrays are ``(batch, *spatial, channels)``. Kernels use Keras's layout
``(*kernel_size, in_channels // groups, filters)``. Padding is resolved by
:func:`conv_padding` into explicit ``(before, after)`` pairs, TensorFlow's split for
``"same"`` (the odd extra row goes at the end) and all of it in front for ``"causal"``.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.im2col import (
    Geometry,
    bias_grad,
    col2im,
    conv_backward,
    conv_forward,
    folds_bias,
    im2col,
    padded_lengths,
)


# -- geometry -------------------------------------------------------------------------
def conv_output_length(length, kernel_size, stride=1, padding="valid", dilation=1):
    """Output length of a convolution or pooling window along one axis (None-safe)."""
    if length is None:
        return None
    span = dilation * (kernel_size - 1) + 1
    if padding == "same":
        return -(-length // stride)
    if padding == "causal":
        return (length - 1) // stride + 1
    return (length - span) // stride + 1


def conv_padding(length, kernel_size, stride=1, padding="valid", dilation=1):
    """``(before, after)`` zero padding that makes ``padding`` a plain valid window."""
    span = dilation * (kernel_size - 1) + 1
    if padding == "causal":
        return span - 1, 0
    if padding != "same":
        return 0, 0
    out = conv_output_length(length, kernel_size, stride, "same", dilation)
    total = max((out - 1) * stride + span - length, 0)
    return total // 2, total - total // 2


def deconv_output_length(length, kernel_size, stride=1, padding="valid", output_padding=None,
                         dilation=1):
    """Output length of a transposed convolution along one axis (Keras's formula)."""
    if length is None:
        return None
    span = dilation * (kernel_size - 1) + 1
    if output_padding is None:
        return length * stride + (max(span - stride, 0) if padding == "valid" else 0)
    pad = span // 2 if padding == "same" else 0
    return (length - 1) * stride + span - 2 * pad + output_padding


def deconv_padding_before(kernel_size, stride=1, padding="valid", output_padding=None,
                          dilation=1):
    """Padding in front of the convolution whose input gradient a transposed conv is.

    Mirrors Keras's conversion of transposed-convolution padding (the JAX backend's
    ``left_pad``): the equivalent convolution's front padding is ``span - 1 - left_pad``.
    """
    span = dilation * (kernel_size - 1) + 1
    if padding == "valid":
        return 0
    pad_len = stride + span - 2 if output_padding is None else (
        span + span % 2 - 2 + output_padding)
    return span - 1 - min(pad_len // 2 + pad_len % 2, span - 1)


# -- convolution ------------------------------------------------------------------------
class Conv(Function):
    """``act(conv(x, kernel) + bias)``: N-d cross-correlation with bias and ReLU fused.

    ``x`` is ``(batch, *spatial, in)``, ``kernel`` ``(*k, in // groups, filters)``,
    ``pads`` explicit ``(before, after)`` pairs (see :func:`conv_padding`). ``geometry``
    and ``relu`` describe the op after its forward (the max-pool graph rule of
    :func:`lamina.backend.conv_ops.max_pool` reads them).
    """

    __slots__ = ("x", "kernel", "geometry", "relu", "has_bias", "folded", "out")

    def forward(self, x, kernel, bias=None, strides=None, dilation=None, pads=None, groups=1,
                relu=False):
        geo = Geometry.of(x.shape, kernel.shape, strides, dilation, pads, groups)
        out = conv_forward(x, kernel, bias, geo, relu)
        self.x, self.kernel, self.geometry, self.relu = x, kernel, geo, bool(relu)
        self.has_bias, self.folded = bias is not None, folds_bias(bias, geo)
        self.out = out if relu else None
        return out

    def backward(self, g):
        out = self.out

        def grad_part(lo, hi):
            return g[lo:hi] if out is None else np.multiply(g[lo:hi], out[lo:hi] > 0)

        needs = (self.needs[0], self.needs[1], self.has_bias and self.needs[2])
        return conv_backward(self.x, self.kernel, self.geometry, grad_part, needs, self.folded)


class ConvTranspose(Function):
    """Transposed convolution: the input gradient of a :class:`Conv`, as a forward op.

    ``x`` is ``(batch, *spatial, in)``, ``kernel`` ``(*k, filters, in)`` (Keras's
    layout); the output ``(batch, *out_lengths, filters)`` is the gradient, w.r.t. an
    input of ``out_lengths``, of a convolution padded by ``pads_before`` in front.
    """

    __slots__ = ("x", "kernel", "strides", "dilation", "pads", "has_bias", "out")

    def forward(self, x, kernel, bias=None, strides=None, dilation=None, pads_before=None,
                out_lengths=None, relu=False):
        n = x.ndim - 2
        strides = tuple(strides or (1,) * n)
        dilation = tuple(dilation or (1,) * n)
        pads_before = tuple(pads_before or (0,) * n)
        ksize = kernel.shape[:-2]
        out_shape = (x.shape[0], *out_lengths, kernel.shape[-2])
        out = col2im(x, kernel, out_shape, pads_before, strides, dilation)
        full = padded_lengths(out_lengths, pads_before, ksize, strides, dilation, x.shape[1:-1])
        self.pads = tuple((lo, f - lo - n) for lo, f, n in zip(pads_before, full, out_lengths))
        self.x, self.kernel, self.strides, self.dilation = x, kernel, strides, dilation
        self.has_bias = bias is not None
        if bias is not None:
            out += bias
        if relu:
            np.maximum(out, 0, out=out)
        self.out = out if relu else None
        return out

    def backward(self, g):
        if self.out is not None:
            g = np.multiply(g, self.out > 0)
        ksize, x = self.kernel.shape[:-2], self.x
        cols = im2col(g, Geometry(ksize, self.strides, self.dilation, self.pads, 1,
                                  x.shape[1:-1]))
        gx = gk = gb = None
        if self.needs[0]:
            gx = np.matmul(cols[0], self.kernel.reshape(-1, x.shape[-1])).reshape(x.shape)
        if self.needs[1]:
            gk = (cols[0].T @ x.reshape(-1, x.shape[-1])).reshape(self.kernel.shape)
        if self.has_bias and self.needs[2]:
            gb = bias_grad(g)
        return gx, gk, gb
