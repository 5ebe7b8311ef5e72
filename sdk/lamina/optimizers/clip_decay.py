"""The optimizer's gradient clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``)
and decoupled weight decay, on the flat buffers or per variable."""

from __future__ import annotations

import math
import re

import numpy as np

from lamina.optimizers import kernels
from lamina.optimizers.buffers import Segment


class ClippingAndDecay:
    """:class:`~lamina.optimizers.base.Optimizer`'s clipping and weight decay (a mixin:
    the options are ``Optimizer.__init__``'s)."""

    def _clip_flat(self) -> None:
        if self.clipnorm and self.clipnorm > 0:
            for seg in self._segments:
                for i in range(len(seg.variables)):
                    part = seg.grad[seg.offsets[i]:seg.offsets[i + 1]]
                    part *= self._clipnorm_scale(part)
        elif self.global_clipnorm and self.global_clipnorm > 0:
            scale = self._global_scale([s.grad for s in self._segments])
            for seg in self._segments:
                seg.grad *= scale
        elif self.clipvalue and self.clipvalue > 0:
            for seg in self._segments:
                np.clip(seg.grad, -self.clipvalue, self.clipvalue, out=seg.grad)

    def _clip_list(self, grads: list) -> list:
        if self.clipnorm and self.clipnorm > 0:
            return [g * self._clipnorm_scale(g.reshape(-1)) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            scale = self._global_scale([g.reshape(-1) for g in grads])
            return [g * scale for g in grads]
        if self.clipvalue and self.clipvalue > 0:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _clipnorm_scale(self, flat: np.ndarray) -> float:
        l2sum = float(np.dot(flat, flat))
        norm = math.sqrt(l2sum) if l2sum > 0 else 0.0
        return self.clipnorm / max(norm, self.clipnorm)

    def _global_scale(self, flats: list) -> float:
        norm = math.sqrt(sum(float(np.dot(f, f)) for f in flats))
        if not math.isfinite(norm):
            return float("nan")
        return self.global_clipnorm * min(1.0 / norm if norm else math.inf,
                                          1.0 / self.global_clipnorm)

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Exclude variables (by object, or by substrings of their names) from weight decay.

        Args:
            var_list: variables to exclude.
            var_names: strings; a variable whose name contains any of them is excluded.

        Raises:
            ValueError: if the optimizer is already built.
        """
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before the "
                             "optimizer is built.")
        self._exclude_ids = {id(v) for v in var_list or []}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, var) -> bool:
        if id(var) in self._exclude_ids:
            return False
        return not (self._exclude_pattern is not None
                    and self._exclude_pattern.search(var.name) is not None)

    def _has_weight_decay(self) -> bool:
        """Whether any variable decays (an optimizer with per-variable rates overrides)."""
        return bool(self.weight_decay)

    def _weight_decay_for(self, var):
        """The decoupled weight-decay rate of ``var`` (``None`` or 0 for none)."""
        return self.weight_decay if self._use_weight_decay(var) else None

    def _decay_segment(self, seg: Segment, lr: float, lo: int = 0, hi: int | None = None,
                       rates: list | None = None) -> None:
        """Decay ``seg.param[lo:hi]``; every element gets the same operations whichever
        range it is decayed in (the parts of ``_gather_in_parts``)."""
        if rates is None:
            rates = [self._weight_decay_for(v) for v in seg.variables]
        hi = seg.param.size if hi is None else hi
        if rates and all(r == rates[0] for r in rates) and rates[0]:
            if not kernels.decay(seg.param[lo:hi], rates[0] * lr):
                scratch = seg.scratch(0)[lo:hi]
                np.multiply(seg.param[lo:hi], rates[0] * lr, out=scratch)
                seg.param[lo:hi] -= scratch
            return
        for rate, start, stop in zip(rates, seg.offsets, seg.offsets[1:]):
            if rate and start < hi and stop > lo:
                view = seg.param[max(start, lo):min(stop, hi)]
                if not kernels.decay(view, rate * lr):
                    view -= view * (rate * lr)
