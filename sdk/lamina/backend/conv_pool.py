"""Max pooling of a ReLU convolution's output as ONE primitive, with one backward.

``ConvReluMaxPool`` computes ``max_pool(relu(conv(x, kernel) + bias))``. Its forward
pools the convolution's output ``y``, which the :class:`~lamina.backend.conv.Conv`
node has already computed; its backward goes straight from the pooled gradient to
the gradients of ``x``, ``kernel`` and ``bias``, batch part by batch part:

1. the pooled gradient is multiplied by ``pooled > 0``: only window winners get a
   gradient, and a winner's ReLU was active exactly when the pooled value is positive
   (so the full-size ReLU mask pass is never needed);
2. it is unpooled into the part's output gradient;
3. that feeds the part's col2im and kernel-gradient GEMMs
   (:func:`lamina.backend.im2col.conv_backward`).

The primitive is chosen by a graph rule in :func:`lamina.backend.conv_ops.max_pool`:
when the pooled tensor is the output of a fused-ReLU ``Conv`` that records
gradients. ``y`` stays an input of this node, so the rule is exact whatever else
uses ``y``: another consumer's gradient still reaches ``Conv``'s own backward (the
convolution then runs backward twice, once per path), and when ``y``'s own gradient
is asked for, this node hands the unpooled gradient to ``y`` instead and leaves the
rest to ``Conv``.

``y`` is held weakly, though: the node needs only the pooled values and the winners,
so when nothing else holds ``y`` (no other consumer, nobody who could ask for its
gradient) the full-size convolution output is freed right after the pool, together
with its ``Conv`` node, and ``y`` then drops out of this node's inputs. That is most of
a convnet's activation memory (a 180x180 input at batch 128: 0.5 GB for the first
layer alone).
"""

from __future__ import annotations

import weakref

import numpy as np

from lamina.backend.autodiff import Function, is_requested
from lamina.backend.im2col import conv_backward, folds_bias
from lamina.backend.pooling import max_pool_forward, unpool


class ConvReluMaxPool(Function):
    """``max_pool(relu(conv(x, kernel) + bias))`` given ``y = relu(conv(...) + bias)``.

    Inputs are ``(x, kernel, bias, y)``; keywords are the convolution's ``geometry``
    (an :class:`~lamina.backend.im2col.Geometry`) and the pool's ``pool``,
    ``strides`` and ``pads``. The first maximum of each window wins, as in
    :class:`~lamina.backend.pooling.MaxPool`.
    """

    __slots__ = ("x", "kernel", "geometry", "folded", "out", "winner", "pool", "strides",
                 "pads", "y_shape", "_inputs", "_needs", "_y")

    # ``parents`` and ``needs`` hold the conv output ``y`` (input 3) weakly: while it is
    # alive it is an input like any other; once collected it is None and needs nothing.
    @property
    def parents(self):
        y = self._y() if getattr(self, "_y", None) is not None else None
        return (*self._inputs, y)

    @parents.setter
    def parents(self, inputs):
        self._inputs, self._y = tuple(inputs[:3]), weakref.ref(inputs[3])

    @property
    def needs(self):
        y = getattr(self, "_y", None)
        alive = y is None or y() is not None  # before ``apply`` links the inputs: as given
        return (*self._needs[:3], self._needs[3] and alive)

    @needs.setter
    def needs(self, needs):
        self._needs = tuple(needs)

    def forward(self, x, kernel, bias, y, geometry=None, pool=None, strides=None, pads=None):
        pads = tuple(pads or ((0, 0),) * len(pool))
        out, winner = max_pool_forward(y, pool, strides, pads, index=any(self.needs))
        self.x, self.kernel, self.geometry = x, kernel, geometry
        self.folded = folds_bias(bias, geometry)
        self.out, self.winner, self.y_shape = out, winner, y.shape
        self.pool, self.strides, self.pads = pool, strides, pads
        return out

    def _unpool(self, g, lo, hi, masked=True):
        g = g[lo:hi]
        if masked:  # a winner's ReLU was active exactly when the pooled value is > 0
            g = np.multiply(g, self.out[lo:hi] > 0)
        return unpool(g, self.winner[lo:hi], self.pool, self.strides, self.pads,
                      (hi - lo, *self.y_shape[1:]))

    def backward(self, g):
        if self.needs[3] and is_requested(self.parents[3]):
            # The pooled gradient at y itself is wanted: give it there, unmasked, and
            # let the Conv node carry it (with its ReLU mask) on to x, kernel and bias.
            return None, None, None, self._unpool(g, 0, g.shape[0], masked=False)
        needs = (self.needs[0], self.needs[1], self.needs[2])
        gx, gk, gb = conv_backward(self.x, self.kernel, self.geometry,
                                   lambda lo, hi: self._unpool(g, lo, hi), needs, self.folded)
        return gx, gk, gb, None
